"""The prompt playground (notebook 10): pure pieces plus an ipywidgets front end.

The pure functions are what the tests and the headless notebook use:

* :func:`highlight_html` marks sensory words of a generation (visual and auditory in two
  colours) given the lexicons as arguments;
* :func:`item_neighbours` lists one item's nearest neighbours under the LLM representation
  beside those under each encoder, over the items both cover, and flags the shared ones —
  the per-item quantity that mutual k-NN averages;
* :func:`evaluate_template` scores an edited cue template on a subset of the run beside the
  run's SEE / HEAR / NONE cues at the same model and decoding settings (every step through
  :func:`helpers.pipeline.cue_representations`, so what the run already computed is a cache
  hit), returning the tidy alignment table with bootstrap CIs;
* :func:`save_template_to_params` writes the template into a params file that
  ``python -m helpers.runner --params-file`` (``make reproduce PARAMS="--params-file …"``) reads.

:class:`Playground` composes them into widgets whose button handlers are plain methods
(``on_generate``, ``on_evaluate``, ``on_save``) that tests call directly; every result is
also kept on the object (``last_generation``, ``last_neighbours``, ``last_evaluation``,
``last_saved``). Under papermill (``PERCEIVE_HEADLESS``) or without a notebook front end the
notebook calls :func:`static_summary` instead, which shows the same information as HTML.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from helpers import alignment, analysis, prompts
from helpers.artifacts import RunPaths, load_arrays, load_encoder_features, load_table
from helpers.lexicon import find_words, load_lexicon
from helpers.lm import Decoding
from helpers.pipeline import cue_representations
from helpers.progress import is_headless

#: Background colours of highlighted words: light blue for visual (SEE's hue), light red for auditory (HEAR's).
HIGHLIGHT_COLOURS: dict[str, str] = {"visual": "#aec7e8", "auditory": "#ff9896"}
RUN_CUES = ("SEE", "HEAR", "NONE")




# --------------------------------------------------------------------------------------
# Sensory-word highlighting
# --------------------------------------------------------------------------------------


def default_lexicons() -> dict[str, Any]:
    """The shipped visual and auditory lexicons of :mod:`helpers.lexicon`."""
    return {modality: load_lexicon(modality) for modality in ("visual", "auditory")}


def sensory_spans(
    text: str, lexicons: Mapping[str, Any]
) -> list[tuple[int, int, list[str]]]:
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
            stops = ", ".join(f"{colours[m]} {100 * i / len(mods):.0f}% {100 * (i + 1) / len(mods):.0f}%" for i, m in enumerate(mods))
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
    colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
    return " ".join(f'<mark style="background: {colours[m]}">{html.escape(m)}</mark>' for m in modalities)


def count_sensory(text: str, lexicons: Mapping[str, Any]) -> dict[str, int]:
    """Number of words of each lexicon in ``text``."""
    return {m: len(find_words(text, lex)) for m, lex in lexicons.items()}


# --------------------------------------------------------------------------------------
# Nearest neighbours: the meaning of mutual k-NN for one item
# --------------------------------------------------------------------------------------


def item_neighbours(
    item_id: str,
    llm_space: tuple[Sequence[str], np.ndarray],
    encoder_feats: Mapping[str, tuple[str, Sequence[str], np.ndarray]],
    k: int = 10,
    q: float = 0.95,
) -> pd.DataFrame:
    """``item_id``'s k nearest neighbours under the LLM representation and under each encoder.

    For each encoder the neighbours are taken among the items both spaces cover (what
    :func:`helpers.analysis.alignment_table` compares), features prepared exactly as there.
    One row per (encoder, space, rank): ``encoder``, ``modality``, ``space`` (``"LLM"`` or
    ``"encoder"``), ``rank`` (1 = nearest), ``id``, ``similarity`` (cosine) and ``shared``
    (the neighbour is among the item's k neighbours in the other space too). The item's
    mutual k-NN score for an encoder is the mean of ``shared`` over its rows of one space.
    Encoders that do not cover the item are left out (the table then has none of their rows).
    """
    llm_ids, llm_x = list(llm_space[0]), np.asarray(llm_space[1])
    if item_id not in llm_ids:
        raise KeyError(f"item {item_id!r} has no LLM representation in this run (it has {len(llm_ids)} items)")
    rows = []
    for enc_name, (modality, enc_ids, feats) in encoder_feats.items():
        enc_ids = list(enc_ids)
        if item_id not in enc_ids:
            continue
        ia, ib = alignment.match_rows(llm_ids, enc_ids)
        shared_ids = [llm_ids[i] for i in ia]
        if len(shared_ids) <= k:
            raise ValueError(
                f"{enc_name}: only {len(shared_ids)} items shared with the LLM representation, need more than k={k}"
            )
        row = shared_ids.index(item_id)
        spaces = {
            "LLM": alignment.prepare_features(llm_x[ia], q),
            "encoder": alignment.prepare_features(np.asarray(feats)[ib], q),
        }
        nn = {name: alignment.knn_indices(x, k)[row] for name, x in spaces.items()}
        for space, x in spaces.items():
            other = set(nn["encoder" if space == "LLM" else "LLM"].tolist())
            for rank, j in enumerate(nn[space], start=1):
                rows.append(
                    {
                        "encoder": enc_name,
                        "modality": modality,
                        "space": space,
                        "rank": rank,
                        "id": shared_ids[j],
                        "similarity": float(x[row] @ x[j]),
                        "shared": int(j) in other,
                    }
                )
    return pd.DataFrame(rows, columns=["encoder", "modality", "space", "rank", "id", "similarity", "shared"])


def neighbour_overlap(table: pd.DataFrame) -> pd.DataFrame:
    """Per encoder, the item's mutual k-NN score (fraction of LLM neighbours shared with the encoder's)."""
    llm = table[table["space"] == "LLM"]
    return llm.groupby("encoder", sort=False).agg(modality=("modality", "first"), k=("rank", "size"), mutual_knn=("shared", "mean")).reset_index()


# --------------------------------------------------------------------------------------
# Media as self-contained HTML (thumbnails, players)
# --------------------------------------------------------------------------------------


def image_html(path: str | None, size: int = 96, title: str = "") -> str:
    """An ``<img>`` with the image at ``path`` inlined as a PNG thumbnail (a grey box when there is none)."""
    if not path:
        return f'<div style="width:{size}px;height:{size}px;background:#eee" title="{html.escape(title)}"></div>'
    from helpers.media import load_image

    img = load_image(path)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" title="{html.escape(title)}" style="max-width:{size}px;max-height:{size}px">'


def audio_html(path: str | None, max_seconds: float = 5.0, sr: int = 16000, autoplay: bool = False, width: int = 160) -> str:
    """An ``<audio controls>`` player with the first ``max_seconds`` of ``path`` inlined as WAV ("" without a sound)."""
    if not path:
        return ""
    import soundfile as sf

    from helpers.media import load_audio

    wave = load_audio(path, target_sr=sr, max_seconds=max_seconds)
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="PCM_16")
    data = base64.b64encode(buf.getvalue()).decode()
    return (
        f'<audio class="pg-audio" controls{" autoplay" if autoplay else ""} style="width:{width}px" '
        f'src="data:audio/wav;base64,{data}"></audio>'
    )


def neighbours_html(table: pd.DataFrame, manifest: pd.DataFrame, thumb: int = 64, players: bool = True) -> str:
    """The neighbour table as rows of thumbnails (and players for audio encoders), shared ones outlined in green."""
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
                media = image_html(item["image_path"] if item is not None else None, thumb, title=r.id) if modality == "vision" or not players else ""
                if modality == "audio" and players and item is not None:
                    media = audio_html(item["audio_path"], width=thumb + 40)
                border = "3px solid #2ca02c" if r.shared else "1px solid #ddd"
                cells.append(
                    f'<td style="border:{border};padding:2px;vertical-align:top;text-align:center;font-size:80%">'
                    f"{media}<br>{r.rank}. {html.escape(caption)}<br><code>{r.similarity:.2f}</code></td>"
                )
            out.append(f"<div><i>{html.escape(label)}</i><table><tr>{''.join(cells)}</tr></table></div>")
        out.append("</div>")
    out.append('<p style="font-size:80%">Green outline: a neighbour in both spaces. Mutual k-NN alignment is the mean of that fraction over all items.</p>')
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# Evaluating an edited template
# --------------------------------------------------------------------------------------


def run_cues(generations: pd.DataFrame | None) -> dict[str, str]:
    """The cue templates a run generated with (``cue`` → ``template``), or the paper's defaults."""
    if generations is None or "template" not in generations or generations.empty:
        return dict(prompts.DEFAULT_CUES)
    return dict(generations[["cue", "template"]].drop_duplicates("cue").itertuples(index=False, name=None))


def evaluate_template(
    model: Any,
    manifest: pd.DataFrame,
    cues: Mapping[str, str],
    encoder_feats: Mapping[str, tuple[str, Sequence[str], np.ndarray]],
    decoding: Decoding = Decoding(),
    *,
    k: int = 10,
    q: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    first_layer: int = 0,
    gen_batch_size: int = 32,
    rep_batch_size: int = 16,
    include_embeddings: bool = True,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:
    """Mutual k-NN of every cue in ``cues`` with every encoder over the items of ``manifest``.

    Each cue's prompts are generated and represented through :func:`cue_representations` (so
    conditions the run or an earlier evaluation computed at the same model and decoding are
    cache hits), in chunks of ``gen_batch_size`` items; ``on_progress(done, total, label)`` is
    called after each chunk. Returns one row per (cue, encoder): ``cue``, ``template``,
    ``encoder``, ``modality``, ``n_items``, ``k``, ``score``, ``ci_low``, ``ci_high``, ``chance``.
    """
    if not cues:
        raise ValueError("no cues to evaluate")
    for name, template in cues.items():
        prompts.check_template(name, template)
    ids = [str(i) for i in manifest["id"]]
    chunk = max(1, int(gen_batch_size))
    starts = list(range(0, len(ids), chunk))
    total, done = len(starts) * len(cues), 0
    reps: dict[str, tuple[list[str], np.ndarray]] = {}
    for name, template in cues.items():
        texts = [prompts.fill(template, c) for c in manifest["caption"]]
        parts = []
        for s in starts:
            res = cue_representations(
                model,
                ids[s : s + chunk],
                texts[s : s + chunk],
                decoding,
                gen_batch_size=gen_batch_size,
                rep_batch_size=rep_batch_size,
                include_embeddings=include_embeddings,
            )
            parts.append(res.vector("gen_mean", first_layer))
            done += 1
            if on_progress:
                on_progress(done, total, name)
        reps[name] = (ids, np.concatenate(parts))
    table = analysis.alignment_table(reps, dict(encoder_feats), k=k, q=q, n_boot=n_boot, seed=seed)
    table = table.rename(columns={"representation": "cue"})
    table.insert(1, "template", table["cue"].map(dict(cues)))
    return table


def playground_subset(manifest: pd.DataFrame, n_items: int | None, seed: int = 0) -> pd.DataFrame:
    """The seeded subset the Evaluate button scores (items with a sound first, as in notebook 01)."""
    from helpers.manifest import select_items

    return select_items(manifest, n_items, seed=seed)


# --------------------------------------------------------------------------------------
# Saving a template into the run's parameters
# --------------------------------------------------------------------------------------


def params_path(run: RunPaths) -> Path:
    """Where the playground saves parameter overrides for ``run``: ``<outputs>/params/<run>.yaml``."""
    return run.root / "params" / f"{run.name}.yaml"


def save_template_to_params(
    path: Path, name: str, template: str, base_cues: Mapping[str, str] | None = None
) -> Path:
    """Add cue ``name`` = ``template`` to the ``cues`` of the params file at ``path`` (created if absent).

    The runner replaces a parameter as a whole, so the file keeps the *full* cue set: the cues
    already in the file, else ``base_cues`` (the run's, so SEE/HEAR/NONE stay), plus this one.
    Other keys of the file are kept. Returns ``path``.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name or ""):
        raise ValueError(f"cue name must be a word of letters, digits and _ starting with a letter, got {name!r}")
    prompts.check_template(name, template)
    path = Path(path)
    existing: dict[str, Any] = {}
    if path.is_file():
        existing = yaml.safe_load(path.read_text()) or {}
        if not isinstance(existing, dict):
            raise ValueError(f"{path} does not hold a YAML mapping of parameters; move it aside and save again")
    cues = dict(existing.get("cues") or base_cues or prompts.DEFAULT_CUES)
    cues[name] = template
    existing["cues"] = cues
    from helpers.cache import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "# written by the playground (notebooks/10_playground.ipynb)\n" + yaml.safe_dump(existing, sort_keys=False, allow_unicode=True))
    return path


def rerun_command(path: Path, profile: str = "default") -> str:
    """The command (run from the project root) that reruns the main notebooks with the saved parameters."""
    from helpers.paths import PROJECT_ROOT

    path = Path(path).resolve()
    shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
    return f'make reproduce PROFILE={profile} PARAMS="--params-file {shown}"'


# --------------------------------------------------------------------------------------
# The widgets
# --------------------------------------------------------------------------------------


def _error_html(exc: BaseException) -> str:
    return f'<div class="pg-error" style="color:#b00020"><b>{type(exc).__name__}</b>: {html.escape(str(exc))}</div>'


@contextlib.contextmanager
def _captured_progress():
    """Run cached steps with text progress, their printed lines captured (returned in the yielded buffer)."""
    buf = io.StringIO()
    saved = os.environ.get("PERCEIVE_HEADLESS")
    os.environ["PERCEIVE_HEADLESS"] = "1"
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield buf
    finally:
        if saved is None:
            os.environ.pop("PERCEIVE_HEADLESS", None)
        else:
            os.environ["PERCEIVE_HEADLESS"] = saved


def figure_html(fig) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


class RunData:
    """What the playground reads from a finished run: manifest, generations, representations, features."""

    def __init__(self, run: RunPaths, vision_encoders: Sequence[str], audio_encoders: Sequence[str]):
        from helpers.manifest import load_manifest

        self.run = run
        self.manifest = load_manifest(run.require(run.manifest, "01_data_prep"))
        self.generations = load_table(run.generations) if run.generations.is_file() else None
        if run.representations.is_file():
            self.rep_ids, self.reps = load_arrays(run.representations)
        else:
            self.rep_ids, self.reps = [], {}
        self.encoder_feats, self.absent = load_encoder_features(run, vision_encoders, audio_encoders)
        self.cues = run_cues(self.generations)

    def llm_space(self, cue: str, first_layer: int = 0) -> tuple[list[str], np.ndarray]:
        key = f"{cue}/gen_mean"
        if key not in self.reps:
            raise KeyError(f"no {key!r} in {self.run.representations}: run 03_representations for run {self.run.name!r}")
        return self.rep_ids, alignment.layer_mean(self.reps[key], first_layer)

    def item(self, item_id: str) -> pd.Series:
        rows = self.manifest[self.manifest["id"] == item_id]
        if rows.empty:
            raise KeyError(f"item {item_id!r} is not in the manifest of run {self.run.name!r}")
        return rows.iloc[0]


class Playground:
    """Interactive prompt playground over a finished run (see the module docstring).

    Handlers: :meth:`on_item` (item changed), :meth:`on_generate`, :meth:`on_evaluate`,
    :meth:`on_save`; each updates an HTML widget and a ``last_*`` attribute and shows errors
    in the widget instead of raising.
    """

    def __init__(
        self,
        run: RunPaths,
        *,
        llm: str,
        vision_encoders: Sequence[str] = (),
        audio_encoders: Sequence[str] = (),
        models: Sequence[str] = (),
        max_new_tokens: int = 128,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        k: int = 10,
        quantile: float = 0.95,
        n_boot: int = 1000,
        playground_items: int | None = 60,
        gen_batch_size: int = 32,
        rep_batch_size: int = 16,
        include_embeddings: bool = True,
        first_layer: int = 0,
        custom_cue: str = "CUSTOM",
        lexicons: Mapping[str, Any] | None = None,
        colours: Mapping[str, str] | None = None,
        profile: str = "default",
        params_file: Path | None = None,
        load_model: Callable[[str], Any] | None = None,
    ):
        import ipywidgets as W

        self.run = run
        self.data = RunData(run, vision_encoders, audio_encoders)
        self.k, self.quantile, self.n_boot, self.seed = int(k), float(quantile), int(n_boot), int(seed)
        self.playground_items, self.first_layer = playground_items, int(first_layer)
        self.gen_batch_size, self.rep_batch_size, self.include_embeddings = gen_batch_size, rep_batch_size, include_embeddings
        self.lexicons = dict(default_lexicons() if lexicons is None else lexicons)
        self.colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
        self.profile = profile
        self.params_file = Path(params_file) if params_file else params_path(run)
        if load_model is None:
            from helpers.lm import load_llm

            load_model = load_llm
        self._load_model = load_model
        self._models: dict[str, Any] = {}
        self._eval_cache: dict[tuple, pd.DataFrame] = {}
        self.last_generation: str | None = None
        self.last_neighbours: pd.DataFrame | None = None
        self.last_evaluation: pd.DataFrame | None = None
        self.last_saved: Path | None = None

        from helpers.lm import known_models

        items = [(f"{row.caption}  ({row.id})", row.id) for row in self.data.manifest.itertuples()]
        first_cue = next(iter(self.data.cues))
        wide = W.Layout(width="95%")
        self.item = W.Dropdown(options=items, description="item", layout=wide)
        self.cue_name = W.Text(value=custom_cue, description="cue name")
        self.template = W.Textarea(value=self.data.cues[first_cue], description="template", layout=W.Layout(width="95%", height="4em"))
        self.preset = W.Dropdown(options=list(self.data.cues), value=first_cue, description="start from")
        self.model = W.Dropdown(options=list(dict.fromkeys([llm, *models, *known_models()])), value=llm, description="model", layout=wide)
        self.T = W.IntSlider(value=int(max_new_tokens), min=1, max=max(512, int(max_new_tokens)), description="T (tokens)", style={"description_width": "initial"})
        label = {"description_width": "initial"}
        self.do_sample = W.Checkbox(value=bool(do_sample), description="sample (else greedy)", style=label)
        self.temperature = W.FloatSlider(value=float(temperature), min=0.05, max=2.0, step=0.05, description="temperature", style=label)
        self.top_p = W.FloatSlider(value=float(top_p), min=0.05, max=1.0, step=0.05, description="top-p", style=label)
        self.gen_seed = W.IntText(value=int(seed), description="seed")
        self.generate_button = W.Button(description="Generate", button_style="primary", icon="play")
        self.media = W.HTML()
        self.generation = W.HTML()
        self.nn_cue = W.Dropdown(options=list(self.data.cues), value=first_cue, description="LLM cue")
        self.neighbours = W.HTML()
        self.evaluate_button = W.Button(description=f"Evaluate on {playground_items or 'all'} items", button_style="info")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="evaluate")
        self.evaluation = W.HTML()
        self.save_button = W.Button(description="Save template to run params", button_style="success")
        self.saved = W.HTML()

        self.item.observe(lambda change: self.on_item(), names="value")
        self.nn_cue.observe(lambda change: self.show_neighbours(), names="value")
        self.preset.observe(lambda change: setattr(self.template, "value", self.data.cues[change["new"]]), names="value")
        self.generate_button.on_click(self.on_generate)
        self.evaluate_button.on_click(self.on_evaluate)
        self.save_button.on_click(self.on_save)
        legend = W.HTML(f"Sensory words: {legend_html(self.colours)}" if self.lexicons else "<i>no sensory lexicons loaded: no highlighting</i>")
        self.widget = W.VBox(
            [
                W.HTML(f"<h3>Prompt playground · run <code>{html.escape(run.name)}</code></h3>"),
                self.item,
                self.media,
                W.HBox([self.preset, self.cue_name]),
                self.template,
                W.HBox([self.model, self.T]),
                W.HBox([self.do_sample, self.temperature, self.top_p, self.gen_seed]),
                W.HBox([self.generate_button, legend]),
                self.generation,
                W.HTML("<h4>Nearest neighbours: LLM representation vs encoders</h4>"),
                self.nn_cue,
                self.neighbours,
                W.HTML("<h4>Alignment of the edited template on a subset</h4>"),
                W.HBox([self.evaluate_button, self.progress]),
                self.evaluation,
                self.save_button,
                self.saved,
            ]
        )
        self.on_item()

    # -- helpers -----------------------------------------------------------------------

    def decoding(self) -> Decoding:
        return Decoding(
            max_new_tokens=int(self.T.value),
            do_sample=bool(self.do_sample.value),
            seed=int(self.gen_seed.value),
            temperature=float(self.temperature.value),
            top_p=float(self.top_p.value),
        )

    def get_model(self, name: str | None = None) -> Any:
        name = name or self.model.value
        if name not in self._models:
            with _captured_progress():  # the loader's weight bars would land in the kernel log
                self._models[name] = self._load_model(name)
        return self._models[name]

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)

    # -- handlers ----------------------------------------------------------------------

    def on_item(self, _: Any = None) -> None:
        """Show the selected item's image and sound, and its neighbours."""
        try:
            row = self.data.item(self.item.value)
            self.media.value = (
                f'<div class="pg-media">{image_html(row["image_path"], 160, title=row["id"])} '
                f'{audio_html(row["audio_path"], autoplay=True, width=240)}<br><b>{html.escape(str(row["caption"]))}</b></div>'
            )
        except Exception as exc:  # shown, not raised: a bad file must not kill the playground
            self.media.value = _error_html(exc)
        self.generation.value = ""
        self.show_neighbours()

    def show_neighbours(self) -> None:
        try:
            table = item_neighbours(
                self.item.value, self.data.llm_space(self.nn_cue.value, self.first_layer), self.data.encoder_feats, self.k, self.quantile
            )
            self.last_neighbours = table
            self.neighbours.value = neighbours_html(table, self.data.manifest)
        except Exception as exc:
            self.last_neighbours = None
            self.neighbours.value = _error_html(exc)

    def on_generate(self, _: Any = None) -> None:
        """Generate from the edited template for the selected item and show it highlighted."""
        from helpers import lm

        self.generate_button.disabled = True
        self.generation.value = "<i>generating…</i>"
        try:
            prompts.check_template(self.cue_name.value or "cue", self.template.value)
            row = self.data.item(self.item.value)
            user_text = prompts.fill(self.template.value, str(row["caption"]))
            model = self.get_model()
            with _captured_progress() as log:
                gen = lm.generate_cached(model, [lm.format_prompt(model, user_text)], self.decoding(), batch_size=1)[0]
            self.last_generation = gen["text"]
            counts = count_sensory(gen["text"], self.lexicons) if self.lexicons else {}
            counts_text = ", ".join(f"{n} {m}" for m, n in counts.items())
            cached = "cached" if " 1 cached" in log.getvalue() else "generated"
            self.generation.value = (
                f"<div><b>prompt</b>: <code>{html.escape(user_text)}</code> · {len(gen['gen_ids'])} tokens ({cached})"
                f"{' · sensory words: ' + counts_text if counts_text else ''}</div>"
                + highlight_html(gen["text"], self.lexicons, self.colours)
            )
        except Exception as exc:
            self.generation.value = _error_html(exc)
        finally:
            self.generate_button.disabled = False

    def on_evaluate(self, _: Any = None) -> None:
        """Score the edited template and the run's cues on the playground subset; show the table and bars."""
        from helpers import plots

        self.evaluate_button.disabled = True
        try:
            name = self.cue_name.value.strip() or "CUSTOM"
            if name in self.data.cues and self.data.cues[name] != self.template.value:
                raise ValueError(f"cue name {name!r} is one of the run's cues with another template; pick a new name")
            cues = {name: self.template.value, **{c: t for c, t in self.data.cues.items() if c != name}}
            subset = playground_subset(self.data.manifest[self.data.manifest["id"].isin(self.data.rep_ids or self.data.manifest["id"])], self.playground_items, self.seed)
            key = (self.model.value, tuple(cues.items()), self.decoding(), tuple(subset["id"]), self.k, self.quantile, self.n_boot)
            if key not in self._eval_cache:
                model = self.get_model()
                self.progress.value, self.progress.bar_style = 0, ""

                def step(done: int, total: int, label: str) -> None:
                    self.progress.max, self.progress.value, self.progress.description = total, done, label

                with _captured_progress() as log:
                    table = evaluate_template(
                        model, subset, cues, self.data.encoder_feats, self.decoding(), k=self.k, q=self.quantile,
                        n_boot=self.n_boot, seed=self.seed, first_layer=self.first_layer, gen_batch_size=self.gen_batch_size,
                        rep_batch_size=self.rep_batch_size, include_embeddings=self.include_embeddings, on_progress=step,
                    )
                table.attrs["log"] = log.getvalue()
                self._eval_cache[key] = table
            table = self._eval_cache[key]
            self.progress.bar_style = "success"
            self.last_evaluation = table
            cache_lines = [line for line in table.attrs.get("log", "").splitlines() if " cached, " in line]
            hits = sum(int(m.group(1)) for m in (re.search(r": (\d+) cached", line) for line in cache_lines) if m)
            todo = sum(int(m.group(1)) for m in (re.search(r"(\d+) to compute", line) for line in cache_lines) if m)
            shown = table[["cue", "encoder", "modality", "n_items", "score", "ci_low", "ci_high", "chance"]].round(3)
            self.evaluation.value = (
                f'<div class="pg-evaluation">{len(subset)} items · model <code>{html.escape(str(self.model.value))}</code> · '
                f"T={self.T.value} · cache: {hits} hits, {todo} computed<br>"
                + shown.to_html(index=False, classes="pg-table")
                + figure_html(plots.alignment_bars(table, title=f"{name} vs the run's cues ({len(subset)} items, 95% CI)"))
                + "</div>"
            )
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.evaluation.value = _error_html(exc)
        finally:
            self.evaluate_button.disabled = False

    def on_save(self, _: Any = None) -> None:
        """Write the edited template into the run's params file and show the command that reruns with it."""
        try:
            name = self.cue_name.value.strip()
            path = save_template_to_params(self.params_file, name, self.template.value, self.data.cues)
            self.last_saved = path
            self.saved.value = (
                f'<div class="pg-saved">Saved cue <b>{html.escape(name)}</b> to <code>{html.escape(str(path))}</code>. '
                f"Rerun the main notebooks with it:<br><code>{html.escape(rerun_command(path, self.profile))}</code></div>"
            )
        except Exception as exc:
            self.saved.value = _error_html(exc)


# --------------------------------------------------------------------------------------
# Headless
# --------------------------------------------------------------------------------------


def has_frontend() -> bool:
    """True inside a Jupyter kernel that a front end can talk to (not plain Python, not headless)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell" and not is_headless()


def static_summary(
    run: RunPaths,
    vision_encoders: Sequence[str] = (),
    audio_encoders: Sequence[str] = (),
    *,
    item_id: str | None = None,
    k: int = 10,
    quantile: float = 0.95,
    first_layer: int = 0,
    lexicons: Mapping[str, Any] | None = None,
    colours: Mapping[str, str] | None = None,
    neighbour_cue: str | None = None,
) -> str:
    """The playground's information without widgets, as one HTML string.

    One item (``item_id``, default the first with a sound) with its image and player, its
    generations under each of the run's cues with sensory words highlighted, and its
    neighbours under the LLM representation (``neighbour_cue``, default the run's first cue)
    beside those under each encoder.
    """
    data = RunData(run, vision_encoders, audio_encoders)
    lexicons = dict(default_lexicons() if lexicons is None else lexicons)
    colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
    if item_id is None:
        with_sound = data.manifest[data.manifest["audio_path"].notna() & data.manifest["id"].isin(data.rep_ids or data.manifest["id"])]
        item_id = str((with_sound if not with_sound.empty else data.manifest)["id"].iloc[0])
    row = data.item(item_id)
    parts = [
        f"<h3>Playground summary · run <code>{html.escape(run.name)}</code> · item <code>{html.escape(item_id)}</code></h3>",
        f"<p>(Static view: the notebook ran headlessly. Open it in JupyterLab for the live widgets.)</p>",
        f'{image_html(row["image_path"], 160, title=item_id)} {audio_html(row["audio_path"], width=240)}<br><b>{html.escape(str(row["caption"]))}</b>',
    ]
    if lexicons:
        parts.append(f"<p>Sensory words: {legend_html(colours)}</p>")
    if data.generations is not None:
        for g in data.generations[data.generations["id"] == item_id].itertuples():
            parts.append(f"<h4>{html.escape(g.cue)}: <code>{html.escape(g.user_text)}</code></h4>")
            parts.append(highlight_html(g.text, lexicons, colours))
    else:
        parts.append("<p>No generations in this run (run 02_generation).</p>")
    cue = neighbour_cue or next(iter(data.cues))
    try:
        table = item_neighbours(item_id, data.llm_space(cue, first_layer), data.encoder_feats, k, quantile)
        parts.append(f"<h4>Nearest neighbours (LLM representation under {html.escape(cue)} vs encoders)</h4>")
        parts.append(neighbours_html(table, data.manifest, players=False))
    except (KeyError, ValueError) as exc:
        parts.append(_error_html(exc))
    return "\n".join(parts)


__all__ = [
    "HIGHLIGHT_COLOURS",
    "Playground",
    "RunData",
    "audio_html",
    "count_sensory",
    "evaluate_template",
    "has_frontend",
    "highlight_html",
    "image_html",
    "item_neighbours",
    "neighbour_overlap",
    "neighbours_html",
    "params_path",
    "playground_subset",
    "rerun_command",
    "run_cues",
    "save_template_to_params",
    "sensory_spans",
    "static_summary",
]
