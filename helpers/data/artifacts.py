"""Where a run keeps its step outputs, and how they are read and written.

A *run* (named after its profile unless told otherwise) keeps the hand-off between
notebooks under ``outputs/runs/<run>/``: the manifest (01), the generations (02),
the representations (03) and the encoder features (04) that notebook 05 aligns.
These are small summaries; the expensive per-item results live in the
content-addressed cache (:mod:`helpers.core.cache`), so rebuilding them is cheap.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from helpers.core.cache import atomic_write_bytes, atomic_write_text
from helpers.data.manifest import encoders_left_out
from helpers.core.paths import outputs_root
from helpers.core.settings import AlignmentSettings


@dataclass(frozen=True)
class RunPaths:
    """All paths of one run. ``RunPaths.of("default")`` gives the default run's."""

    name: str
    root: Path

    @classmethod
    def of(cls, run_name: str, outputs: Path | None = None) -> RunPaths:
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

    def setting(
        self,
        settings: AlignmentSettings | None = None,
        encoders: Mapping[str, Any] | None = None,
        *,
        llm: str | Sequence[str] | None = None,
        T: int | str | None = None,
        results: bool = False,
        items: pd.DataFrame | None = None,
    ) -> RunSetting:
        """What a figure of this run needs to stand alone (:class:`RunSetting`; ``.line()`` for the footer).

        Read from the run's files: the dataset (the manifest's ``source``), its items and those with
        a sound (01); the LLM, T and greedy or sampled decoding (02's generations). ``settings``: the
        :class:`AlignmentSettings` in use (its ``k``); ``encoders``: name -> modality, or the
        ``name -> (modality, ids, features)`` of :func:`run_encoder_features`. With ``results`` (a
        finished run read back, notebook 11), ``k`` and the encoders not given are read from 05's
        ``alignment.csv``. ``llm`` and ``T`` replace the recorded ones for figures of other models or
        lengths (09: its LLMs at ``size_T``); ``items`` replaces the manifest for a figure of a subset of
        its items (13).
        """
        if items is not None:
            manifest = items
        else:
            manifest = load_table(self.manifest) if self.manifest.is_file() else pd.DataFrame()
        gens = load_table(self.generations) if self.generations.is_file() else pd.DataFrame()
        table = self.results / "alignment.csv"
        stored = pd.read_csv(table) if results and table.is_file() else pd.DataFrame()
        if encoders is None and {"encoder", "modality"} <= set(stored.columns):
            encoders = dict(zip(stored["encoder"], stored["modality"]))
        named = tuple((str(n), m if isinstance(m, str) else str(m[0])) for n, m in (encoders or {}).items())
        k = (
            settings.k
            if settings is not None
            else (int(stored["k"].iloc[0]) if "k" in stored.columns and len(stored) else None)
        )

        def recorded(col: str) -> list:
            return list(dict.fromkeys(gens[col].dropna().tolist())) if col in gens.columns else []

        sampled = recorded("do_sample")
        return RunSetting(
            run=self.name,
            dataset="+".join(map(str, dict.fromkeys(manifest["source"]))) if "source" in manifest.columns else None,
            n_items=len(manifest) if len(manifest.columns) else None,
            n_sound=int(manifest["audio_path"].notna().sum()) if "audio_path" in manifest.columns else None,
            llm=(llm if isinstance(llm, str) else ", ".join(llm))
            if llm is not None
            else ", ".join(map(str, recorded("llm"))) or None,
            T=T if T is not None else (int(max(recorded("max_new_tokens"))) if recorded("max_new_tokens") else None),
            decoding=None if not sampled else ("sampled" if any(sampled) else "greedy"),
            k=k,
            encoders=named,
        )

    def require(self, path: Path, made_by: str) -> Path:
        """Return ``path`` or raise a message saying which notebook makes it."""
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run {made_by} for run {self.name!r} first")
        return path

    def read_results(self, stem: str) -> pd.DataFrame | None:
        """A results table an earlier notebook of this run saved (``<stem>.csv``), or None where there is none."""
        path = self.results / f"{stem}.csv"
        return pd.read_csv(path) if path.is_file() else None

    def save_results(self, df: pd.DataFrame, stem: str) -> pd.DataFrame:
        """A notebook's results table, with this run's name as its first column (``run``, when it has
        none), written to :attr:`results` as CSV and JSON (:func:`save_results`); returns the table saved."""
        if "run" not in df.columns:
            df = df.copy()
            df.insert(0, "run", self.name)
        save_results(df, self.results, stem)
        return df


@dataclass(frozen=True)
class RunSetting:
    """The setting a figure states in its footer (:meth:`RunPaths.setting` reads it from a run).

    ``n_sound``: items with a sound (shown when an audio encoder is among ``encoders``); ``T``:
    generated tokens (a number, or text such as ``"64 (random words), 128"``); ``encoders``:
    ``(name, modality)`` pairs. A field that is ``None`` or empty was not recorded and is left out.
    """

    run: str
    dataset: str | None = None
    n_items: int | None = None
    n_sound: int | None = None
    llm: str | None = None
    T: int | str | None = None
    decoding: str | None = None
    k: int | None = None
    encoders: tuple[tuple[str, str], ...] = ()

    def line(self) -> str:
        """One line, e.g. ``tuxpaint, 300 items (101 with a sound) · LLM smollm2-135m-instruct, T = 128,
        greedy · mutual k-NN, k = 10 · encoders efficientnet-lite2 (vision), aisfx (audio) · run default``."""
        parts = []
        if self.dataset is not None or self.n_items is not None:
            data = ", ".join(x for x in (self.dataset, None if self.n_items is None else f"{self.n_items} items") if x)
            if self.n_sound is not None and any(m == "audio" for _, m in self.encoders):
                data += f" ({self.n_sound} with a sound)"
            parts.append(data)
        if self.llm or self.T is not None:
            gen = ", ".join(
                x for x in (self.llm and f"LLM {self.llm}", None if self.T is None else f"T = {self.T}") if x
            )
            parts.append(gen + (f", {self.decoding}" if self.decoding and self.T is not None else ""))
        if self.k is not None:
            parts.append(f"mutual k-NN, k = {self.k}")
        if self.encoders:
            parts.append("encoders " + ", ".join(f"{n} ({m})" for n, m in self.encoders))
        parts.append(f"run {self.run}")
        return " · ".join(parts)


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
    if absent:  # one line: "no sounds in this run: the audio encoders (...) ... are skipped" for an image-only run
        manifest = load_table(run.manifest) if run.manifest.is_file() else None
        print(encoders_left_out(manifest, vision_encoders, audio_encoders, absent))
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


class StoredRun(NamedTuple):
    """What 02 and 03 stored for a run: the generations table (``gens``), and the representation
    ids and ``"<cue>/<kind>" -> [items, layers, hidden]`` arrays (``rep_ids``, ``rep_arrays``)."""

    gens: pd.DataFrame
    rep_ids: list[str]
    rep_arrays: dict[str, np.ndarray]


def stored_representations(run: RunPaths) -> StoredRun:
    """What 02 and 03 stored for the run, where they did (empty when a notebook has not run;
    08, 09 and 12–14 then generate)."""
    gens = load_table(run.generations) if run.generations.is_file() else pd.DataFrame(columns=["cue", "llm"])
    rep_ids, rep_arrays = load_arrays(run.representations) if run.representations.is_file() else ([], {})
    return StoredRun(gens, list(rep_ids), dict(rep_arrays))


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
