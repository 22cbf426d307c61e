"""The figures, one function per figure, in one shared seaborn style.

Every function returns the matplotlib Figure; :func:`save_figure` writes it as PNG
and PDF under the run's figures folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

CUE_PALETTE = {"SEE": "#1f77b4", "HEAR": "#d62728", "NONE": "#7f7f7f"}


def set_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)


def cue_colors(cues: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the paper's cues; any other cue gets a tab10/tab20 colour none of them uses.

    The paper's colours are reserved even when their cues are absent, so a custom cue is
    never drawn in SEE's blue or HEAR's red; distinct custom cues get distinct colours.
    """
    used = {c.lower() for c in CUE_PALETTE.values()}
    free = [c for c in sns.color_palette("tab10", 10).as_hex() + sns.color_palette("tab20", 20).as_hex() if c.lower() not in used]
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


def image_gallery(images: Sequence, captions: Sequence[str], ncols: int = 6, size: float = 2.0) -> plt.Figure:
    """A grid of images with their captions underneath."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 1.25 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap in zip(axes.flat, images, captions):
        ax.imshow(img)
        ax.set_title("\n".join(_wrap(cap, 24)[:3]), fontsize=8)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def layer_norm_curves(norms: pd.DataFrame, title: str = "") -> plt.Figure:
    """Notebook 03's check: mean hidden-state norm per layer, one line per cue (:func:`helpers.analysis.layer_norms`)."""
    set_style()
    fig, ax = plt.subplots(figsize=(6, 3))
    sns.lineplot(data=norms, x="layer", y="norm", hue="cue", palette=cue_colors(list(norms["cue"].unique())), ax=ax)
    ax.set_ylabel("mean ‖h‖ over generated tokens")
    if title:
        ax.set_title(title)
    return fig


def alignment_bars(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Headline figure: mutual k-NN per encoder (x) and cue (hue) with bootstrap CIs and chance level.

    ``table`` needs columns ``encoder``, ``cue``, ``score``, ``ci_low``, ``ci_high``, ``chance``.
    """
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    width = 0.8 / len(cues)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(encoders), 3.6))
    for j, cue in enumerate(cues):
        sub = table[table["cue"] == cue].set_index("encoder").reindex(encoders)
        x = np.arange(len(encoders)) - 0.4 + width * (j + 0.5)
        err = np.vstack([sub["score"] - sub["ci_low"], sub["ci_high"] - sub["score"]])
        ax.bar(x, sub["score"], width, yerr=err, capsize=3, color=colors[cue], label=cue)
    for i, enc in enumerate(encoders):
        chance = float(table.loc[table["encoder"] == enc, "chance"].iloc[0])
        ax.hlines(chance, i - 0.45, i + 0.45, colors="black", linestyles="dotted", linewidth=1)
    ax.set_xticks(np.arange(len(encoders)))
    ax.set_xticklabels([f"{e}\n({table.loc[table['encoder'] == e, 'modality'].iloc[0]})" for e in encoders])
    ax.set_ylabel("mutual k-NN alignment")
    ax.set_title(title or "LLM ↔ encoder alignment by cue (95% bootstrap CI; dotted: chance)")
    ax.legend(title="cue", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def alignment_scatter(table: pd.DataFrame, vision_encoder: str, audio_encoder: str, title: str = "") -> plt.Figure:
    """Each cue as a point at (alignment with vision encoder, alignment with audio encoder), with CIs."""
    set_style()
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    fig, ax = plt.subplots(figsize=(4.4, 4.0))
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
            label=cue,
        )
    ax.set_xlabel(f"alignment with {vision_encoder} (vision)")
    ax.set_ylabel(f"alignment with {audio_encoder} (audio)")
    ax.set_title(title or "Cues in (vision, audio) alignment space")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- ablations (06, 07)


def _facets(n: int, width: float = 3.6, height: float = 3.2) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(1, max(1, n), figsize=(0.6 + width * max(1, n), height), squeeze=False, sharey=False)
    return fig, axes[0]


def length_curves(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Alignment against generation length T, one panel per encoder, one line per cue.

    ``table`` is :func:`helpers.analysis.length_curve`'s: T = 0 is the last prompt token
    (filled marker on the line) with the prompt mean beside it (hollow marker); shaded bands are
    bootstrap CIs; dotted: chance. T is on a log-like axis (equally spaced doublings).
    """
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    ts = sorted(set(table["T"]))
    pos = {t: i for i, t in enumerate(ts)}
    fig, axes = _facets(len(encoders))
    for ax, enc in zip(axes, encoders):
        sub = table[table["encoder"] == enc]
        for cue in cues:
            line = sub[(sub["cue"] == cue) & (sub["representation"] != "prompt_mean")].sort_values("T")
            x = line["T"].map(pos)
            ax.plot(x, line["score"], "-o", color=colors[cue], label=cue, markersize=4)
            ax.fill_between(x, line["ci_low"], line["ci_high"], color=colors[cue], alpha=0.15, linewidth=0)
            pm = sub[(sub["cue"] == cue) & (sub["representation"] == "prompt_mean")]
            ax.plot([pos[0] + 0.12] * len(pm), pm["score"], "o", mfc="white", color=colors[cue], markersize=5)
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        full_t = int(sub.loc[sub["representation"] == "gen_mean", "T"].max())
        ax.set_xticks(range(len(ts)))
        ax.set_xticklabels(["0\nprompt" if t == 0 else f"{t}\nfull" if t == full_t else str(t) for t in ts])
        ax.set_xlabel("generated tokens T")
        ax.set_title(f"{enc} ({sub['modality'].iloc[0]}, n={int(sub['n_items'].iloc[0])})")
    axes[0].set_ylabel("mutual k-NN alignment")
    axes[-1].legend(title="cue", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle(title or "Alignment vs generation length (T=0: single pass; hollow: prompt mean; dotted: chance)")
    fig.tight_layout()
    return fig


def layerwise_curves(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Alignment of each layer's representation, one panel per encoder; dashed: the layer mean per cue."""
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    fig, axes = _facets(len(encoders), width=4.0)
    for ax, enc in zip(axes, encoders):
        sub = table[table["encoder"] == enc]
        for cue in cues:
            c = sub[sub["cue"] == cue].sort_values("layer")
            ax.plot(c["layer"], c["score"], "-", color=colors[cue], label=cue, linewidth=1.5)
            ax.axhline(float(c["layer_mean_score"].iloc[0]), color=colors[cue], linestyle="--", linewidth=1)
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        ax.set_xlabel("layer")
        ax.set_title(f"{enc} ({sub['modality'].iloc[0]}, n={int(sub['n_items'].iloc[0])})")
    axes[0].set_ylabel("mutual k-NN alignment")
    axes[-1].legend(title="cue", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle(title or "Alignment per layer (dashed: mean over layers; dotted: chance)")
    fig.tight_layout()
    return fig


def paired_differences(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Cue differences per encoder with bootstrap CIs, marked with their Holm-adjusted significance.

    ``table`` is :func:`helpers.analysis.paired_cue_comparisons`'s (``comparison``, ``diff``,
    ``ci_low``, ``ci_high``, ``stars``); filled markers are significant after Holm (p < 0.05).
    """
    set_style()
    encoders = list(dict.fromkeys(table["encoder"]))
    comparisons = list(dict.fromkeys(table["comparison"]))
    palette = dict(zip(comparisons, sns.color_palette("colorblind", len(comparisons)).as_hex()))
    width = 0.8 / max(1, len(comparisons))
    fig, ax = plt.subplots(figsize=(1.8 + 1.7 * len(encoders), 3.6))
    span = float(np.nanmax(table["ci_high"]) - np.nanmin(table["ci_low"])) or 1.0
    for j, comp in enumerate(comparisons):
        sub = table[table["comparison"] == comp].set_index("encoder").reindex(encoders)
        x = np.arange(len(encoders)) - 0.4 + width * (j + 0.5)
        err = np.vstack([sub["diff"] - sub["ci_low"], sub["ci_high"] - sub["diff"]])
        ax.errorbar(x, sub["diff"], yerr=err, fmt="none", ecolor=palette[comp], capsize=3)
        significant = sub["p_holm"].to_numpy() < 0.05
        ax.scatter(x[significant], sub["diff"][significant], color=palette[comp], zorder=3)
        ax.scatter(x[~significant], sub["diff"][~significant], facecolor="white", edgecolor=palette[comp], zorder=3)
        ax.scatter([], [], color=palette[comp], label=comp)  # one legend entry per comparison
        for xi, hi, mark in zip(x, sub["ci_high"], sub["stars"]):
            ax.text(xi, hi + 0.02 * span, mark, ha="center", va="bottom", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(encoders)))
    ax.set_xticklabels([f"{e}\n({table.loc[table['encoder'] == e, 'modality'].iloc[0]})" for e in encoders])
    ax.set_ylabel("Δ mutual k-NN alignment")
    ax.set_title(title or "Paired cue differences (95% bootstrap CI)\nfilled / stars: Holm-adjusted sign-flip p < 0.05")
    ax.legend(title="comparison", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def calibrated_scores(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Permutation-calibrated alignment (0 = chance, 1 = identical neighbourhoods) per kind × cue × encoder."""
    set_style()
    data = table.assign(label=table["kind"] + " · " + table["cue"])
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * data["encoder"].nunique(), 0.8 + 0.28 * data["label"].nunique()))
    sns.barplot(data=data, y="label", x="calibrated", hue="encoder", ax=ax, orient="h")
    for container, (_, grp) in zip(ax.containers, data.groupby("encoder", sort=False)):
        ax.bar_label(container, labels=list(grp["stars"]), fontsize=7, padding=2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("calibrated score (score − null mean) / (1 − null mean)")
    ax.set_ylabel("")
    ax.set_title(title or "Alignment above the permutation null (stars: Holm-adjusted p)")
    ax.legend(title="encoder", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def sensory_word_deltas(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Notebook 08: change in alignment under each sensory-word ablation, one panel per cue.

    ``table`` needs ``cue``, ``ablation`` (x axis, in order of appearance), ``encoder``, ``diff``,
    ``ci_low``, ``ci_high`` (paired difference to the cue's own baseline, with its CI).
    """
    set_style()
    cues = list(dict.fromkeys(table["cue"]))
    fig, axes = plt.subplots(1, len(cues), figsize=(0.4 + 4.8 * len(cues), 4.0), squeeze=False, sharey=True)
    for ax, cue in zip(axes[0], cues):
        sub = table[table["cue"] == cue]
        ablations = list(dict.fromkeys(sub["ablation"]))
        encoders = list(dict.fromkeys(sub["encoder"]))
        palette = dict(zip(encoders, sns.color_palette("colorblind", len(encoders))))
        width = 0.8 / max(1, len(encoders))
        for j, enc in enumerate(encoders):
            s = sub[sub["encoder"] == enc].set_index("ablation").reindex(ablations)
            x = np.arange(len(ablations)) - 0.4 + width * (j + 0.5)
            err = np.vstack([s["diff"] - s["ci_low"], s["ci_high"] - s["diff"]])
            ax.bar(x, s["diff"], width, yerr=err, capsize=3, color=palette[enc], label=enc)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(ablations)))
        ax.set_xticklabels(["\n".join(_wrap(a, 13)) for a in ablations], fontsize=8)
        ax.set_title(cue)
        ax.legend(title="encoder", frameon=False, fontsize=8, loc="best")
    axes[0][0].set_ylabel("Δ mutual k-NN vs. the cue's baseline")
    fig.suptitle(title or "Sensory-word ablations (paired difference, 95% bootstrap CI)", fontsize=11)
    fig.tight_layout()
    return fig


def model_size_scatter(
    table: pd.DataFrame, vision_encoder: str, audio_encoder: str, title: str = ""
) -> plt.Figure:
    """Every LLM × cue as a point at (vision alignment, audio alignment), with bootstrap CIs.

    ``table`` has one row per (``llm``, ``cue``, ``encoder``) with ``score``, ``ci_low`` and
    ``ci_high`` (notebook 09). Colour is the cue, marker the LLM (in table order, e.g. by
    size); a thin line joins the cues of one LLM so its cue shift reads as a direction.
    """
    set_style()
    llms = list(dict.fromkeys(table["llm"]))
    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
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
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=colors[c], label=c) for c in cues]
    handles += [Line2D([], [], ls="", marker=markers[j % len(markers)], color="0.3", label=n) for j, n in enumerate(llms)]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xlabel(f"alignment with {vision_encoder} (vision)")
    ax.set_ylabel(f"alignment with {audio_encoder} (audio)")
    ax.set_title(title or "Model size: each LLM under each cue")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- across runs (11)


def _short_llm(name: str) -> str:
    return str(name).rsplit("/", 1)[-1]


def paper_plane(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """The paper's main figure: every (LLM, cue) at (vision alignment, audio alignment), with CIs.

    ``table`` is one (vision axis, audio axis) pair of :func:`helpers.crossrun.plane_table`
    (``source``, ``llm``, ``cue``, ``vision_score`` / ``vision_ci_low`` / ``vision_ci_high``, the
    same for ``audio_``, and the axes' run and encoder). Notebook 09's points (``source ==
    "model_size"``): colour is the cue, marker the LLM (in order of size), a thin line joins the
    cues of one LLM. Notebook 05's points (the run's own LLM at its full T) are large rings.
    Chance (``vision_chance``, ``audio_chance``) is left out: far below the points, it would squash them.
    """
    set_style()
    from matplotlib.lines import Line2D

    cues = list(dict.fromkeys(table["cue"]))
    colors = cue_colors(cues)
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    size = table[table["source"] == "model_size"]
    if "n_params" in size.columns and size["n_params"].notna().all():
        size = size.sort_values("n_params", kind="stable")
    llms = list(dict.fromkeys(size["llm"]))
    fig, ax = plt.subplots(figsize=(6.0, 4.8))

    def point(row, **style):
        ax.errorbar(
            row["vision_score"], row["audio_score"],
            xerr=[[row["vision_score"] - row["vision_ci_low"]], [row["vision_ci_high"] - row["vision_score"]]],
            yerr=[[row["audio_score"] - row["audio_ci_low"]], [row["audio_ci_high"] - row["audio_score"]]],
            capsize=2, elinewidth=0.8, **style,
        )

    for j, name in enumerate(llms):
        sub = size[size["llm"] == name].set_index("cue").reindex([c for c in cues if c in set(size.loc[size["llm"] == name, "cue"])])
        ax.plot(sub["vision_score"], sub["audio_score"], color="0.6", lw=0.8, zorder=0)
        for cue, row in sub.iterrows():
            point(row, fmt=markers[j % len(markers)], color=colors[cue], ms=7)
    own = table[table["source"] == "alignment"]
    for _, row in own.iterrows():
        point(row, fmt="o", ms=13, mfc="none", mew=1.6, color=colors[row["cue"]], zorder=4)
    handles = [Line2D([], [], ls="", marker="o", color=colors[c], label=c) for c in cues]
    handles += [Line2D([], [], ls="", marker=markers[j % len(markers)], color="0.3", label=_short_llm(n)) for j, n in enumerate(llms)]
    if len(own):
        r = own.iloc[0]
        handles.append(Line2D([], [], ls="", marker="o", ms=11, mfc="none", color="0.3", label=f"05: {_short_llm(r['llm'])}, T={r['T']}"))
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    first = table.iloc[0]
    ax.set_xlabel(f"alignment with {first['vision_encoder']} ({first['vision_run']}, vision)")
    ax.set_ylabel(f"alignment with {first['audio_encoder']} ({first['audio_run']}, audio)")
    ax.set_title(title or "Each LLM under each cue in (vision, audio) alignment space")
    fig.tight_layout()
    return fig


def size_curves(table: pd.DataFrame, title: str = "") -> plt.Figure:
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
    fig, axes = _facets(len(panels), width=max(3.6, 0.7 * len(pos) + 1.5))
    for ax, (run, enc) in zip(axes, panels):
        sub = table[(table["run"] == run) & (table["encoder"] == enc)]
        for j, cue in enumerate(cues):
            c = sub[sub["cue"] == cue].assign(x=lambda d: d["llm"].map(pos)).sort_values("x")
            x = c["x"] + (j - (len(cues) - 1) / 2) * 0.06
            ax.errorbar(x, c["score"], yerr=[c["score"] - c["ci_low"], c["ci_high"] - c["score"]], fmt="-o",
                        color=colors[cue], label=cue, ms=4, capsize=2, elinewidth=0.8)
        ax.axhline(float(sub["chance"].iloc[0]), color="black", linestyle="dotted", linewidth=1)
        ax.set_xticks(range(len(pos)))
        ax.set_xticklabels([_short_llm(n) for n in order.index], fontsize=7, rotation=30, ha="right")
        ax.set_xlabel("LLM (in order of parameters)", fontsize=8)
        ax.set_title(f"{enc} ({run}, {sub['modality'].iloc[0]})", fontsize=10)
    axes[0].set_ylabel("mutual k-NN alignment")
    axes[-1].legend(title="cue", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle(title or "Alignment vs model size (95% bootstrap CI; dotted: chance)")
    fig.tight_layout()
    return fig


def cross_length_curves(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """:func:`length_curves` of several runs: one panel per (encoder, run).

    ``table`` stacks notebook 06's ``length_curve`` tables with their ``run`` column.
    """
    labelled = table.assign(encoder=table["encoder"] + " · " + table["run"])
    return length_curves(labelled, title=title or "Alignment vs generation length across runs (T=0: single pass; dotted: chance)")


def cue_effects_forest(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """SEE−NONE and HEAR−NONE per (run, encoder) with 95% bootstrap CIs, as a forest plot.

    ``table`` is :func:`helpers.crossrun.cue_effects`'s (``run``, ``encoder``, ``modality``,
    ``comparison``, ``cue_1``, ``diff``, ``ci_low``, ``ci_high``, ``p_holm``, ``stars``). One row per
    (run, encoder), the comparisons side by side in the colour of their cue; filled: Holm-adjusted
    p < 0.05 (within its run). The paper predicts SEE−NONE > 0 on vision rows, HEAR−NONE > 0 on audio rows.
    """
    set_style()
    rows = list(dict.fromkeys(zip(table["run"], table["encoder"], table["modality"])))
    comps = list(dict.fromkeys(table["comparison"]))
    cue_of = dict(zip(table["comparison"], table["cue_1"]))
    colors = cue_colors([cue_of[c] for c in comps])
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.55 * len(rows) * max(1, len(comps)) ** 0.5))
    step = 0.6 / max(1, len(comps))
    for j, comp in enumerate(comps):
        sub = table[table["comparison"] == comp].set_index(["run", "encoder", "modality"]).reindex(rows)
        y = np.arange(len(rows)) - 0.3 + step * (j + 0.5)
        color = colors[cue_of[comp]]
        ax.errorbar(sub["diff"], y, xerr=[sub["diff"] - sub["ci_low"], sub["ci_high"] - sub["diff"]], fmt="none",
                    ecolor=color, capsize=3)
        significant = sub["p_holm"].to_numpy() < 0.05
        ax.scatter(sub["diff"][significant], y[significant], color=color, zorder=3)
        ax.scatter(sub["diff"][~significant], y[~significant], facecolor="white", edgecolor=color, zorder=3)
        ax.scatter([], [], color=color, label=comp)
        for xi, yi, mark in zip(sub["ci_high"], y, sub["stars"]):
            if xi == xi:
                ax.text(xi, yi, f" {mark}", va="center", fontsize=7)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels([f"{enc} ({run})\n{mod}" for run, enc, mod in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Δ mutual k-NN alignment (cue − NONE)")
    ax.set_title(title or "Cue effects per run and encoder (95% bootstrap CI)\nfilled / stars: Holm-adjusted p < 0.05 within the run")
    ax.legend(title="comparison", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig
