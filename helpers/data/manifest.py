"""The manifest: one table of items, its schema, validation, selection and shards.

A *manifest* is a pandas DataFrame with one row per item and the columns
``MANIFEST_COLUMNS``: ``id`` (unique, stable), ``caption`` (the text put into the
cue template), ``caption_raw`` (as the source wrote it), ``image_path`` and
``audio_path`` (absolute paths or missing), ``source`` and ``category``.

Every source that produces one (the embedded Tux Paint stamps, the paper's datasets,
your own CSV) lives in :mod:`helpers.data.datasets`, above this module; what is left out on
purpose is counted in a :class:`SkipReport`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from helpers.data import media

MANIFEST_COLUMNS = ["id", "caption", "caption_raw", "image_path", "audio_path", "source", "category"]
_ARTICLES = {"a", "an", "the"}

OnError = Literal["raise", "skip"]


class ManifestError(ValueError):
    """A manifest row is unusable; the message names the item and the fix."""


@dataclass
class SkipReport:
    """Counts (and examples) of items left out on purpose, by reason. Never drop data silently."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, item: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(item)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {"reason": r, "count": n, "examples": ", ".join(self.examples.get(r, []))}
            for r, n in self.counts.most_common()
        ]
        return pd.DataFrame(rows, columns=["reason", "count", "examples"])

    def __str__(self) -> str:
        if not self.counts:
            return "no items skipped"
        return "; ".join(f"{n} skipped: {r}" for r, n in self.counts.most_common())


# --------------------------------------------------------------------------- captions


def normalize_caption(raw: str) -> str:
    """Make a source caption fit inside "…to see {caption}.".

    Strips whitespace and trailing sentence punctuation and lower-cases a leading
    article ("A red apple." → "a red apple"). Everything else is kept as written.
    """
    text = " ".join(raw.split())
    text = re.sub(r"[.!?\s]+$", "", text)
    first, _, rest = text.partition(" ")
    if first.lower() in _ARTICLES and rest:
        text = f"{first.lower()} {rest}"
    return text


# --------------------------------------------------------------------------- validation & selection


def validate_manifest(
    manifest: pd.DataFrame,
    require: tuple[str, ...] = (),
    on_error: OnError = "raise",
    check_audio_readable: bool = True,
    check_images: bool = True,
) -> tuple[pd.DataFrame, SkipReport]:
    """Check every row; raise on the first bad one, or skip-and-count with ``on_error="skip"``.

    Checks: required columns; unique ids; non-empty caption; files named in
    ``image_path``/``audio_path`` exist and decode completely with the loaders the encoders
    use (:func:`helpers.data.media.image_problem`, :func:`helpers.data.media.audio_problem`; a
    truncated JPEG or a zero-byte WAV is caught here, where it can still be skipped); and
    every modality in ``require`` (``"image"``, ``"audio"``) is present for every row.
    The error names the item, the file and the fix.
    """
    missing_cols = [c for c in ("id", "caption", "image_path", "audio_path") if c not in manifest.columns]
    if missing_cols:
        raise ManifestError(f"manifest lacks column(s) {missing_cols}; expected at least {MANIFEST_COLUMNS[:5]}")
    dupes = manifest["id"][manifest["id"].duplicated()].tolist()
    if dupes:
        raise ManifestError(f"manifest ids must be unique; repeated: {dupes[:5]}")
    report = SkipReport()
    keep: list[bool] = []
    for row in manifest.itertuples(index=False):
        problem = _row_problem(row, require, check_audio_readable, check_images)
        if problem is None:
            keep.append(True)
            continue
        if on_error == "raise":
            raise ManifestError(f"item {row.id!r}: {problem}")
        report.add(problem.split(":")[0], str(row.id))
        keep.append(False)
    return manifest[np.array(keep, dtype=bool)].reset_index(drop=True), report


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _row_problem(row, require: tuple[str, ...], check_audio_readable: bool, check_images: bool) -> str | None:
    caption = row.caption
    if _is_missing(caption) or not str(caption).strip():
        return "empty caption: give the item a caption or remove the row"
    for modality, col in (("image", "image_path"), ("audio", "audio_path")):
        value = getattr(row, col)
        if _is_missing(value):
            if modality in require:
                return f"no {modality}: this run needs a {modality} for every item (set {col} or drop the row)"
            continue
        path = Path(str(value))
        if not path.is_file():
            return f"missing {modality} file: {path} does not exist (fix {col} or restore the file)"
        if modality == "audio" and check_audio_readable and (problem := media.audio_problem(path)):
            return f"unreadable audio: {problem} Re-encode it as WAV/FLAC/OGG/MP3 or drop the row"
        if modality == "image" and check_images and (problem := media.image_problem(path)):
            return f"unreadable image: {problem} Re-save it as PNG/JPEG or drop the row"
    return None


def select_items(manifest: pd.DataFrame, n_items: int | None, seed: int = 0) -> pd.DataFrame:
    """A deterministic subset of ``n_items`` rows that keeps as many audio items as possible.

    All items with a sound are taken first (up to ``n_items``), then items with an
    image only, each group in a seeded random order; the result is sorted by id.
    ``n_items=None`` or a number ≥ the manifest size returns everything.
    """
    if n_items is None or n_items >= len(manifest):
        return manifest.sort_values("id").reset_index(drop=True)
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    rng = np.random.default_rng(seed)
    has_audio = manifest["audio_path"].notna()
    audio_ids = manifest.loc[has_audio, "id"].sort_values().to_numpy()
    other_ids = manifest.loc[~has_audio, "id"].sort_values().to_numpy()
    rng.shuffle(audio_ids)
    rng.shuffle(other_ids)
    chosen = list(audio_ids[:n_items]) + list(other_ids[: max(0, n_items - len(audio_ids))])
    return manifest[manifest["id"].isin(chosen)].sort_values("id").reset_index(drop=True)


def modality_subset(manifest: pd.DataFrame, modality: str) -> pd.DataFrame:
    """Rows that have the given modality (``"image"`` or ``"audio"``), in manifest order."""
    col = {"image": "image_path", "audio": "audio_path"}[modality]
    return manifest[manifest[col].notna() & (manifest[col] != "")].reset_index(drop=True)


#: each medium of a manifest: what a reader calls its items, and the modality of its encoders
MEDIA_NOUNS = {"image": "images", "audio": "sounds"}
ENCODER_MODALITY = {"image": "vision", "audio": "audio"}


def missing_media(manifest: pd.DataFrame) -> list[str]:
    """The media (``"image"``, ``"audio"``) no item of ``manifest`` has: ``["audio"]`` for an
    image-only dataset (a bring-your-own CSV of pictures, WiT, DCI), ``["image"]`` for sounds only."""
    return [m for m in MEDIA_NOUNS if modality_subset(manifest, m).empty]


def skip_line(medium: str, what: str, plural: bool = True) -> str:
    """The one line a notebook prints instead of the cells of an absent medium, e.g.
    ``skip_line("audio", "the audio players")`` → ``"no sounds in this run: the audio players are skipped"``."""
    if medium not in MEDIA_NOUNS:
        raise ValueError(f"medium must be one of {list(MEDIA_NOUNS)}, got {medium!r}")
    return f"no {MEDIA_NOUNS[medium]} in this run: {what} {'are' if plural else 'is'} skipped"


def skipped_medium(manifest: pd.DataFrame, medium: str, what: str, plural: bool = True) -> str | None:
    """:func:`skip_line` when no item of ``manifest`` has ``medium``, else None (the cell goes on)."""
    return skip_line(medium, what, plural) if medium in missing_media(manifest) else None


def media_encoders(
    manifest: pd.DataFrame, vision_encoders: Sequence[str], audio_encoders: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Notebook 04: the encoders to run over ``manifest`` (vision first), and one :func:`skip_line` for
    each medium no item has, naming the encoders left out instead of one empty result per encoder."""
    wanted = {"image": list(vision_encoders), "audio": list(audio_encoders)}
    notes = []
    for medium in missing_media(manifest):
        if wanted[medium]:
            names = ", ".join(wanted.pop(medium))
            notes.append(skip_line(medium, f"the {ENCODER_MODALITY[medium]} encoders ({names})"))
    return [n for names in wanted.values() for n in names], notes


def encoders_left_out(
    manifest: pd.DataFrame | None, vision_encoders: Sequence[str], audio_encoders: Sequence[str], absent: Sequence[str]
) -> str:
    """The one line the analysis notebooks (05-09) print for the encoders without features (``absent``):
    a :func:`skip_line` when every encoder of a medium is absent because ``manifest`` has no item of it
    (an image-only run), else the encoders named as left out (04 ran for fewer encoders)."""
    parts, rest = [], list(absent)
    for medium, names in (("image", vision_encoders), ("audio", audio_encoders)):
        gone = [n for n in names if n in absent]
        if gone and len(gone) == len(names) and manifest is not None and medium in missing_media(manifest):
            parts.append(
                skip_line(
                    medium, f"the {ENCODER_MODALITY[medium]} encoders ({', '.join(gone)}) and their tables and figures"
                )
            )
            rest = [n for n in rest if n not in gone]
    if rest:
        parts.append(f"no features for {rest} in this run (04 made none): left out")
    return "; ".join(parts)


def load_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest (Parquet as written by notebook 01, or a CSV with the same columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}; run notebook 01 (data prep) first")
    df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    df["id"] = df["id"].astype(str)
    for col in ("image_path", "audio_path"):
        df[col] = df[col].where(df[col].notna(), None)
    return df


# --------------------------------------------------------------------------- sharding


def shard_of(item_id: str, n_shards: int) -> int:
    """The shard (0 … n_shards-1) an item belongs to: a stable hash of its id, independent of
    the manifest's order, size and the machine, so every shard job agrees without talking."""
    from helpers.core.cache import stable_hash

    return int(stable_hash({"item": str(item_id)}, 16), 16) % n_shards


def shard_items(manifest: pd.DataFrame, shard: int | None, n_shards: int = 1) -> pd.DataFrame:
    """The rows of ``manifest`` in shard ``shard`` of ``n_shards`` (all rows when ``shard`` is None).

    Shards are disjoint and together cover the manifest. Every expensive step is cached
    per item in the content-addressed cache, so shard runs writing to one shared cache
    merge by construction: a later unsharded run finds every item computed.
    """
    if shard is None:
        if n_shards != 1:
            raise ValueError(f"n_shards={n_shards} but shard is None: give the shard index 0..{n_shards - 1}")
        return manifest.reset_index(drop=True)
    if not (isinstance(n_shards, (int, np.integer)) and n_shards >= 1):
        raise ValueError(f"n_shards must be a positive integer, got {n_shards!r}")
    if not (isinstance(shard, (int, np.integer)) and 0 <= shard < n_shards):
        raise ValueError(f"shard must be an integer in 0..{n_shards - 1}, got {shard!r}")
    keep = np.array([shard_of(i, int(n_shards)) == shard for i in manifest["id"]], dtype=bool)
    return manifest[keep].reset_index(drop=True)
