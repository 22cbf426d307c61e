"""Where a run keeps its step outputs, and how they are read and written.

A *run* (named after its profile unless told otherwise) keeps the hand-off between
notebooks under ``outputs/runs/<run>/``: the manifest (01), the generations (02),
the representations (03) and the encoder features (04) that notebook 05 aligns.
These are small summaries; the expensive per-item results live in the
content-addressed cache (:mod:`helpers.cache`), so rebuilding them is cheap.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.cache import atomic_write_bytes, atomic_write_text
from helpers.paths import outputs_root


@dataclass(frozen=True)
class RunPaths:
    """All paths of one run. ``RunPaths.of("default")`` gives the default run's."""

    name: str
    root: Path

    @classmethod
    def of(cls, run_name: str, outputs: Path | None = None) -> "RunPaths":
        if not run_name or "/" in run_name or run_name.startswith("."):
            raise ValueError(f"run_name must be a plain folder name, got {run_name!r}")
        return cls(run_name, Path(outputs) if outputs is not None else outputs_root())

    @property
    def run_dir(self) -> Path:
        return self.root / "runs" / self.name

    @property
    def manifest(self) -> Path:
        return self.run_dir / "manifest.parquet"

    @property
    def skips(self) -> Path:
        return self.run_dir / "skipped_items.csv"

    @property
    def generations(self) -> Path:
        return self.run_dir / "generations.parquet"

    @property
    def representations(self) -> Path:
        return self.run_dir / "representations.npz"

    def features(self, encoder: str) -> Path:
        return self.run_dir / f"features_{encoder}.npz"

    @property
    def figures(self) -> Path:
        return self.root / "figures" / self.name

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks" / self.name

    @property
    def results(self) -> Path:
        return self.root / "results" / self.name

    def require(self, path: Path, made_by: str) -> Path:
        """Return ``path`` or raise a message saying which notebook makes it."""
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run {made_by} for run {self.name!r} first")
        return path

    def save_results(self, df: pd.DataFrame, stem: str) -> pd.DataFrame:
        """A notebook's results table, with this run's name as its first column (``run``, when it has
        none), written to :attr:`results` as CSV and JSON (:func:`save_results`); returns the table saved."""
        if "run" not in df.columns:
            df = df.copy()
            df.insert(0, "run", self.name)
        save_results(df, self.results, stem)
        return df


def save_table(df: pd.DataFrame, path: Path) -> Path:
    """Parquet, written atomically."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def save_arrays(path: Path, ids: list[str], arrays: dict[str, np.ndarray]) -> Path:
    """An ``.npz`` of named arrays whose first axis follows ``ids`` (stored as ``ids``)."""
    for name, arr in arrays.items():
        if arr.shape[0] != len(ids):
            raise ValueError(f"array {name!r} has {arr.shape[0]} rows for {len(ids)} ids")
    buf = io.BytesIO()
    np.savez(buf, ids=np.asarray(ids, dtype=str), **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_arrays(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        ids = [str(i) for i in z["ids"]]
        return ids, {k: z[k] for k in z.files if k != "ids"}


def open_run(run_name: str, outputs: Path | None = None) -> RunPaths:
    """A notebook's first step: the run's folders (:meth:`RunPaths.of`), with pandas set to show
    captions and generated texts in full width (120 characters) in the tables that follow."""
    pd.set_option("display.max_colwidth", 120)
    return RunPaths.of(run_name, outputs)


def load_encoder_features(
    run: RunPaths, vision_encoders: Sequence[str] = (), audio_encoders: Sequence[str] = (), missing: str = "skip"
) -> tuple[dict[str, tuple[str, list[str], np.ndarray]], list[str]]:
    """The features notebook 04 saved: ``name -> (modality, ids, features)``, and the names left out.

    An encoder with no features file (a run over an image-only or audio-only dataset, or 04
    run for fewer encoders) is left out and named in the second return value when
    ``missing="skip"``; ``missing="raise"`` stops with the fix instead.
    """
    if missing not in ("skip", "raise"):
        raise ValueError(f"missing must be 'skip' or 'raise', got {missing!r}")
    feats: dict[str, tuple[str, list[str], np.ndarray]] = {}
    absent: list[str] = []
    for modality, names in (("vision", vision_encoders), ("audio", audio_encoders)):
        for name in names:
            path = run.features(name)
            if not path.is_file():
                if missing == "raise":
                    run.require(path, "04_encoder_features")
                absent.append(name)
                continue
            ids, arrays = load_arrays(path)
            feats[name] = (modality, ids, arrays["features"])
    return feats, absent


def run_encoder_features(
    run: RunPaths, vision_encoders: Sequence[str] = (), audio_encoders: Sequence[str] = ()
) -> dict[str, tuple[str, list[str], np.ndarray]]:
    """:func:`load_encoder_features` for the analysis notebooks (05-09): the encoders without
    features in this run (an image-only dataset has no audio features) are named and left out;
    a run with none at all stops with the fix (run 04)."""
    feats, absent = load_encoder_features(run, vision_encoders, audio_encoders)
    if absent:
        print(f"no features for {absent} in this run (04 made none): left out")
    if not feats:
        raise FileNotFoundError(f"no encoder features in {run.run_dir}: run 04_encoder_features first")
    return feats


def load_generations(run: RunPaths, llm: str | None = None) -> pd.DataFrame:
    """Notebook 02's generations table; with ``llm``, stops unless every row was generated by that model.

    Notebooks 03 and 08 re-encode 02's token ids with their own ``llm``: ids from another model's
    tokenizer would be read as different words, so a mismatch is an error naming both and the fix.
    """
    gens = load_table(run.require(run.generations, "02_generation"))
    if llm is not None and set(gens["llm"]) != {llm}:
        raise ValueError(
            f"generations in {run.generations} come from {sorted(set(gens['llm']))}, not llm={llm!r}: rerun 02 with this llm"
        )
    return gens


def stored_representations(run: RunPaths) -> tuple[pd.DataFrame, list[str], dict[str, np.ndarray]]:
    """What 02 and 03 stored for the run, where they did: the generations table and the
    representation ids and arrays (empty when a notebook has not run; 08 and 09 then generate)."""
    gens = load_table(run.generations) if run.generations.is_file() else pd.DataFrame(columns=["cue", "llm"])
    rep_ids, rep_arrays = load_arrays(run.representations) if run.representations.is_file() else ([], {})
    return gens, rep_ids, rep_arrays


def analysis_inputs(
    run: RunPaths, vision_encoders: Sequence[str] = (), audio_encoders: Sequence[str] = ()
) -> tuple[list[str], dict[str, np.ndarray], dict[str, tuple[str, list[str], np.ndarray]]]:
    """What the analysis notebooks (05-07) read: 03's ``ids`` and ``reps`` and 04's encoder features
    (:func:`run_encoder_features`); each stops with the notebook to run when its file is missing."""
    ids, reps = load_arrays(run.require(run.representations, "03_representations"))
    return ids, reps, run_encoder_features(run, vision_encoders, audio_encoders)


def save_results(df: pd.DataFrame, directory: Path, stem: str) -> list[Path]:
    """Write a results table as CSV and JSON (records) side by side."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
    atomic_write_text(csv_path, df.to_csv(index=False))
    atomic_write_text(json_path, json.dumps(df.to_dict(orient="records"), indent=2, default=float))
    return [csv_path, json_path]
