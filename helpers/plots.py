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
