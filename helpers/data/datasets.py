"""Every dataset (the embedded Tux Paint stamps, the paper's, your own) → the manifest of :mod:`helpers.data.manifest`.

:func:`build_manifest` picks the loader by name. One loader per source, each returning ``(manifest, SkipReport)`` with the columns
:data:`helpers.data.manifest.MANIFEST_COLUMNS`. Loaders validate their input and say exactly
what is wrong and how to fix it (which file, row, column); missing media either stop
the run (``on_missing="raise"``, default) or are left out and counted
(``on_missing="skip"``), never dropped silently.

==========  ======== ============================================================
dataset     modality input
==========  ======== ============================================================
audiocaps   audio    official CSV ``audiocap_id,youtube_id,start_time,caption`` +
                     a folder of clips (``file_name`` column, or clips named
                     ``{youtube_id}_{start_time}``, ``Y{youtube_id}``, ``{youtube_id}``
                     or ``{audiocap_id}`` with .wav/.flac/.mp3/.ogg)
clotho      audio    official Clotho v2 CSV ``file_name,caption_1..caption_5`` +
                     the folder of clips; ``caption_column`` picks the caption
wit         vision   WiT-1024 of the Platonic Representation Hypothesis work:
                     Hugging Face ``minhuh/prh`` at revision ``wit_1024``, split
                     ``train``, columns ``image`` and ``text`` (a list; caption =
                     its first entry, as in PRH's ``extract_features.py``)
dci         vision   Densely Captioned Images release folder
                     ``densely_captioned_images/{complete/*.json, photos/}``
byo         either   your CSV: ``caption`` + ``image_path`` and/or ``audio_path``
                     (relative paths are resolved against the CSV's folder)
==========  ======== ============================================================

Audio is only *checked* here (its header must be readable); decoding, mixing stereo
down, resampling to the encoder's rate and cropping long clips happen when an
encoder reads it (:func:`helpers.data.media.load_audio`), so any sample rate is accepted.

One module because the loaders are short (each well under a hundred lines) and share the
CSV, column and media checks that give every source the same error messages; the table
above is its index.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.data.manifest import MANIFEST_COLUMNS, ManifestError, OnError, SkipReport, normalize_caption

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")

AUDIOCAPS_COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
CLOTHO_CAPTIONS = tuple(f"caption_{i}" for i in range(1, 6))
WIT_HUB_ID = "minhuh/prh"
WIT_REVISION = "wit_1024"
DCI_CAPTIONS = ("short_caption", "extra_caption", "extended")


# --------------------------------------------------------------------------- shared checks


def _read_csv(path: str | Path, what: str, hint: str) -> pd.DataFrame:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} CSV not found: {path}. {hint}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several parser error types
        raise ManifestError(f"cannot parse {what} CSV {path}: {type(exc).__name__}: {exc}") from exc


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str, path: Path, hint: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ManifestError(f"{what} CSV {path} lacks column(s) {missing}; it has {list(df.columns)}. {hint}")


def _require_dir(path: str | Path | None, param: str, what: str) -> Path:
    if path is None:
        raise ValueError(f"{what}: set `{param}` to the folder that holds the files")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{what}: `{param}`={p} is not a folder; point it at the extracted files")
    return p


def _check_audio(path: Path) -> str | None:
    """None when the whole clip decodes with the encoders' loader, else the problem (named by :func:`_fail`)."""
    from helpers.data.media import audio_problem

    problem = audio_problem(path)
    if problem is None:
        return None
    return f"unreadable audio {path} ({problem}); re-encode it as WAV/FLAC/OGG/MP3 or drop the row"


def _check_image(path: Path) -> str | None:
    """None when the whole image decodes with the encoders' loader, else the problem."""
    from helpers.data.media import image_problem

    problem = image_problem(path)
    if problem is None:
        return None
    return f"unreadable image {path} ({problem}); re-save it as PNG/JPEG or drop the row"


def _fail(report: SkipReport, on_missing: OnError, where: str, reason: str, detail: str) -> None:
    """Raise (``on_missing="raise"``) or count the item as skipped under ``reason``."""
    if on_missing == "raise":
        raise ManifestError(f"{where}: {detail}. (Set on_bad_item='skip' to leave such items out and count them.)")
    if on_missing != "skip":
        raise ValueError(f"on_missing must be 'raise' or 'skip', got {on_missing!r}")
    report.add(reason, where)


def _row(
    item_id: str, raw: str, source: str, image: Path | None = None, audio: Path | None = None, category: str = ""
) -> dict[str, Any]:
    return {
        "id": item_id,
        "caption": normalize_caption(raw),
        "caption_raw": raw,
        "image_path": str(image.resolve()) if image is not None else None,
        "audio_path": str(audio.resolve()) if audio is not None else None,
        "source": source,
        "category": category,
    }


def _frame(rows: list[dict], what: str, report: SkipReport) -> pd.DataFrame:
    if not rows:
        raise ManifestError(f"no usable items in {what} ({report})")
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    dupes = df["id"][df["id"].duplicated()].tolist()
    if dupes:
        raise ManifestError(f"{what}: item ids repeat: {dupes[:5]}; each clip/image must appear once")
    return df


# --------------------------------------------------------------------------- Tux Paint (the embedded default)
#
# The Debian package ``tuxpaint-stamps-default`` (GPL-2): each stamp has a one-line English
# description, a PNG drawing and, for about a hundred stamps, a real sound effect, so the same
# captions serve both modalities.

TUXPAINT_PACKAGE = "tuxpaint-stamps-default"
TUXPAINT_SUBDIR = Path("usr/share/tuxpaint/stamps")


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


# --------------------------------------------------------------------------- AudioCaps


def audiocaps_clip_candidates(clips_dir: Path, row: Mapping[str, str]) -> list[Path]:
    """File names an AudioCaps clip is commonly stored under, in the order they are tried."""
    names: list[str] = []
    if row.get("file_name"):
        names.append(row["file_name"])
    yt, start = row.get("youtube_id", ""), row.get("start_time", "")
    stems = []
    if yt:
        start_int = start.split(".")[0] if start else ""
        stems += [f"{yt}_{start}", f"{yt}_{start_int}", f"Y{yt}", yt]
        if yt.startswith("-"):  # some mirrors store a leading '-' as '_'
            stems += [f"_{yt[1:]}_{start}", f"_{yt[1:]}_{start_int}"]
    if row.get("audiocap_id"):
        stems.append(row["audiocap_id"])
    names += [f"{s}{ext}" for s in dict.fromkeys(stems) for ext in AUDIO_EXTENSIONS]
    return [clips_dir / n for n in dict.fromkeys(names)]


def build_audiocaps_manifest(
    csv: str | Path, clips_dir: str | Path, on_missing: OnError = "raise", check_audio: bool = True
) -> tuple[pd.DataFrame, SkipReport]:
    """AudioCaps: one item per clip (``youtube_id`` + ``start_time``), caption = its first row's caption.

    The official CSVs (``train/val/test.csv``) have ``audiocap_id,youtube_id,start_time,caption``
    with one row per caption (val/test: 5 rows per clip); ``audiocap_id`` may be absent
    when ``file_name`` names the clip. Clips are found by :func:`audiocaps_clip_candidates`.
    """
    csv = Path(csv).expanduser()
    hint = (
        "The official AudioCaps CSVs (github.com/cdjkim/audiocaps, dataset/*.csv) have the columns "
        "audiocap_id,youtube_id,start_time,caption; a `file_name` column may name each clip."
    )
    df = _read_csv(csv, "AudioCaps", hint)
    _require_columns(df, ("youtube_id", "start_time", "caption"), "AudioCaps", csv, hint)
    if "file_name" not in df.columns and "audiocap_id" not in df.columns:
        raise ManifestError(
            f"AudioCaps CSV {csv} needs `audiocap_id` or `file_name` besides youtube_id,start_time,caption. {hint}"
        )
    clips = _require_dir(clips_dir, "dataset_dir", "AudioCaps clips")
    report = SkipReport()
    rows: list[dict] = []
    seen: set[str] = set()
    for i, rec in enumerate(df.to_dict("records")):
        where = (
            f"AudioCaps row {i + 2} of {csv.name} (youtube_id={rec['youtube_id']!r}, start_time={rec['start_time']!r})"
        )
        key = f"{rec['youtube_id']}_{rec['start_time']}"
        if key in seen:  # further captions of a clip already taken
            report.add("further caption of the same clip (first one used)", key)
            continue
        if not rec["caption"].strip():
            _fail(report, on_missing, where, "empty caption", "empty `caption`; fill it in or remove the row")
            continue
        candidates = audiocaps_clip_candidates(clips, rec)
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            shown = ", ".join(p.name for p in candidates[:4])
            _fail(
                report,
                on_missing,
                where,
                "clip not found",
                f"no clip in {clips} (tried {shown}, …); download it or drop the row",
            )
            continue
        if check_audio and (problem := _check_audio(found)):
            _fail(report, on_missing, where, "unreadable audio", problem)
            continue
        seen.add(key)
        rows.append(_row(f"audiocaps/{key}", rec["caption"], "audiocaps", audio=found))
    return _frame(rows, f"AudioCaps CSV {csv}", report), report


# --------------------------------------------------------------------------- Clotho


def build_clotho_manifest(
    csv: str | Path,
    audio_dir: str | Path,
    caption_column: str = "caption_1",
    on_missing: OnError = "raise",
    check_audio: bool = True,
) -> tuple[pd.DataFrame, SkipReport]:
    """Clotho v2: one item per ``file_name``; caption = ``caption_column`` (caption_1 … caption_5)."""
    csv = Path(csv).expanduser()
    hint = (
        "The official Clotho v2 caption CSVs (clotho_captions_{development,validation,evaluation}.csv) "
        "have file_name,caption_1,…,caption_5."
    )
    if caption_column not in CLOTHO_CAPTIONS:
        raise ValueError(f"caption_column must be one of {list(CLOTHO_CAPTIONS)}, got {caption_column!r}")
    df = _read_csv(csv, "Clotho", hint)
    _require_columns(df, ("file_name", caption_column), "Clotho", csv, hint)
    audio = _require_dir(audio_dir, "dataset_dir", "Clotho audio")
    report = SkipReport()
    rows: list[dict] = []
    for i, rec in enumerate(df.to_dict("records")):
        where = f"Clotho row {i + 2} of {csv.name} (file_name={rec['file_name']!r})"
        caption = rec[caption_column]
        if not caption.strip():
            _fail(
                report,
                on_missing,
                where,
                "empty caption",
                f"empty `{caption_column}`; choose another caption_column or fix the row",
            )
            continue
        path = audio / rec["file_name"]
        if not path.is_file():
            _fail(
                report,
                on_missing,
                where,
                "clip not found",
                f"{path} does not exist; extract the Clotho audio archive into {audio}",
            )
            continue
        if check_audio and (problem := _check_audio(path)):
            _fail(report, on_missing, where, "unreadable audio", problem)
            continue
        rows.append(_row(f"clotho/{rec['file_name']}", caption, "clotho", audio=path))
    return _frame(rows, f"Clotho CSV {csv}", report), report


# --------------------------------------------------------------------------- WiT-1024 (PRH)


def load_wit_dataset(dataset_dir: str | Path | None = None, revision: str = WIT_REVISION):
    """The PRH WiT split as a ``datasets.Dataset`` with undecoded images.

    ``dataset_dir`` = a local copy in the same schema: a ``Dataset.save_to_disk`` folder, or
    a folder of Parquet files (e.g. ``hf download minhuh/prh --repo-type dataset
    --revision wit_1024 --local-dir DIR``). ``None`` loads ``minhuh/prh`` at ``revision`` from
    the hub (or its local cache when offline).
    """
    try:
        import datasets
    except ImportError as exc:
        raise ImportError("the WiT loader needs the `datasets` package: pip install -e '.[paper]'") from exc
    if dataset_dir is not None:
        d = Path(dataset_dir).expanduser()
        if not d.is_dir():
            raise FileNotFoundError(f"WiT: dataset_dir={d} is not a folder")
        if (d / "dataset_info.json").is_file() or (d / "state.json").is_file():
            ds = datasets.load_from_disk(str(d))
            if isinstance(ds, datasets.DatasetDict):
                if "train" not in ds:
                    raise ManifestError(f"WiT: {d} holds splits {list(ds)}, expected 'train'")
                ds = ds["train"]
        else:
            files = sorted(str(p) for p in d.rglob("*.parquet"))
            if not files:
                raise FileNotFoundError(
                    f"WiT: {d} holds neither a `save_to_disk` dataset nor Parquet files. Get a local copy with "
                    f"`hf download {WIT_HUB_ID} --repo-type dataset --revision {revision} --local-dir {d}`."
                )
            ds = datasets.load_dataset("parquet", data_files=files, split="train")
    else:
        try:
            ds = datasets.load_dataset(WIT_HUB_ID, revision=revision, split="train")
        except Exception as exc:
            raise RuntimeError(
                f"could not load {WIT_HUB_ID} (revision {revision}) from the Hugging Face hub or its cache "
                f"({type(exc).__name__}: {exc}). On a machine with network run `hf download --repo-type "
                f"dataset {WIT_HUB_ID} --revision {revision} --local-dir DIR` and pass dataset_dir=DIR."
            ) from exc
    missing = [c for c in ("image", "text") if c not in ds.column_names]
    if missing:
        raise ManifestError(
            f"WiT dataset lacks column(s) {missing}; it has {ds.column_names} (expected PRH's image + text)"
        )
    if isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return ds


def _image_bytes(value: Any) -> bytes:
    """Raw bytes of a datasets image cell (undecoded dict, PIL image or bytes)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path") and Path(value["path"]).is_file():
            return Path(value["path"]).read_bytes()
        raise ValueError("image cell has neither bytes nor a readable path")
    if hasattr(value, "save"):  # a decoded PIL image
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return buf.getvalue()
    raise ValueError(f"unsupported image cell of type {type(value).__name__}")


def _first_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value:
        return str(value[0])
    return ""


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def build_wit_manifest(
    records: Iterable[Mapping[str, Any]], image_dir: str | Path, on_missing: OnError = "raise"
) -> tuple[pd.DataFrame, SkipReport]:
    """WiT rows (``image``, ``text``) → manifest; images written once to ``image_dir/NNNN.<fmt>``.

    Item ``i`` gets id ``wit/NNNN`` (its row index), caption = ``text[0]``. Image bytes are
    kept as stored (no re-encoding), with the extension of their actual format; an
    existing file with the same bytes (SHA-256) is reused, so rebuilding the manifest is cheap
    and a file damaged or replaced since is rewritten.
    """
    from PIL import Image

    from helpers.core.cache import atomic_write_bytes, file_fingerprint

    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    report = SkipReport()
    rows: list[dict] = []
    for i, rec in enumerate(records):
        where = f"WiT row {i}"
        caption = _first_text(rec.get("text"))
        if not caption.strip():
            _fail(report, on_missing, where, "empty caption", "its `text` list is empty or its first entry blank")
            continue
        try:
            data = _image_bytes(rec.get("image"))
            with Image.open(io.BytesIO(data)) as im:
                fmt = (im.format or "PNG").lower()
                im.load()  # a full decode: verify() lets truncated JPEGs through
        except Exception as exc:
            _fail(
                report, on_missing, where, "unreadable image", f"image cannot be decoded ({type(exc).__name__}: {exc})"
            )
            continue
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        path = image_dir / f"{i:04d}.{ext}"
        if not (path.is_file() and path.stat().st_size == len(data) and file_fingerprint(path) == _sha256(data)):
            atomic_write_bytes(path, data)
        rows.append(_row(f"wit/{i:04d}", caption, "wit", image=path))
    return _frame(rows, "WiT", report), report


# --------------------------------------------------------------------------- DCI


def _dci_root(dataset_dir: str | Path) -> Path:
    d = _require_dir(dataset_dir, "dataset_dir", "DCI")
    for cand in (d, d / "densely_captioned_images", d / "data" / "densely_captioned_images"):
        if (cand / "complete").is_dir() and (cand / "photos").is_dir():
            return cand
    raise FileNotFoundError(
        f"DCI: {d} is not a DCI release folder: expected densely_captioned_images/complete/*.json and "
        "densely_captioned_images/photos/ (what github.com/facebookresearch/DCI's download script extracts)"
    )


def build_dci_manifest(
    dataset_dir: str | Path, caption_column: str = "short_caption", on_missing: OnError = "raise"
) -> tuple[pd.DataFrame, SkipReport]:
    """Densely Captioned Images: one item per ``complete/*.json``; image = ``photos/<json["image"]>``.

    ``caption_column``: ``short_caption`` (the standard caption), ``extra_caption``, or
    ``extended`` (short + extra joined by a space, as DCI's ``get_extended_caption``).
    """
    if caption_column not in DCI_CAPTIONS:
        raise ValueError(f"DCI caption_column must be one of {list(DCI_CAPTIONS)}, got {caption_column!r}")
    root = _dci_root(dataset_dir)
    report = SkipReport()
    rows: list[dict] = []
    files = sorted((root / "complete").glob("*.json"))
    if not files:
        raise FileNotFoundError(f"DCI: no annotation files in {root / 'complete'}")
    for f in files:
        where = f"DCI annotation {f.name}"
        try:
            ann = json.loads(f.read_text(encoding="utf-8"))
        except Exception as exc:
            _fail(report, on_missing, where, "unreadable annotation", f"not valid JSON ({exc})")
            continue
        keys = ("image", "short_caption") + (("extra_caption",) if caption_column != "short_caption" else ())
        missing = [k for k in keys if k not in ann]
        if missing:
            _fail(report, on_missing, where, "annotation lacks fields", f"lacks field(s) {missing}")
            continue
        if caption_column == "extended":
            raw = f"{ann['short_caption'].strip()} {ann['extra_caption'].strip()}".strip()
        else:
            raw = str(ann[caption_column])
        if not raw.strip():
            _fail(report, on_missing, where, "empty caption", f"empty `{caption_column}`")
            continue
        image = root / "photos" / ann["image"]
        if not image.is_file():
            _fail(
                report,
                on_missing,
                where,
                "image not found",
                f"{image} does not exist; extract the DCI photos into {root / 'photos'}",
            )
            continue
        rows.append(_row(f"dci/{f.stem}", raw, "dci", image=image))
    return _frame(rows, f"DCI folder {root}", report), report


# --------------------------------------------------------------------------- bring your own


def build_byo_manifest(
    csv: str | Path, caption_column: str = "caption", on_missing: OnError = "raise", check_audio: bool = True
) -> tuple[pd.DataFrame, SkipReport]:
    """Your own CSV: ``caption`` + ``image_path`` and/or ``audio_path`` (+ optional ``id``, ``category``).

    Relative paths are resolved against the CSV's folder; an empty cell means "no such
    modality for this item". Ids default to ``byo/<row number>``.
    """
    csv = Path(csv).expanduser()
    hint = "A bring-your-own CSV needs a caption column and image_path and/or audio_path (paths relative to the CSV's folder)."
    df = _read_csv(csv, "bring-your-own", hint)
    _require_columns(df, (caption_column,), "bring-your-own", csv, hint)
    media_cols = [c for c in ("image_path", "audio_path") if c in df.columns]
    if not media_cols:
        raise ManifestError(
            f"bring-your-own CSV {csv} has neither `image_path` nor `audio_path`; it has {list(df.columns)}. {hint}"
        )
    base = csv.parent
    report = SkipReport()
    rows: list[dict] = []
    for i, rec in enumerate(df.to_dict("records")):
        item_id = rec.get("id") or f"byo/{i:06d}"
        where = f"row {i + 2} of {csv.name} (id={item_id!r})"
        caption = rec[caption_column]
        if not caption.strip():
            _fail(report, on_missing, where, "empty caption", f"empty `{caption_column}`; fill it in or remove the row")
            continue
        paths: dict[str, Path | None] = {"image_path": None, "audio_path": None}
        problem = None
        for col in media_cols:
            cell = rec[col].strip()
            if not cell:
                continue
            p = Path(cell).expanduser()
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                problem = (
                    "file not found",
                    f"`{col}` = {cell!r} -> {p} does not exist (relative paths are resolved against {base})",
                )
                break
            if col == "audio_path" and check_audio and (msg := _check_audio(p)):
                problem = ("unreadable audio", f"`{col}`: {msg}")
                break
            if col == "image_path" and (msg := _check_image(p)):
                problem = ("unreadable image", f"`{col}`: {msg}")
                break
            paths[col] = p
        if problem is None and paths["image_path"] is None and paths["audio_path"] is None:
            problem = ("no media", f"both {media_cols} are empty; give the item an image or a sound")
        if problem is not None:
            _fail(report, on_missing, where, *problem)
            continue
        rows.append(
            _row(
                item_id,
                caption,
                "byo",
                image=paths["image_path"],
                audio=paths["audio_path"],
                category=rec.get("category", ""),
            )
        )
    return _frame(rows, f"bring-your-own CSV {csv}", report), report


def write_byo_csv(manifest: pd.DataFrame, path: str | Path, media: Iterable[str] = ("image", "audio")) -> Path:
    """A manifest (e.g. a run's, from notebook 01) as a bring-your-own CSV that keeps only ``media``.

    ``media``: ``"image"`` and/or ``"audio"``; items with none of them are left out, the others
    keep ``id``, ``category``, their caption as the source wrote it (so :func:`build_byo_manifest`
    normalises it to the same caption, and the same prompts hit the cache) and absolute media
    paths. ``media=("image",)`` turns a Tux Paint run into an image-only dataset.
    """
    media = tuple(media)
    if not media or set(media) - {"image", "audio"}:
        raise ValueError(f"media must be 'image' and/or 'audio', got {media!r}")
    cols = [f"{m}_path" for m in media]
    keep = manifest[manifest[cols].notna().any(axis=1)]
    if keep.empty:
        raise ManifestError(f"no item of this manifest has {' or '.join(media)}: nothing to write")
    caption = keep["caption_raw"] if "caption_raw" in keep.columns else keep["caption"]
    out = pd.DataFrame({"id": keep["id"].astype(str), "caption": caption, "category": keep.get("category", "")})
    for col in cols:
        out[col] = keep[col].map(lambda p: str(Path(p).resolve()) if isinstance(p, str) and p else "")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- by name


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
    from helpers.core.paths import raw_data_root

    def need_csv() -> str | Path:
        if dataset_csv is None:
            raise ValueError(f"dataset {dataset!r} needs `dataset_csv` (its caption CSV)")
        return dataset_csv

    if dataset == "tuxpaint":
        return build_tuxpaint_manifest(fetch_tuxpaint_stamps(raw_data_root() / "tuxpaint", stamps_dir))
    if dataset == "audiocaps":
        return build_audiocaps_manifest(need_csv(), dataset_dir, on_missing=on_bad_item)
    if dataset == "clotho":
        return build_clotho_manifest(need_csv(), dataset_dir, caption_column or "caption_1", on_missing=on_bad_item)
    if dataset == "wit":
        ds = load_wit_dataset(dataset_dir, revision=wit_revision)
        return build_wit_manifest(ds, raw_data_root() / f"wit-{wit_revision}" / "images", on_missing=on_bad_item)
    if dataset == "dci":
        return build_dci_manifest(dataset_dir, caption_column or "short_caption", on_missing=on_bad_item)
    if dataset == "byo":
        return build_byo_manifest(need_csv(), caption_column or "caption", on_missing=on_bad_item)
    raise ValueError(f"unknown dataset {dataset!r}; available: {', '.join(DATASETS)}")
