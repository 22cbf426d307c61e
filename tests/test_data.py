"""Manifest building from a small fake stamps tree, validation errors, item selection, prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from helpers.data import datasets, manifest as mf
from helpers.data.prompts import DEFAULT_CUES, build_prompts, check_template


def _stamp(root: Path, rel: str, caption: str | None, png=True, ogg=False, extra_ogg: str | None = None) -> None:
    base = root / rel
    base.parent.mkdir(parents=True, exist_ok=True)
    if caption is not None:
        base.with_suffix(".txt").write_text(f"{caption}\nfr.utf8=traduction\n", encoding="utf-8")
    if png:
        Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(base.with_suffix(".png"))
    else:
        base.with_suffix(".svg").write_text("<svg/>")
    if ogg:
        sf.write(base.with_suffix(".ogg"), np.sin(np.arange(8000) / 5.0).astype(np.float32), 16000, format="OGG")
    if extra_ogg:
        sf.write(base.parent / extra_ogg, np.zeros(800, np.float32), 16000, format="OGG")


@pytest.fixture
def stamps(tmp_path) -> Path:
    root = tmp_path / "stamps"
    _stamp(root, "animals/birds/owl", "An owl.", ogg=True, extra_ogg="owl_desc_fr.ogg")
    _stamp(root, "food/fruit/apple", "A red apple.")
    _stamp(root, "food/fruit/apple_b", "A red apple.", ogg=True)  # duplicate caption, but has a sound
    _stamp(root, "food/fruit/pear", "A yellow pear!")
    _stamp(root, "plants/tree", "An oak tree.", png=False)  # SVG only
    _stamp(root, "symbols/math/7", "The number seven.")
    _stamp(root, "town/empty", "   ")
    return root


def test_manifest_from_fake_stamps(stamps):
    df, skipped = datasets.build_tuxpaint_manifest(stamps)
    assert list(df.columns) == mf.MANIFEST_COLUMNS
    by_caption = df.set_index("caption")
    assert sorted(by_caption.index) == ["a red apple", "a yellow pear", "an owl"]
    # the duplicate with a sound wins; the spoken description is never used
    assert by_caption.loc["a red apple", "id"] == "tuxpaint/food/fruit/apple_b"
    assert by_caption.loc["an owl", "audio_path"].endswith("owl.ogg")
    assert pd.isna(by_caption.loc["a yellow pear", "audio_path"])
    assert by_caption.loc["an owl", "caption_raw"] == "An owl."
    assert dict(skipped.counts) == {
        "duplicate caption": 1,
        "no PNG image (e.g. SVG-only stamp)": 1,
        "category 'symbols' excluded": 1,
        "empty caption": 1,
    }
    assert skipped.total == 4 and "4" not in str(mf.SkipReport())


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A red apple.", "a red apple"),
        ("An owl", "an owl"),
        ("The Apollo lunar lander module.", "the Apollo lunar lander module"),
        ("  Big   fireworks!  ", "Big fireworks"),
        ("“No U-Turn”", "“No U-Turn”"),
        ("A", "A"),
    ],
)
def test_normalize_caption(raw, expected):
    assert mf.normalize_caption(raw) == expected


def _manifest(tmp_path, **overrides) -> pd.DataFrame:
    img = tmp_path / "img.png"
    Image.new("RGB", (4, 4)).save(img)
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(100, np.float32), 8000)
    row = {"id": "x1", "caption": "a cat", "image_path": str(img), "audio_path": str(wav)}
    rows = [row, {**row, "id": "x2", **overrides}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"caption": ""}, r"item 'x2': empty caption"),
        ({"caption": None}, r"item 'x2': empty caption"),
        ({"image_path": "/nope/missing.png"}, r"item 'x2': missing image file: /nope/missing.png does not exist"),
        ({"audio_path": "BAD"}, r"item 'x2': unreadable audio: .*bad.ogg"),
    ],
)
def test_bad_items_raise_naming_the_item(tmp_path, override, message):
    if override.get("audio_path") == "BAD":
        bad = tmp_path / "bad.ogg"
        bad.write_bytes(b"this is not audio")
        override = {"audio_path": str(bad)}
    df = _manifest(tmp_path, **override)
    with pytest.raises(mf.ManifestError, match=message):
        mf.validate_manifest(df)
    kept, report = mf.validate_manifest(df, on_error="skip")
    assert kept["id"].tolist() == ["x1"] and report.total == 1
    assert "x2" in report.to_frame()["examples"].iloc[0]


def test_required_modality_and_duplicate_ids(tmp_path):
    df = _manifest(tmp_path, audio_path=None)
    mf.validate_manifest(df)  # audio optional by default
    with pytest.raises(mf.ManifestError, match="item 'x2': no audio"):
        mf.validate_manifest(df, require=("audio",))
    dup = pd.concat([df, df.iloc[[0]]])
    with pytest.raises(mf.ManifestError, match="unique"):
        mf.validate_manifest(dup)
    with pytest.raises(mf.ManifestError, match="lacks column"):
        mf.validate_manifest(df.drop(columns=["image_path"]))


def test_select_items_keeps_sounds_first_and_is_deterministic():
    df = pd.DataFrame(
        {
            "id": [f"i{j:02d}" for j in range(20)],
            "caption": [f"c{j}" for j in range(20)],
            "image_path": ["x"] * 20,
            "audio_path": ["a" if j % 4 == 0 else None for j in range(20)],
        }
    )
    sel = mf.select_items(df, 8, seed=1)
    assert len(sel) == 8 and sel["audio_path"].notna().sum() == 5
    assert sel["id"].tolist() == sorted(sel["id"])
    assert sel.equals(mf.select_items(df, 8, seed=1))
    assert not sel.equals(mf.select_items(df, 8, seed=2))
    assert len(mf.select_items(df, None)) == 20
    assert len(mf.modality_subset(df, "audio")) == 5


def test_fetch_errors_say_how_to_fix(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="not a folder of Tux Paint stamps"):
        datasets.fetch_tuxpaint_stamps(tmp_path / "dest", stamps_dir=tmp_path / "nothing")
    monkeypatch.setattr(datasets.shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError, match="stamps_dir"):
        datasets.fetch_tuxpaint_stamps(tmp_path / "dest")
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        datasets.build_manifest("nope")


def test_prompts(stamps):
    df, _ = datasets.build_tuxpaint_manifest(stamps)
    table = build_prompts(df, DEFAULT_CUES)
    assert len(table) == 3 * len(df)
    owl = table[(table["cue"] == "HEAR") & (table["caption"] == "an owl")]["user_text"].item()
    assert owl == "Imagine what it would sound like to hear an owl."
    with pytest.raises(ValueError, match="exactly once"):
        check_template("X", "Imagine {thing}.")
    with pytest.raises(ValueError, match="exactly once"):
        check_template("X", "no slot")
    with pytest.raises(ValueError, match="empty caption"):
        build_prompts(df.assign(caption=[""] + list(df["caption"][1:])), DEFAULT_CUES)
