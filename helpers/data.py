"""Datasets → one manifest table, with validation and clear errors.

A *manifest* is a pandas DataFrame with one row per item and the columns
``MANIFEST_COLUMNS``: ``id`` (unique, stable), ``caption`` (the text put into the
cue template), ``caption_raw`` (as the source wrote it), ``image_path`` and
``audio_path`` (absolute paths or missing), ``source`` and ``category``.

The embedded default dataset is the Tux Paint stamp collection (Debian package
``tuxpaint-stamps-default``, GPL-2): each stamp has a one-line English
description, a PNG drawing and, for about a hundred stamps, a real sound effect.
The same captions therefore serve both modalities.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from helpers import media

MANIFEST_COLUMNS = ["id", "caption", "caption_raw", "image_path", "audio_path", "source", "category"]
TUXPAINT_PACKAGE = "tuxpaint-stamps-default"
TUXPAINT_SUBDIR = Path("usr/share/tuxpaint/stamps")
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


# --------------------------------------------------------------------------- Tux Paint


def fetch_tuxpaint_stamps(dest: Path, stamps_dir: Path | None = None) -> Path:
    """Return the folder of extracted Tux Paint stamps, downloading it once if needed.

    With ``stamps_dir`` given, that folder is used as is. Otherwise the Debian package
    is fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into
    ``dest`` (atomically: a half-finished extraction is never left at ``dest``).
    """
    if stamps_dir is not None:
        stamps_dir = Path(stamps_dir)
        if not (stamps_dir.is_dir() and any(stamps_dir.iterdir())):
            raise FileNotFoundError(
                f"stamps_dir={stamps_dir} is not a folder of Tux Paint stamps "
                "(expected category folders such as animals/, food/, household/)."
            )
        return stamps_dir
    final = Path(dest) / TUXPAINT_SUBDIR
    if final.is_dir():
        return final
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"Cannot fetch the Tux Paint stamps: {', '.join(missing)} not found (not a Debian/Ubuntu system). "
            f"Download the '{TUXPAINT_PACKAGE}' .deb (or the tuxpaint-stamps source tarball from "
            "https://tuxpaint.org/download/), extract it, and pass the folder that holds animals/, food/, … "
            "as the `stamps_dir` parameter of notebook 01 (or `--param stamps_dir=PATH` to the runner)."
        )
    Path(dest).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        deb = _apt_download(TUXPAINT_PACKAGE, Path(tmp))
        unpack = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpack)], check=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(unpack / TUXPAINT_SUBDIR, final)
        shutil.copy2(deb, Path(dest) / deb.name)
    return final


def _apt_download(package: str, workdir: Path) -> Path:
    """``apt-get download PACKAGE`` into ``workdir``, running ``apt-get update`` once if lists are missing."""

    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", package], cwd=workdir, capture_output=True, text=True)

    res = attempt()
    if res.returncode != 0:
        upd = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        res = attempt()
        if res.returncode != 0:
            hint = "" if upd.returncode == 0 else f" (`apt-get update` failed too: {upd.stderr.strip()[-300:]})"
            raise RuntimeError(
                f"`apt-get download {package}` failed: {res.stderr.strip()[-500:]}{hint}. "
                f"Run `sudo apt-get update` and retry, or extract the package yourself and pass `stamps_dir`."
            )
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if not debs:
        raise RuntimeError(f"`apt-get download {package}` succeeded but no .deb appeared in {workdir}")
    return debs[-1]


def read_stamp_caption(txt_path: Path) -> str:
    """The English description of a stamp: the first line of its ``NAME.txt``."""
    with Path(txt_path).open(encoding="utf-8", errors="replace") as fh:
        return fh.readline().strip()


def build_tuxpaint_manifest(
    stamps_dir: Path, exclude_categories: tuple[str, ...] = ("symbols",)
) -> tuple[pd.DataFrame, SkipReport]:
    """Scan an extracted stamps folder into a manifest, one item per distinct caption.

    Item = ``NAME.txt`` (caption = its first line) + ``NAME.png`` (image) + ``NAME.ogg``
    (sound, where present; ``*_desc*.ogg`` are spoken descriptions and never used).
    Stamps whose caption repeats an earlier one (in sorted path order) are skipped
    and counted, as are stamps without a PNG or with an empty caption.
    """
    stamps_dir = Path(stamps_dir)
    if not stamps_dir.is_dir():
        raise FileNotFoundError(f"Tux Paint stamps folder not found: {stamps_dir}")
    report = SkipReport()
    candidates: list[dict] = []
    for txt in sorted(stamps_dir.rglob("*.txt")):
        rel = txt.relative_to(stamps_dir).with_suffix("")
        category = rel.parts[0] if len(rel.parts) > 1 else ""
        item = rel.as_posix()
        if category in exclude_categories:
            report.add(f"category '{category}' excluded", item)
            continue
        png = txt.with_suffix(".png")
        if not png.is_file():
            report.add("no PNG image (e.g. SVG-only stamp)", item)
            continue
        raw = read_stamp_caption(txt)
        caption = normalize_caption(raw)
        if not caption:
            report.add("empty caption", item)
            continue
        ogg = txt.with_suffix(".ogg")
        candidates.append(
            {
                "id": f"tuxpaint/{item}",
                "caption": caption,
                "caption_raw": raw,
                "image_path": str(png.resolve()),
                "audio_path": str(ogg.resolve()) if ogg.is_file() else None,
                "source": "tuxpaint",
                "category": category,
            }
        )
    # One item per caption: the first in path order, preferring one that has a sound.
    chosen: dict[str, dict] = {}
    for row in candidates:
        key = row["caption"].lower()
        if key not in chosen:
            chosen[key] = row
        elif chosen[key]["audio_path"] is None and row["audio_path"] is not None:
            report.add("duplicate caption", chosen[key]["id"].removeprefix("tuxpaint/"))
            chosen[key] = row
        else:
            report.add("duplicate caption", row["id"].removeprefix("tuxpaint/"))
    rows = sorted(chosen.values(), key=lambda r: r["id"])
    if not rows:
        raise ManifestError(f"No usable stamps found under {stamps_dir} ({report}).")
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS), report


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
    use (:func:`helpers.media.image_problem`, :func:`helpers.media.audio_problem`; a
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


#: dataset name -> the modality every item has (validated with ``require``); "byo" items may have either.
DATASET_MODALITIES: dict[str, tuple[str, ...]] = {
    "tuxpaint": ("image",),
    "audiocaps": ("audio",),
    "clotho": ("audio",),
    "wit": ("image",),
    "dci": ("image",),
    "byo": (),
}
DATASETS = tuple(DATASET_MODALITIES)


def build_manifest(
    dataset: str,
    stamps_dir: Path | None = None,
    *,
    dataset_csv: str | Path | None = None,
    dataset_dir: str | Path | None = None,
    caption_column: str | None = None,
    on_bad_item: OnError = "raise",
    wit_revision: str = "wit_1024",
) -> tuple[pd.DataFrame, SkipReport]:
    """The full manifest of a named dataset (fetching it on first use) and what was left out.

    ========= =============================================================== ==================
    dataset   dataset_csv / dataset_dir                                        caption_column
    ========= =============================================================== ==================
    tuxpaint  ``stamps_dir`` (None: fetch the Debian package)                  –
    audiocaps official CSV / folder of clips                                   –
    clotho    official caption CSV / folder of clips                           caption_1 … 5
    wit       – / local copy of ``minhuh/prh`` (None: the hub)                 –
    dci       – / DCI release folder                                           short_caption, extra_caption, extended
    byo       your CSV (paths relative to it) / –                              default ``caption``
    ========= =============================================================== ==================

    ``on_bad_item="skip"`` leaves items with missing or unreadable media out and counts them.
    """
    from helpers import datasets as D
    from helpers.paths import raw_data_root

    def need_csv() -> str | Path:
        if dataset_csv is None:
            raise ValueError(f"dataset {dataset!r} needs `dataset_csv` (its caption CSV)")
        return dataset_csv

    if dataset == "tuxpaint":
        return build_tuxpaint_manifest(fetch_tuxpaint_stamps(raw_data_root() / "tuxpaint", stamps_dir))
    if dataset == "audiocaps":
        return D.build_audiocaps_manifest(need_csv(), dataset_dir, on_missing=on_bad_item)
    if dataset == "clotho":
        return D.build_clotho_manifest(need_csv(), dataset_dir, caption_column or "caption_1", on_missing=on_bad_item)
    if dataset == "wit":
        ds = D.load_wit_dataset(dataset_dir, revision=wit_revision)
        return D.build_wit_manifest(ds, raw_data_root() / f"wit-{wit_revision}" / "images", on_missing=on_bad_item)
    if dataset == "dci":
        return D.build_dci_manifest(dataset_dir, caption_column or "short_caption", on_missing=on_bad_item)
    if dataset == "byo":
        return D.build_byo_manifest(need_csv(), caption_column or "caption", on_missing=on_bad_item)
    raise ValueError(f"unknown dataset {dataset!r}; available: {', '.join(DATASETS)}")


# --------------------------------------------------------------------------- sharding


def shard_of(item_id: str, n_shards: int) -> int:
    """The shard (0 … n_shards-1) an item belongs to: a stable hash of its id, independent of
    the manifest's order, size and the machine, so every shard job agrees without talking."""
    from helpers.cache import stable_hash

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
