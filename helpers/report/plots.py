"""The figures, one function per figure, in one shared seaborn style.

Every function returns the matplotlib Figure; :func:`save_figure` writes it as PNG
and PDF under the run's figures folder. Each takes ``setting``: the run's setting in one
line (:meth:`helpers.data.artifacts.RunPaths.setting`), drawn as a grey footer so that a figure
read on its own says what was measured (dataset, items, LLM, T, k, encoders). Figures use
matplotlib's constrained layout (no ``tight_layout``); the legends explain every marker,
line style, hatch and shaded band.

One module because the figures share one style, one palette and the footer; each function is one figure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

CUE_PALETTE = {"SEE": "#1f77b4", "HEAR": "#d62728", "NONE": "#7f7f7f"}
#: The kind of representation drawn solid in :func:`alignment_bars`; every other kind is a single-pass baseline, hatched.
GENERATIVE_KINDS = ("generative", "gen_mean")
#: Hatches of the single-pass kinds, in order of appearance.
HATCHES = ("//", "..", "xx", "\\\\", "++")
#: What the stars mean (:func:`helpers.metrics.stats.stars`), for legends.
STARS_LEGEND = "*** p < 0.001, ** p < 0.01, * p < 0.05, n.s. otherwise (Holm-adjusted)"
CHANCE_LEGEND = "chance level k/(n−1)"
CI_LEGEND = "95% CI (dyadic-robust)"
FOOTER_GID = "setting"


def set_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)


def cue_colors(cues: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the paper's cues; any other cue gets a tab10/tab20 colour none of them uses.

    The paper's colours are reserved even when their cues are absent, so a custom cue is
    never drawn in SEE's blue or HEAR's red; distinct custom cues get distinct colours.
    """
    used = {c.lower() for c in CUE_PALETTE.values()}
    free = [
        c
        for c in sns.color_palette("tab10", 10).as_hex() + sns.color_palette("tab20", 20).as_hex()
        if c.lower() not in used
    ]
    free = list(dict.fromkeys(free))
    out: dict[str, str] = {}
    n_extra = 0
    for c in cues:
        if c in out:
            continue
        if c in CUE_PALETTE:
            out[c] = CUE_PALETTE[c]
        else:  # beyond the palette's free colours they repeat, but never as a paper cue's colour
            out[c] = free[n_extra % len(free)]
            n_extra += 1
    return out


def save_figure(fig: plt.Figure, directory: Path, stem: str) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (150 dpi) and ``<stem>.pdf`` in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.png", directory / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def _chars(fig: plt.Figure, fontsize: float) -> int:
    """About how many characters of ``fontsize`` fit across ``fig``."""
    return max(20, int(fig.get_figwidth() * 72 / (0.52 * fontsize)))


def _panels(
    n: int, width: float, height: float, sharey: bool = False, extra: float = 0.0
) -> tuple[plt.Figure, np.ndarray]:
    """``n`` panels side by side, each ``width`` inches wide (plus ``extra`` for a legend), constrained layout."""
    fig, axes = plt.subplots(
        1, max(1, n), figsize=(extra + width * max(1, n), height), squeeze=False, sharey=sharey, layout="constrained"
    )
    return fig, axes[0]


def _finish(fig: plt.Figure, title: str, setting: str, ax: plt.Axes | None = None) -> plt.Figure:
    """Title (on ``ax``, else the figure's), wrapped to the figure's width, and ``setting`` as a grey footer."""
    if title:
        size = 11.0
        wrapped = "\n".join(textwrap.wrap(title, _chars(fig, size)))
        if ax is not None:
            ax.set_title(wrapped, fontsize=size)
        else:
            fig.suptitle(wrapped, fontsize=size)
    if setting:
        fig.text(
            0.0,
            0.0,
            _wrap_setting(setting, _chars(fig, 7.5)),
            ha="left",
            va="top",
            fontsize=7.5,
            color="0.35",
            gid=FOOTER_GID,
        )
    return fig


def _wrap_setting(setting: str, width: int) -> str:
    """``setting`` in lines of at most ``width`` characters, broken between its `` · ``-separated parts where it can."""
    lines: list[str] = []
    for part in setting.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines += textwrap.wrap(part, width, break_on_hyphens=False) or [""]
    return "\n".join(lines)


def footer_text(fig: plt.Figure) -> str:
    """The setting a figure carries (its footer) as drawn, its lines joined by spaces; ``""`` when it has none."""
    texts = [t.get_text() for t in fig.texts if t.get_gid() == FOOTER_GID]
    return " ".join(" ".join(texts).split("\n"))


def _legend(ax: plt.Axes, handles: list, title: str | None = None, fontsize: float = 8) -> None:
    """One legend right of ``ax``, outside the plot (constrained layout makes room for it)."""
    ax.legend(
        handles=handles,
        title=title,
        frameon=False,
        fontsize=fontsize,
        title_fontsize=fontsize + 1,
        bbox_to_anchor=(1.02, 1),
        loc="upper left",
        borderaxespad=0,
    )


def _note(label: str) -> Line2D:
    """A legend entry that is only text."""
    return Line2D([], [], ls="", marker="", label=label)


def _cue_handles(colors: dict[str, str], marker: str | None = None) -> list:
    if marker:
        return [Line2D([], [], ls="", marker=marker, color=c, label=cue) for cue, c in colors.items()]
    return [Patch(facecolor=c, label=cue) for cue, c in colors.items()]


def _chance_handle() -> Line2D:
    return Line2D([], [], color="black", linestyle="dotted", linewidth=1, label=CHANCE_LEGEND)


def _few_ticks(ax: plt.Axes, n: int = 6) -> None:
    """At most ``n`` ticks on both axes, so that tick labels never run into each other."""
    ax.xaxis.set_major_locator(MaxNLocator(n, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_locator(MaxNLocator(n, steps=[1, 2, 2.5, 5, 10]))


def _panel_title(sub: pd.DataFrame, name: str) -> str:
    n = f", n = {int(sub['n_items'].iloc[0])}" if "n_items" in sub.columns else ""
    mod = sub["modality"].iloc[0] if "modality" in sub.columns else ""
    return f"{name}\n({mod}{n})" if mod or n else name


def image_gallery(
    images: Sequence, captions: Sequence[str], ncols: int = 6, size: float = 2.0, setting: str = ""
) -> plt.Figure:
    """A grid of images with their captions underneath."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * 1.25 * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap in zip(axes.flat, images, captions):
        ax.imshow(img)
        ax.set_title("\n".join(_wrap(cap, 24)[:3]), fontsize=8)
    return _finish(fig, "", setting)


def layer_norm_curves(norms: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Notebook 03's check: mean hidden-state norm per layer, one line per cue (:func:`helpers.analyses.tables.layer_norms`).

    Log y axis (the residual stream grows by orders of magnitude over the layers); the last index,
    the output after the model's final norm, is annotated: its step is the norm, not the model.
    """
    set_style()
    colors = cue_colors(list(dict.fromkeys(norms["cue"])))
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for cue, c in colors.items():
        line = norms[norms["cue"] == cue].sort_values("layer")
        ax.plot(line["layer"], line["norm"], "-o", ms=3, color=c, label=cue)
    ax.set_yscale("log")
    last = int(norms["layer"].max())
    at = norms[norms["layer"] == last]["norm"]
    before = norms[norms["layer"] == last - 1]["norm"]
    step = f"×{float(at.mean() / before.mean()):.2g} " if len(before) else ""
    ax.annotate(
        f"final norm applied\n(layer {last}: {step}step)",
        xy=(last, float(at.mean())),
        xytext=(-12, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8},
    )
    ax.set_xlabel("layer (0: the embedding output, where 03 keeps it)")
    ax.set_ylabel("mean ‖h‖ over generated tokens (log)")
    _legend(ax, _cue_handles(colors, marker="o"), title="cue")
    return _finish(fig, title or "Hidden-state norm per layer (generative representation)", setting, ax)


def _kinds(table: pd.DataFrame) -> list[str]:
    """The kinds of representation in ``table``, generative first; ``["generative"]`` when it has no ``kind``."""
    if "kind" not in table.columns:
        return ["generative"]
    kinds = list(dict.fromkeys(table["kind"]))
    return [k for k in kinds if k in GENERATIVE_KINDS] + [k for k in kinds if k not in GENERATIVE_KINDS]


def alignment_bars(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Headline figure: mutual k-NN per encoder (one panel each), kind of representation (x) and cue (colour).

    ``table`` needs columns ``encoder``, ``cue``, ``score``, ``ci_low``, ``ci_high``, ``chance`` (and
    ``modality``, ``n_items`` for the panel titles); with a ``kind`` column, the generative bars are
    solid and each single-pass baseline (e.g. last prompt token, prompt mean) is hatched beside them:
    the paper's contrast. Error bars: 95% CIs; dotted: chance.
    """
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    cues = list(dict.fromkeys(table["cue"]))
    kinds = _kinds(table)
    data = table if "kind" in table.columns else table.assign(kind="generative")
    colors = cue_colors(cues)
    single = [k for k in kinds if k not in GENERATIVE_KINDS]
    hatch = {k: HATCHES[single.index(k) % len(HATCHES)] if k in single else "" for k in kinds}
    width = 0.8 / len(cues)
    fig, axes = _panels(
        len(encoders), width=max(2.6, 0.8 + 0.32 * len(cues) * len(kinds)), height=4.0, sharey=True, extra=2.6
    )
    for ax, enc in zip(axes, encoders):
        sub = data[data["encoder"] == enc]
        for j, cue in enumerate(cues):
            s = sub[sub["cue"] == cue].set_index("kind").reindex(kinds)
            x = np.arange(len(kinds)) - 0.4 + width * (j + 0.5)
            err = np.vstack([s["score"] - s["ci_low"], s["ci_high"] - s["score"]])
            bars = ax.bar(
                x,
                s["score"],
                width,
                yerr=err,
                capsize=2,
                color=colors[cue],
                edgecolor="0.2",
                linewidth=0.5,
                error_kw={"elinewidth": 0.8},
            )
            for bar, kind in zip(bars, kinds):
                bar.set_hatch(hatch[kind])
                bar.set_alpha(1.0 if not hatch[kind] else 0.75)
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        ax.set_xticks(np.arange(len(kinds)))
        ax.set_xticklabels(["\n".join(_wrap(k, 14)) for k in kinds], fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_title(_panel_title(sub, enc), fontsize=10)
    axes[0].set_ylabel("mutual k-NN alignment")
    handles = _cue_handles(colors)
    handles += [
        Patch(
            facecolor="white",
            edgecolor="0.2",
            hatch=hatch[k],
            label=k if k not in single or "single" in k else f"{k} (single pass)",
        )
        for k in kinds
    ]
    handles += [
        _chance_handle(),
        Line2D([], [], color="0.2", marker="|", ls="", ms=10, label=f"error bars: {CI_LEGEND}"),
    ]
    _legend(axes[-1], handles, title="cue / representation")
    return _finish(fig, title or "LLM ↔ encoder alignment by cue: generative vs single-pass representations", setting)


def alignment_scatter(
    table: pd.DataFrame, vision_encoder: str, audio_encoder: str, title: str = "", setting: str = ""
) -> plt.Figure:
    """Each cue as a point at (alignment with vision encoder, alignment with audio encoder), with CIs.

    With a ``kind`` column only the generative rows are drawn.
    """
    set_style()
    if "kind" in table.columns:
        table = table[table["kind"].isin(GENERATIVE_KINDS)]
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    fig, ax = plt.subplots(figsize=(6.2, 4.2), layout="constrained")
    for cue in cues:
        v = table[(table["cue"] == cue) & (table["encoder"] == vision_encoder)].iloc[0]
        a = table[(table["cue"] == cue) & (table["encoder"] == audio_encoder)].iloc[0]
        ax.errorbar(
            v["score"],
            a["score"],
            xerr=[[v["score"] - v["ci_low"]], [v["ci_high"] - v["score"]]],
            yerr=[[a["score"] - a["ci_low"]], [a["ci_high"] - a["score"]]],
            fmt="o",
            color=colors[cue],
            capsize=3,
        )
    ax.set_xlabel(f"alignment with {vision_encoder} (vision)")
    ax.set_ylabel(f"alignment with {audio_encoder} (audio)")
    _legend(ax, _cue_handles(colors, marker="o") + [_note(f"bars: {CI_LEGEND}")], title="cue")
    _few_ticks(ax)
    return _finish(fig, title or "Cues in (vision, audio) alignment space (generative representation)", setting, ax)


# ----------------------------------------------------------------------------- ablations (06, 07)


def length_curves(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Alignment against generation length T, one panel per encoder, one line per cue.

    ``table`` is :func:`helpers.analyses.tables.length_curve`'s: T = 0 is the last prompt token
    (filled marker on the line) with the prompt mean beside it (hollow marker); shaded bands are
    95% CIs; dotted: chance. T is on a log-like axis (equally spaced doublings).
    """
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    ts = sorted(set(table["T"]))
    pos = {t: i for i, t in enumerate(ts)}
    fig, axes = _panels(len(encoders), width=max(3.4, 0.55 * len(ts) + 1.2), height=3.6, extra=2.4)
    for ax, enc in zip(axes, encoders):
        sub = table[table["encoder"] == enc]
        for cue in cues:
            line = sub[(sub["cue"] == cue) & (sub["representation"] != "prompt_mean")].sort_values("T")
            x = line["T"].map(pos)
            ax.plot(x, line["score"], "-o", color=colors[cue], markersize=4)
            ax.fill_between(x, line["ci_low"], line["ci_high"], color=colors[cue], alpha=0.15, linewidth=0)
            pm = sub[(sub["cue"] == cue) & (sub["representation"] == "prompt_mean")]
            ax.plot([pos[0] + 0.15] * len(pm), pm["score"], "o", mfc="white", color=colors[cue], markersize=5)
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        full_t = int(sub.loc[sub["representation"] == "gen_mean", "T"].max())
        ax.set_xticks(range(len(ts)))
        ax.set_xticklabels(["0\nprompt" if t == 0 else f"{t}\nfull" if t == full_t else str(t) for t in ts], fontsize=8)
        ax.set_xlabel("generated tokens T")
        ax.set_title(_panel_title(sub, enc), fontsize=10)
    axes[0].set_ylabel("mutual k-NN alignment")
    handles = _cue_handles(colors, marker="o")
    handles += [
        Line2D([], [], ls="", marker="o", color="0.3", ms=5, label="T = 0: last prompt token"),
        Line2D([], [], ls="", marker="o", mfc="white", color="0.3", ms=5, label="T = 0: prompt mean"),
        Patch(facecolor="0.3", alpha=0.2, label=f"shaded: {CI_LEGEND}"),
        _chance_handle(),
    ]
    _legend(axes[-1], handles, title="cue")
    return _finish(fig, title or "Alignment vs generation length T (mean over the first T generated tokens)", setting)


def layerwise_curves(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Alignment of each layer's representation, one panel per encoder; dashed: the layer mean per cue."""
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    fig, axes = _panels(len(encoders), width=3.8, height=3.6, extra=2.4)
    for ax, enc in zip(axes, encoders):
        sub = table[table["encoder"] == enc]
        for cue in cues:
            c = sub[sub["cue"] == cue].sort_values("layer")
            ax.plot(c["layer"], c["score"], "-", color=colors[cue], linewidth=1.5)
            ax.axhline(float(c["layer_mean_score"].iloc[0]), color=colors[cue], linestyle="--", linewidth=1)
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        ax.set_xlabel("layer")
        ax.set_title(_panel_title(sub, enc), fontsize=10)
    axes[0].set_ylabel("mutual k-NN alignment")
    handles = [Line2D([], [], color=c, label=cue) for cue, c in colors.items()]
    handles += [
        Line2D([], [], color="0.3", linestyle="--", linewidth=1, label="mean over layers (05's value)"),
        _chance_handle(),
        _note("layer 0: the embedding output\n(where 03 keeps it)"),
    ]
    _legend(axes[-1], handles, title="cue")
    return _finish(fig, title or "Alignment of each layer's generative representation", setting)


def _significance_handles(color: str = "0.3") -> list:
    return [
        Line2D([], [], ls="", marker="o", color=color, label="filled: Holm p < 0.05"),
        Line2D([], [], ls="", marker="o", mfc="white", color=color, label="hollow: not significant"),
        _note(f"bars: {CI_LEGEND}"),
        _note("stars: " + STARS_LEGEND.replace(", ", "\n   ")),
    ]


def paired_differences(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Cue differences per encoder with 95% CIs, marked with their Holm-adjusted significance.

    ``table`` is :func:`helpers.analyses.tables.paired_cue_comparisons`'s (``comparison``, ``diff``,
    ``ci_low``, ``ci_high``, ``stars``); filled markers are significant after Holm (p < 0.05).
    """
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    comparisons = list(dict.fromkeys(table["comparison"]))
    palette = dict(zip(comparisons, sns.color_palette("colorblind", len(comparisons)).as_hex()))
    width = 0.8 / max(1, len(comparisons))
    fig, ax = plt.subplots(figsize=(3.4 + max(2.2, 0.8 * len(comparisons)) * len(encoders), 4.0), layout="constrained")
    span = float(np.nanmax(table["ci_high"]) - np.nanmin(table["ci_low"])) or 1.0
    for j, comp in enumerate(comparisons):
        sub = table[table["comparison"] == comp].set_index("encoder").reindex(encoders)
        x = np.arange(len(encoders)) - 0.4 + width * (j + 0.5)
        err = np.vstack([sub["diff"] - sub["ci_low"], sub["ci_high"] - sub["diff"]])
        ax.errorbar(x, sub["diff"], yerr=err, fmt="none", ecolor=palette[comp], capsize=3)
        significant = sub["p_holm"].to_numpy() < 0.05
        ax.scatter(x[significant], sub["diff"][significant], color=palette[comp], zorder=3)
        ax.scatter(x[~significant], sub["diff"][~significant], facecolor="white", edgecolor=palette[comp], zorder=3)
        for xi, hi, mark in zip(x, sub["ci_high"], sub["stars"]):
            ax.text(xi, hi + 0.02 * span, mark, ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(top=max(ax.get_ylim()[1], float(np.nanmax(table["ci_high"])) + 0.12 * span))  # room for the stars
    ax.set_xticks(np.arange(len(encoders)))
    ax.set_xticklabels([_panel_title(table[table["encoder"] == e], e) for e in encoders], fontsize=8)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel("Δ mutual k-NN alignment")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=comp) for comp, c in palette.items()]
    _legend(ax, handles + _significance_handles(), title="comparison (paired, same items)")
    return _finish(fig, title or "Paired cue differences (generative representation)", setting, ax)


def calibrated_scores(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Permutation-calibrated alignment (0 = chance, 1 = identical neighbourhoods) per kind × cue × encoder.

    ``kind`` is shown as given: map it to plain names first (``analysis.KIND_LABELS``).
    """
    set_style()
    data = table.assign(label=table["kind"] + " · " + table["cue"])
    n_enc = data["encoder"].nunique()
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.2 * data["label"].nunique() * max(1, n_enc)), layout="constrained")
    sns.barplot(data=data, y="label", x="calibrated", hue="encoder", ax=ax, orient="h")
    for container, (_, grp) in zip(ax.containers, data.groupby("encoder", sort=False)):
        ax.bar_label(container, labels=list(grp["stars"]), fontsize=7, padding=2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(right=ax.get_xlim()[1] * 1.08)  # room for the stars
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel("calibrated score (score − null mean) / (1 − null mean)")
    ax.set_ylabel("")
    handles = [Patch(facecolor=h.get_facecolor(), label=lab) for h, lab in zip(*ax.get_legend_handles_labels())]
    handles += [
        Line2D([], [], color="black", linewidth=0.8, label="0: the permutation null (chance)"),
        _note("stars: " + STARS_LEGEND.replace(", ", "\n   ")),
    ]
    _legend(ax, handles, title="encoder")
    return _finish(fig, title or "Alignment above the permutation null (one-sided permutation p)", setting, ax)


def sensory_word_deltas(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Notebook 08: change in alignment under each sensory-word ablation, one panel per cue.

    ``table`` needs ``cue``, ``ablation`` (x axis, in order of appearance), ``encoder``, ``diff``,
    ``ci_low``, ``ci_high`` (paired difference to the cue's own baseline, with its CI).
    """
    set_style()
    cues = list(dict.fromkeys(table["cue"]))
    palette = dict(
        zip(dict.fromkeys(table["encoder"]), sns.color_palette("colorblind", table["encoder"].nunique()).as_hex())
    )
    n_ablations = max(table.groupby("cue")["ablation"].nunique())
    fig, axes = _panels(len(cues), width=max(3.6, 1.1 * n_ablations + 0.6), height=4.2, sharey=True, extra=2.2)
    for ax, cue in zip(axes, cues):
        sub = table[table["cue"] == cue]
        ablations = list(dict.fromkeys(sub["ablation"]))
        encoders = list(dict.fromkeys(sub["encoder"]))
        width = 0.8 / max(1, len(encoders))
        for j, enc in enumerate(encoders):
            s = sub[sub["encoder"] == enc].set_index("ablation").reindex(ablations)
            x = np.arange(len(ablations)) - 0.4 + width * (j + 0.5)
            err = np.vstack([s["diff"] - s["ci_low"], s["ci_high"] - s["diff"]])
            ax.bar(x, s["diff"], width, yerr=err, capsize=3, color=palette[enc])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(ablations)))
        ax.set_xticklabels(["\n".join(_wrap(a, 13)) for a in ablations], fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_title(cue, fontsize=10)
    axes[0].set_ylabel("Δ mutual k-NN vs. the cue's baseline")
    handles = [Patch(facecolor=c, label=enc) for enc, c in palette.items()] + [_note(f"error bars: {CI_LEGEND}")]
    _legend(axes[-1], handles, title="encoder")
    return _finish(fig, title or "Sensory-word ablations (paired difference to the cue's own baseline)", setting)


def model_size_scatter(
    table: pd.DataFrame, vision_encoder: str, audio_encoder: str, title: str = "", setting: str = ""
) -> plt.Figure:
    """Every LLM × cue as a point at (vision alignment, audio alignment), with 95% CIs.

    ``table`` has one row per (``llm``, ``cue``, ``encoder``) with ``score``, ``ci_low`` and
    ``ci_high`` (notebook 09). Colour is the cue, marker the LLM (in table order, e.g. by
    size); a thin line joins the cues of one LLM so its cue shift reads as a direction.
    """
    set_style()
    llms = list(dict.fromkeys(table["llm"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    fig, ax = plt.subplots(figsize=(7.2, 4.6), layout="constrained")
    for j, name in enumerate(llms):
        marker = markers[j % len(markers)]
        xs, ys = [], []
        for cue in cues:
            sel = table[(table["llm"] == name) & (table["cue"] == cue)]
            v, a = sel[sel["encoder"] == vision_encoder], sel[sel["encoder"] == audio_encoder]
            if v.empty or a.empty:
                continue
            v, a = v.iloc[0], a.iloc[0]
            xs.append(v["score"])
            ys.append(a["score"])
            ax.errorbar(
                v["score"],
                a["score"],
                xerr=[[v["score"] - v["ci_low"]], [v["ci_high"] - v["score"]]],
                yerr=[[a["score"] - a["ci_low"]], [a["ci_high"] - a["score"]]],
                fmt=marker,
                color=colors[cue],
                ms=7,
                capsize=2,
                elinewidth=0.8,
            )
        ax.plot(xs, ys, color="0.6", lw=0.8, zorder=0)
    handles = _cue_handles(colors, marker="o")
    handles += [
        Line2D([], [], ls="", marker=markers[j % len(markers)], color="0.3", label=n) for j, n in enumerate(llms)
    ]
    handles += [Line2D([], [], color="0.6", lw=0.8, label="joins one LLM's cues"), _note(f"bars: {CI_LEGEND}")]
    _legend(ax, handles, title="cue / LLM")
    ax.set_xlabel(f"alignment with {vision_encoder} (vision)")
    ax.set_ylabel(f"alignment with {audio_encoder} (audio)")
    _few_ticks(ax)
    return _finish(fig, title or "Model size: each LLM under each cue", setting, ax)


# ----------------------------------------------------------------------------- across runs (11)


def _short_llm(name: str) -> str:
    return str(name).rsplit("/", 1)[-1]


def paper_plane(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """The paper's main figure: every (LLM, cue) at (vision alignment, audio alignment), with CIs.

    ``table`` is one (vision axis, audio axis) pair of :func:`helpers.run.crossrun.plane_table`
    (``source``, ``llm``, ``cue``, ``vision_score`` / ``vision_ci_low`` / ``vision_ci_high``, the
    same for ``audio_``, and the axes' run and encoder). Notebook 09's points (``source ==
    "model_size"``): colour is the cue, marker the LLM (in order of size), a thin line joins the
    cues of one LLM. Notebook 05's points (the run's own LLM at its full T) are large rings.
    Chance (``vision_chance``, ``audio_chance``) is left out: far below the points, it would squash them.
    """
    set_style()
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    size = table[table["source"] == "model_size"]
    if "n_params" in size.columns and size["n_params"].notna().all():
        size = size.sort_values("n_params", kind="stable")
    llms = list(dict.fromkeys(size["llm"]))
    fig, ax = plt.subplots(figsize=(7.4, 4.8), layout="constrained")

    def point(row, **style):
        ax.errorbar(
            row["vision_score"],
            row["audio_score"],
            xerr=[[row["vision_score"] - row["vision_ci_low"]], [row["vision_ci_high"] - row["vision_score"]]],
            yerr=[[row["audio_score"] - row["audio_ci_low"]], [row["audio_ci_high"] - row["audio_score"]]],
            capsize=2,
            elinewidth=0.8,
            **style,
        )

    for j, name in enumerate(llms):
        sub = (
            size[size["llm"] == name]
            .set_index("cue")
            .reindex([c for c in cues if c in set(size.loc[size["llm"] == name, "cue"])])
        )
        ax.plot(sub["vision_score"], sub["audio_score"], color="0.6", lw=0.8, zorder=0)
        for cue, row in sub.iterrows():
            point(row, fmt=markers[j % len(markers)], color=colors[cue], ms=7)
    own = table[table["source"] == "alignment"]
    for _, row in own.iterrows():
        point(row, fmt="o", ms=13, mfc="none", mew=1.6, color=colors[row["cue"]], zorder=4)
    handles = _cue_handles(colors, marker="o")
    handles += [
        Line2D([], [], ls="", marker=markers[j % len(markers)], color="0.3", label=_short_llm(n))
        for j, n in enumerate(llms)
    ]
    if len(own):
        r = own.iloc[0]
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                ms=11,
                mfc="none",
                color="0.3",
                label=f"ring: 05, {_short_llm(r['llm'])}, T = {r['T']}",
            )
        )
    handles += [Line2D([], [], color="0.6", lw=0.8, label="joins one LLM's cues"), _note(f"bars: {CI_LEGEND}")]
    _legend(ax, handles, title="cue / LLM")
    first = table.iloc[0]
    ax.set_xlabel(f"alignment with {first['vision_encoder']} ({first['vision_run']}, vision)")
    ax.set_ylabel(f"alignment with {first['audio_encoder']} ({first['audio_run']}, audio)")
    _few_ticks(ax)
    return _finish(fig, title or "Each LLM under each cue in (vision, audio) alignment space", setting, ax)


def size_curves(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Alignment against model size, one panel per (run, encoder), one line per cue, with CIs.

    ``table`` stacks notebook 09's ``model_size`` tables of the runs (``run``, ``encoder``,
    ``modality``, ``llm``, ``n_params``, ``cue``, ``score``, ``ci_low``, ``ci_high``, ``chance``);
    LLMs are placed in order of parameters. Dotted: chance.
    """
    set_style()
    panels = list(dict.fromkeys(zip(table["run"], table["encoder"])))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    order = table.groupby("llm", sort=False)["n_params"].first().sort_values(kind="stable")
    pos = {name: i for i, name in enumerate(order.index)}
    fig, axes = _panels(len(panels), width=max(3.4, 0.7 * len(pos) + 1.5), height=3.8, extra=2.2)
    for ax, (run, enc) in zip(axes, panels):
        sub = table[(table["run"] == run) & (table["encoder"] == enc)]
        for j, cue in enumerate(cues):
            c = sub[sub["cue"] == cue].assign(x=lambda d: d["llm"].map(pos)).sort_values("x")
            x = c["x"] + (j - (len(cues) - 1) / 2) * 0.06
            ax.errorbar(
                x,
                c["score"],
                yerr=[c["score"] - c["ci_low"], c["ci_high"] - c["score"]],
                fmt="-o",
                color=colors[cue],
                ms=4,
                capsize=2,
                elinewidth=0.8,
            )
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        ax.set_xticks(range(len(pos)))
        ax.set_xticklabels([_short_llm(n) for n in order.index], fontsize=7, rotation=30, ha="right")
        ax.set_xlabel("LLM (in order of parameters)", fontsize=8)
        ax.set_title(f"{enc}\n({run}, {sub['modality'].iloc[0]})", fontsize=10)
    axes[0].set_ylabel("mutual k-NN alignment")
    _legend(axes[-1], _cue_handles(colors, marker="o") + [_chance_handle(), _note(f"bars: {CI_LEGEND}")], title="cue")
    return _finish(fig, title or "Alignment vs model size", setting)


def cross_length_curves(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """:func:`length_curves` of several runs: one panel per (encoder, run).

    ``table`` stacks notebook 06's ``length_curve`` tables with their ``run`` column.
    """
    labelled = table.assign(encoder=table["encoder"] + " · " + table["run"])
    return length_curves(labelled, title=title or "Alignment vs generation length T across runs", setting=setting)


def cue_effects_forest(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """SEE−NONE and HEAR−NONE per (run, encoder) with 95% CIs, as a forest plot.

    ``table`` is :func:`helpers.run.crossrun.cue_effects`'s (``run``, ``encoder``, ``modality``,
    ``comparison``, ``cue_1``, ``diff``, ``ci_low``, ``ci_high``, ``p_holm``, ``stars``). One row per
    (run, encoder), the comparisons side by side in the colour of their cue; filled: Holm-adjusted
    p < 0.05 (within its run). The paper predicts SEE−NONE > 0 on vision rows, HEAR−NONE > 0 on audio rows.
    """
    set_style()
    rows = list(dict.fromkeys(zip(table["run"], table["encoder"], table["modality"])))
    comps = list(dict.fromkeys(table["comparison"]))
    cue_of = dict(zip(table["comparison"], table["cue_1"]))
    colors = cue_colors([cue_of[c] for c in comps])
    fig, ax = plt.subplots(figsize=(8.0, 1.6 + 0.55 * len(rows) * max(1, len(comps)) ** 0.5), layout="constrained")
    step = 0.6 / max(1, len(comps))
    for j, comp in enumerate(comps):
        sub = table[table["comparison"] == comp].set_index(["run", "encoder", "modality"]).reindex(rows)
        y = np.arange(len(rows)) - 0.3 + step * (j + 0.5)
        color = colors[cue_of[comp]]
        ax.errorbar(
            sub["diff"],
            y,
            xerr=[sub["diff"] - sub["ci_low"], sub["ci_high"] - sub["diff"]],
            fmt="none",
            ecolor=color,
            capsize=3,
        )
        significant = sub["p_holm"].to_numpy() < 0.05
        ax.scatter(sub["diff"][significant], y[significant], color=color, zorder=3)
        ax.scatter(sub["diff"][~significant], y[~significant], facecolor="white", edgecolor=color, zorder=3)
        for xi, yi, mark in zip(sub["ci_high"], y, sub["stars"]):
            if xi == xi:
                ax.text(xi, yi, f" {mark}", va="center", fontsize=7)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(right=ax.get_xlim()[1] + 0.08 * (ax.get_xlim()[1] - ax.get_xlim()[0]))  # room for the stars
    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels([f"{enc} ({run})\n{mod}" for run, enc, mod in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Δ mutual k-NN alignment (cue − NONE)")
    handles = [Line2D([], [], ls="", marker="o", color=colors[cue_of[c]], label=c) for c in comps]
    _legend(ax, handles + _significance_handles(), title="comparison")
    return _finish(fig, title or "Cue effects per run and encoder (Holm within each run)", setting, ax)


def transfer_effects(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Notebook 12: the matched cue effect of every reading, one panel per (comparison, encoder).

    ``table`` is :func:`helpers.analyses.transfer.cue_effects`'s (``writer``, ``reader``, ``reading``,
    ``comparison``, ``encoder``, ``modality``, ``matched``, ``diff``, ``ci_low``, ``ci_high``,
    ``p_holm``, ``stars``); only matched rows are drawn (SEE−NONE on vision, HEAR−NONE on audio).
    Rows are grouped by writer: its own generation (circle), then every other model reading it
    (square), in the writer's colour; filled: Holm-adjusted p < 0.05.
    """
    set_style()
    t = table[table["matched"].astype(bool)]
    panels = list(dict.fromkeys(zip(t["comparison"], t["encoder"], t["modality"])))
    writers = list(dict.fromkeys(t["writer"]))
    colors = dict(zip(writers, sns.color_palette("colorblind", len(writers)).as_hex()))
    order = sorted(
        dict.fromkeys(zip(t["writer"], t["reader"], t["reading"])), key=lambda r: (writers.index(r[0]), r[1] != r[0])
    )
    fig, axes = _panels(len(panels), 3.2, 1.4 + 0.42 * len(order), sharey=True, extra=5.0)  # y labels + legend
    for ax, (comp, enc, mod) in zip(axes, panels):
        sub = t[(t["comparison"] == comp) & (t["encoder"] == enc)].set_index(["writer", "reader"])
        for y, (w, r, _) in enumerate(order):
            if (w, r) not in sub.index:
                continue
            row = sub.loc[(w, r)]
            ax.errorbar(
                row["diff"],
                y,
                xerr=[[row["diff"] - row["ci_low"]], [row["ci_high"] - row["diff"]]],
                fmt="none",
                ecolor=colors[w],
                capsize=3,
            )
            filled = row["p_holm"] < 0.05
            ax.scatter(
                [row["diff"]],
                [y],
                marker="o" if w == r else "s",
                zorder=3,
                edgecolor=colors[w],
                facecolor=colors[w] if filled else "white",
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(f"{comp} on {enc}\n({mod})", fontsize=9)
        ax.set_xlabel("Δ alignment (cue − NONE)", fontsize=8)
    axes[0].set_yticks(np.arange(len(order)))
    axes[0].set_yticklabels([lab for _, _, lab in order], fontsize=8)
    axes[0].invert_yaxis()
    handles = [
        Line2D([], [], ls="", marker="s", color=c, label=f"{_short_llm(w).removesuffix('-instruct')}'s text")
        for w, c in colors.items()
    ]
    handles += [
        Line2D([], [], ls="", marker="o", color="0.3", label="read by its writer"),
        Line2D([], [], ls="", marker="s", color="0.3", label="read by another model"),
        _note("filled: Holm p < 0.05"),
        _note(f"bars: {CI_LEGEND}"),
    ]
    _legend(axes[-1], handles, title="whose text / who reads")
    return _finish(fig, title or "Does the cue effect travel with the text?", setting)


def variant_effects(table: pd.DataFrame, title: str = "", setting: str = "") -> plt.Figure:
    """Notebook 13: the matched cue effect under each prompt variant, one panel per (comparison, encoder).

    ``table`` is :func:`helpers.analyses.rephrasing.effects`'s (``variant``, ``cue``, ``comparison``,
    ``encoder``, ``modality``, ``matched``, ``diff``, ``ci_low``, ``ci_high``, ``p_holm``); only
    matched rows are drawn. One row per variant in table order (the paper's prompts first), in the
    cue's colour; filled: Holm-adjusted p < 0.05; the grey band spans the variants' effects.
    """
    set_style()
    t = table[table["matched"].astype(bool)]
    panels = list(dict.fromkeys(zip(t["comparison"], t["encoder"], t["modality"], t["cue"])))
    names = list(dict.fromkeys(t["variant"]))
    colors = cue_colors(list(dict.fromkeys(t["cue"])))
    fig, axes = _panels(len(panels), 3.2, 1.4 + 0.4 * len(names), sharey=True, extra=4.6)
    for ax, (comp, enc, mod, cue) in zip(axes, panels):
        sub = t[(t["comparison"] == comp) & (t["encoder"] == enc)].set_index("variant").reindex(names)
        ax.axvspan(float(sub["diff"].min()), float(sub["diff"].max()), color="0.88", zorder=0)
        y = np.arange(len(names))
        ax.errorbar(
            sub["diff"],
            y,
            xerr=[sub["diff"] - sub["ci_low"], sub["ci_high"] - sub["diff"]],
            fmt="none",
            ecolor=colors[cue],
            capsize=3,
        )
        filled = (sub["p_holm"] < 0.05).to_numpy()
        ax.scatter(sub["diff"][filled], y[filled], color=colors[cue], zorder=3)
        ax.scatter(sub["diff"][~filled], y[~filled], facecolor="white", edgecolor=colors[cue], zorder=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(f"{comp} on {enc}\n({mod})", fontsize=9)
        ax.set_xlabel("Δ alignment (cue − NONE)", fontsize=8)
    axes[0].set_yticks(np.arange(len(names)))
    axes[0].set_yticklabels(names, fontsize=8)
    axes[0].invert_yaxis()
    handles = _cue_handles(colors, marker="o") + [
        Line2D([], [], color="0.88", lw=6, label="range over the variants"),
        _note("filled: Holm p < 0.05"),
        _note(f"bars: {CI_LEGEND}"),
    ]
    _legend(axes[-1], handles, title="cue − NONE")
    return _finish(fig, title or "Cue effects under trivial rephrasings", setting)


def cue_search(
    search: pd.DataFrame, held: pd.DataFrame, encoder: str, title: str = "", setting: str = ""
) -> plt.Figure:
    """Notebook 14: every candidate's score on the search half, and the winner against the others on the held-out half.

    ``search``: :func:`helpers.analyses.cue_search.search_table` (``cue``, ``score``, ``ci_low``, ``ci_high``,
    ranked); ``held``: :func:`helpers.analyses.cue_search.held_out_effects` (``condition``, ``baseline``,
    ``encoder``, ``diff``, CIs, ``p_holm``), drawn for ``encoder``. The winner is the dark bar, NONE's
    score the dashed line; right, filled markers are Holm-adjusted p < 0.05.
    """
    set_style()
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10.5, 1.6 + 0.32 * len(search)), layout="constrained", gridspec_kw={"width_ratios": [1.4, 1]}
    )
    y = np.arange(len(search))
    colors = ["0.25" if r == 1 else "0.7" for r in search["rank"]]
    left.barh(y, search["score"], color=colors)
    left.errorbar(
        search["score"],
        y,
        xerr=[search["score"] - search["ci_low"], search["ci_high"] - search["score"]],
        fmt="none",
        ecolor="black",
        capsize=2,
        lw=0.8,
    )
    none = search.loc[search["cue"] == "NONE", "score"]
    if len(none):
        left.axvline(float(none.iloc[0]), color="black", ls="--", lw=0.8)
    left.set_yticks(y)
    left.set_yticklabels(search["cue"], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel(f"alignment with {encoder} (search half)", fontsize=8)
    left.xaxis.set_major_locator(MaxNLocator(5))
    sub = held[held["encoder"] == encoder] if len(held) else held
    yy = np.arange(len(sub))
    if len(sub):
        right.errorbar(
            sub["diff"],
            yy,
            xerr=[sub["diff"] - sub["ci_low"], sub["ci_high"] - sub["diff"]],
            fmt="none",
            ecolor="0.25",
            capsize=3,
        )
        filled = (sub["p_holm"] < 0.05).to_numpy()
        right.scatter(sub["diff"][filled], yy[filled], color="0.25", zorder=3)
        right.scatter(sub["diff"][~filled], yy[~filled], facecolor="white", edgecolor="0.25", zorder=3)
        right.set_yticks(yy)
        right.set_yticklabels([f"{c} − {b}" for c, b in zip(sub["condition"], sub["baseline"])], fontsize=8)
        right.invert_yaxis()
    right.axvline(0, color="black", linewidth=0.8)
    right.xaxis.set_major_locator(MaxNLocator(4))
    right.set_xlabel("Δ alignment on the held-out half (paired)", fontsize=8)
    handles = [
        Line2D([], [], color="0.25", lw=6, label="winner (search half)"),
        Line2D([], [], color="0.7", lw=6, label="other candidates"),
        Line2D([], [], color="black", ls="--", lw=0.8, label="NONE's score"),
        _note("filled: Holm p < 0.05"),
        _note(f"bars: {CI_LEGEND}"),
    ]
    _legend(right, handles)
    return _finish(fig, title or "Cue search: chosen on one half, tested on the other", setting)
