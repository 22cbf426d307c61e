"""Self-contained HTML of a run's items: highlighted generations, thumbnails, players, neighbours, figures.

Everything is inlined (PNG thumbnails, WAV players, figures as data URIs), so the HTML shows the
same in the live playground, in its static summary of a headless run and in an executed notebook
opened anywhere. Sensory words are found by :func:`helpers.data.lexicon.find_words`, the one tokeniser
the removal ablation uses too.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from helpers.data.lexicon import find_words, load_lexicons

#: Background colours of highlighted words: light blue for visual (SEE's hue), light red for auditory (HEAR's).
HIGHLIGHT_COLOURS: dict[str, str] = {"visual": "#aec7e8", "auditory": "#ff9896"}


def default_lexicons() -> dict[str, Any]:
    """The shipped visual and auditory lexicons of :mod:`helpers.data.lexicon`."""
    return dict(load_lexicons())


def sensory_spans(text: str, lexicons: Mapping[str, Any]) -> list[tuple[int, int, list[str]]]:
    """Non-overlapping ``(start, end, modalities)`` of the sensory words of ``text``, in text order.

    A word in several lexicons carries all their names; of two overlapping spans (multi-word
    entries) the earlier, then longer, one is kept.
    """
    by_span: dict[tuple[int, int], list[str]] = {}
    for modality, lexicon in lexicons.items():
        for start, end, _ in find_words(text, lexicon):
            mods = by_span.setdefault((int(start), int(end)), [])
            if modality not in mods:
                mods.append(modality)
    spans: list[tuple[int, int, list[str]]] = []
    for (start, end), mods in sorted(by_span.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        if spans and start < spans[-1][1]:
            continue
        spans.append((start, end, mods))
    return spans


def highlight_html(
    text: str,
    lexicons: Mapping[str, Any],
    colours: Mapping[str, str] | None = None,
) -> str:
    """``text`` as HTML with each sensory word in a ``<mark class="pg-<modality>">`` of its modality's colour.

    ``lexicons`` maps a modality name (``"visual"``, ``"auditory"``) to a lexicon with
    ``.matches(token)``; ``colours`` maps the same names to CSS colours (default
    :data:`HIGHLIGHT_COLOURS`). A word of two modalities gets both colours as stripes.
    Everything else is HTML-escaped; newlines are kept by ``white-space: pre-wrap``.
    """
    colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
    missing = [m for m in lexicons if m not in colours]
    if missing:
        raise ValueError(f"no highlight colour for lexicon(s) {missing}; pass colours={{{missing[0]!r}: '#rrggbb'}}")
    parts, pos = [], 0
    for start, end, mods in sensory_spans(text, lexicons):
        parts.append(html.escape(text[pos:start]))
        if len(mods) == 1:
            background = colours[mods[0]]
        else:
            stops = ", ".join(
                f"{colours[m]} {100 * i / len(mods):.0f}% {100 * (i + 1) / len(mods):.0f}%" for i, m in enumerate(mods)
            )
            background = f"linear-gradient(180deg, {stops})"
        classes = " ".join(f"pg-{m}" for m in mods)
        parts.append(
            f'<mark class="{classes}" title="{html.escape(", ".join(mods))}" '
            f'style="background: {background}; padding: 0 1px">{html.escape(text[start:end])}</mark>'
        )
        pos = end
    parts.append(html.escape(text[pos:]))
    return '<div class="pg-generation" style="white-space: pre-wrap">' + "".join(parts) + "</div>"


def legend_html(colours: Mapping[str, str] | None = None, modalities: Sequence[str] = ("visual", "auditory")) -> str:
    """The highlight colours of ``modalities`` as marked words (the generation's legend)."""
    colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
    return " ".join(f'<mark style="background: {colours[m]}">{html.escape(m)}</mark>' for m in modalities)


def count_sensory(text: str, lexicons: Mapping[str, Any]) -> dict[str, int]:
    """Number of words of each lexicon in ``text``."""
    return {m: len(find_words(text, lex)) for m, lex in lexicons.items()}


def image_html(path: str | None, size: int = 96, title: str = "") -> str:
    """An ``<img>`` with the image at ``path`` inlined as a PNG thumbnail (a grey box when there is none)."""
    if not path:
        return f'<div style="width:{size}px;height:{size}px;background:#eee" title="{html.escape(title)}"></div>'
    from helpers.data.media import load_image

    img = load_image(path)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" title="{html.escape(title)}" style="max-width:{size}px;max-height:{size}px">'


def audio_html(
    path: str | None, max_seconds: float = 5.0, sr: int = 16000, autoplay: bool = False, width: int = 160
) -> str:
    """An ``<audio controls>`` player with the first ``max_seconds`` of ``path`` inlined as WAV ("" without a sound)."""
    if not path:
        return ""
    import soundfile as sf

    from helpers.data.media import load_audio

    wave = load_audio(path, target_sr=sr, max_seconds=max_seconds)
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="PCM_16")
    data = base64.b64encode(buf.getvalue()).decode()
    return (
        f'<audio class="pg-audio" controls{" autoplay" if autoplay else ""} style="width:{width}px" '
        f'src="data:audio/wav;base64,{data}"></audio>'
    )


#: Border of a neighbour that is in both lists (the LLM's and the encoder's k nearest), and of one that is not.
SHARED_BORDER = "3px solid #2ca02c"
UNSHARED_BORDER = "1px solid #ddd"


def neighbour_legend_html(k: int, quantile: float = 0.95, first_layer: int = 0) -> str:
    """What the neighbour table shows: the green outline (shared neighbours), the numbers and ranks, the spaces.

    The numbers are what :func:`helpers.analyses.neighbours.item_neighbours` puts in ``similarity``: the
    cosine similarity to the selected item after :func:`helpers.metrics.alignment.prepare_features`
    (PRH's clamp at the ``quantile`` of |x|, then L2 normalisation), over the items both spaces cover.
    """
    clamp = (
        f"each feature clamped to ±c, c = the {100 * quantile:g}th percentile of an item's |values| averaged over items; "
        if quantile < 1
        else ""
    )
    layers = "all its layers" if first_layer == 0 else f"its layers from {first_layer} on"
    swatch = f'<span style="border:{SHARED_BORDER};padding:0 4px;background:#fff">outlined in green</span>'
    plain = f'<span style="border:{UNSHARED_BORDER};padding:0 4px;background:#fff">thin grey border</span>'
    return (
        '<div class="pg-legend pg-nn-legend" style="border:1px solid #ccc;background:#fafafa;padding:4px 10px;'
        'margin:4px 0;font-size:90%;line-height:1.5"><b>Reading the neighbours</b> '
        f"(k={int(k)} per list; rank 1 = nearest)<br>"
        f"{swatch}: a <b>shared</b> neighbour, among the item's k nearest under the LLM representation "
        f"<i>and</i> under that encoder; {plain}: in one list only. Shared ÷ k is this item's mutual k-NN score "
        "(notebook 05 averages it over all items).<br>"
        "<code>0.83</code> under a neighbour: its <b>cosine similarity</b> to the selected item in that space, "
        f"after the PRH preprocessing mutual k-NN uses ({clamp}each vector L2-normalised), computed over the items "
        "both spaces cover. Numbers of the two lists are on different scales: compare ranks, not values.<br>"
        "LLM representation: the hidden states of the tokens the model generated under the chosen cue, "
        f"averaged over those tokens and over {layers}.</div>"
    )


def evaluation_legend_html(k: int) -> str:
    """What the columns of the playground's evaluation table are."""
    return (
        '<div class="pg-legend pg-eval-legend" style="font-size:90%;margin:4px 0">'
        f"<b>score</b>: mutual k-NN alignment (k={int(k)}), the mean over items of the fraction of the k nearest "
        "neighbours the LLM representation and the encoder share (0 to 1); <b>ci_low</b>–<b>ci_high</b>: its "
        "95% CI (items share neighbourhoods: dyadic-robust standard error); <b>chance</b>: k/(n−1), the score of unrelated spaces; <b>n_items</b>: items both "
        "cover.</div>"
    )


def neighbours_html(table: pd.DataFrame, manifest: pd.DataFrame, thumb: int = 64, players: bool = True) -> str:
    """The neighbour table as rows of thumbnails (and players for audio encoders), shared ones outlined in green.

    Shared cells carry ``class="pg-nn pg-shared"`` and :data:`SHARED_BORDER`, the others ``pg-nn`` and
    :data:`UNSHARED_BORDER`; :func:`neighbour_legend_html` explains both and the numbers.
    """
    if table.empty:
        return "<p>No encoder covers this item.</p>"
    by_id = manifest.set_index("id")
    out = []
    for (enc, modality), sub in table.groupby(["encoder", "modality"], sort=False):
        llm_rows = sub[sub["space"] == "LLM"]
        score = float(llm_rows["shared"].mean())
        out.append(
            f'<div class="pg-neighbours" data-encoder="{html.escape(enc)}"><b>{html.escape(enc)}</b> ({modality}): '
            f"{int(llm_rows['shared'].sum())} of k={len(llm_rows)} neighbours shared → this item's mutual k-NN = {score:.2f}"
        )
        for space, label in (("LLM", "LLM representation"), ("encoder", enc)):
            cells = []
            for r in sub[sub["space"] == space].itertuples():
                item = by_id.loc[r.id] if r.id in by_id.index else None
                caption = str(item["caption"]) if item is not None else r.id
                media = (
                    image_html(item["image_path"] if item is not None else None, thumb, title=r.id)
                    if modality == "vision" or not players
                    else ""
                )
                if modality == "audio" and players and item is not None:
                    media = audio_html(item["audio_path"], width=thumb + 40)
                border, cls = (SHARED_BORDER, "pg-nn pg-shared") if r.shared else (UNSHARED_BORDER, "pg-nn")
                cells.append(
                    f'<td class="{cls}" style="border:{border};padding:2px;vertical-align:top;text-align:center;font-size:80%">'
                    f"{media}<br>{r.rank}. {html.escape(caption)}<br>"
                    f'<code title="cosine similarity to the selected item (PRH-prepared features)">{r.similarity:.2f}</code></td>'
                )
            out.append(f"<div><i>{html.escape(label)}</i><table><tr>{''.join(cells)}</tr></table></div>")
        out.append("</div>")
    return "\n".join(out)


def figure_html(fig) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


__all__ = [
    "HIGHLIGHT_COLOURS",
    "SHARED_BORDER",
    "UNSHARED_BORDER",
    "audio_html",
    "count_sensory",
    "default_lexicons",
    "evaluation_legend_html",
    "figure_html",
    "highlight_html",
    "image_html",
    "legend_html",
    "neighbour_legend_html",
    "neighbours_html",
    "sensory_spans",
]
