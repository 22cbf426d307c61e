"""The playground's computations (notebook 10), apart from its widgets: what it reads from a finished run
(:class:`RunData`), the names its model dropdown shows, the cues a run generated with, the seeded subset the Evaluate
button scores, and an edited cue template scored beside the run's cues.

Everything goes through :func:`helpers.analyses.pipeline.cue_representations`, so what the run (or an earlier evaluation at
the same model and decoding) computed is a cache hit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.analyses import tables
from helpers.analyses.pipeline import cue_representations
from helpers.core.settings import DEFAULT_LM_SETTINGS, DEFAULT_SETTINGS, AlignmentSettings, LMSettings
from helpers.data import prompts
from helpers.data.artifacts import RunPaths, load_arrays, load_encoder_features, load_table
from helpers.lm import Decoding
from helpers.metrics import alignment
from helpers.metrics.pairing import EncoderFeatures

#: Short names of the registry's models whose own names are not what a person reads (the others are
#: shortened by :func:`model_label`'s rules).
MODEL_LABELS: dict[str, str] = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct", "gemma-3-270m": "Gemma-3-270M"}


def model_label(name: str) -> str:
    """What the model dropdown shows for ``name``: a short name, never a long id or path.

    :data:`MODEL_LABELS` for the embedded models, the model part of a hub id
    (``Qwen/Qwen3-0.6B`` → ``Qwen3-0.6B``), the folder name of a local path.
    """
    if name in MODEL_LABELS:
        return MODEL_LABELS[name]
    return Path(str(name).rstrip("/\\")).name or str(name)


def model_options(names: Sequence[str]) -> list[tuple[str, str]]:
    """``(label, name)`` pairs for a dropdown: short labels, the registry name (or path) as the value.

    Names are deduplicated in order; two names with the same short label keep the full name as label,
    so every label picks one model.
    """
    names = list(dict.fromkeys(str(n) for n in names))
    labels = [model_label(n) for n in names]
    return [(label if labels.count(label) == 1 else name, name) for label, name in zip(labels, names)]


class RunData:
    """What the playground reads from a finished run: manifest, generations, representations, features."""

    def __init__(self, run: RunPaths, vision_encoders: Sequence[str], audio_encoders: Sequence[str]):
        from helpers.data.manifest import load_manifest

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
            raise KeyError(
                f"no {key!r} in {self.run.representations}: run 03_representations for run {self.run.name!r}"
            )
        return self.rep_ids, alignment.layer_mean(self.reps[key], first_layer)

    def item(self, item_id: str) -> pd.Series:
        rows = self.manifest[self.manifest["id"] == item_id]
        if rows.empty:
            raise KeyError(f"item {item_id!r} is not in the manifest of run {self.run.name!r}")
        return rows.iloc[0]


def run_cues(generations: pd.DataFrame | None) -> dict[str, str]:
    """The cue templates a run generated with (``cue`` → ``template``), or the paper's defaults."""
    if generations is None or "template" not in generations or generations.empty:
        return dict(prompts.DEFAULT_CUES)
    return dict(generations[["cue", "template"]].drop_duplicates("cue").itertuples(index=False, name=None))


def evaluate_template(
    model: Any,
    manifest: pd.DataFrame,
    cues: Mapping[str, str],
    encoder_feats: EncoderFeatures,
    decoding: Decoding = Decoding(),
    *,
    lm_settings: LMSettings = DEFAULT_LM_SETTINGS,
    on_progress: Callable[[int, int, str], None] | None = None,
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Mutual k-NN of every cue in ``cues`` with every encoder over the items of ``manifest``.

    Each cue's prompts are generated and represented through :func:`cue_representations` (so
    conditions the run or an earlier evaluation computed at the same model and decoding are
    cache hits), in chunks of ``lm_settings.gen_batch_size`` items (one chunk when it is ``"auto"``);
    ``on_progress(done, total, label)`` is
    called after each chunk. Returns one row per (cue, encoder): ``cue``, ``template``,
    ``encoder``, ``modality``, ``n_items``, ``k``, ``score``, ``ci_low``, ``ci_high``, ``chance``.
    """
    if not cues:
        raise ValueError("no cues to evaluate")
    for name, template in cues.items():
        prompts.check_template(name, template)
    ids = [str(i) for i in manifest["id"]]
    size = lm_settings.gen_batch_size
    chunk = size if isinstance(size, int) else max(1, len(ids))
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
                lm_settings=lm_settings,
            )
            parts.append(res.vector("gen_mean", settings.first_layer))
            done += 1
            if on_progress:
                on_progress(done, total, name)
        reps[name] = (ids, np.concatenate(parts))
    table = tables.alignment_table(reps, dict(encoder_feats), settings=settings)
    table = table.rename(columns={"representation": "cue"})
    table.insert(1, "template", table["cue"].map(dict(cues)))
    return table


def playground_subset(manifest: pd.DataFrame, n_items: int | None, seed: int = 0) -> pd.DataFrame:
    """The seeded subset the Evaluate button scores (items with a sound first, as in notebook 01)."""
    from helpers.data.manifest import select_items

    return select_items(manifest, n_items, seed=seed)
