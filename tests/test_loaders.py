"""Dataset loaders: AudioCaps and Clotho on the real shared samples, WiT / DCI / bring-your-own on
in-process fixtures in their real schemas, every error path by its message, and item sharding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from helpers.data import datasets, datasets as D, manifest as mf
from helpers.data.manifest import ManifestError

# --------------------------------------------------------------------------- AudioCaps (real sample)


@pytest.fixture(scope="module")
def audiocaps(shared_data):
    root = shared_data / "audiocaps_sample"
    return root / "captions.csv", root / "audio"


def test_audiocaps_sample_builds_one_item_per_clip(audiocaps):
    csv, clips = audiocaps
    df, report = datasets.build_manifest("audiocaps", dataset_csv=csv, dataset_dir=clips)
    src = pd.read_csv(csv, dtype=str)
    assert list(df.columns) == mf.MANIFEST_COLUMNS
    assert len(df) == len(src) == 13 and report.total == 0
    assert df["image_path"].isna().all() and df["audio_path"].map(lambda p: Path(p).is_file()).all()
    row = df.set_index("id").loc["audiocaps/fGGYeXR_LS8_30"]
    assert row["caption_raw"] == src.loc[src.youtube_id == "fGGYeXR_LS8", "caption"].item()
    assert row["audio_path"].endswith("fGGYeXR_LS8_30.wav")
    # the clip whose YouTube id starts with '-' is stored as '_…' in the sample: found all the same
    assert df.set_index("id").loc["audiocaps/-YS5uKWoB6g_30", "audio_path"].endswith("_YS5uKWoB6g_30.wav")
    valid, bad = mf.validate_manifest(df, require=datasets.DATASET_MODALITIES["audiocaps"])
    assert len(valid) == 13 and bad.total == 0


def test_audiocaps_official_columns_find_clips_by_name(audiocaps, tmp_path):
    """The official CSV has no file_name: clips are found as {youtube_id}_{start_time}.wav; a clip's
    further captions (val/test have five) are counted, the first is used."""
    csv, clips = audiocaps
    src = pd.read_csv(csv, dtype=str).drop(columns="file_name")
    src.insert(0, "audiocap_id", [str(1000 + i) for i in range(len(src))])
    extra = src.iloc[[0]].assign(audiocap_id="9999", caption="a second caption of the same clip")
    official = tmp_path / "test.csv"
    pd.concat([src, extra]).to_csv(official, index=False)
    df, report = D.build_audiocaps_manifest(official, clips)
    assert len(df) == 13
    assert report.counts["further caption of the same clip (first one used)"] == 1
    assert "a second caption" not in " ".join(df["caption"])


def test_audiocaps_errors_name_row_column_and_fix(audiocaps, tmp_path):
    csv, clips = audiocaps
    src = pd.read_csv(csv, dtype=str)
    bad = tmp_path / "nocap.csv"
    src.drop(columns="caption").to_csv(bad, index=False)
    with pytest.raises(
        ManifestError, match=r"lacks column\(s\) \['caption'\].*audiocap_id,youtube_id,start_time,caption"
    ):
        D.build_audiocaps_manifest(bad, clips)
    missing = tmp_path / "missing.csv"
    pd.concat([src, src.iloc[[0]].assign(youtube_id="NOTAVIDEO00", file_name="")]).to_csv(missing, index=False)
    with pytest.raises(ManifestError, match=r"row 15 of missing.csv \(youtube_id='NOTAVIDEO00'.*no clip in .*tried"):
        D.build_audiocaps_manifest(missing, clips)
    df, report = D.build_audiocaps_manifest(missing, clips, on_missing="skip")
    assert len(df) == 13 and report.counts["clip not found"] == 1
    with pytest.raises(FileNotFoundError, match="not a folder"):
        D.build_audiocaps_manifest(csv, tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="AudioCaps CSV not found"):
        D.build_audiocaps_manifest(tmp_path / "none.csv", clips)
    with pytest.raises(ValueError, match="needs `dataset_csv`"):
        datasets.build_manifest("audiocaps", dataset_dir=clips)


def test_unreadable_audio_is_named(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "abc_10.wav").write_bytes(b"RIFF not really a wave file")
    csv = tmp_path / "c.csv"
    pd.DataFrame(
        {"youtube_id": ["abc"], "start_time": ["10"], "caption": ["a dog barks"], "file_name": ["abc_10.wav"]}
    ).to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"row 2 of c.csv.*unreadable audio .*abc_10.wav"):
        D.build_audiocaps_manifest(csv, clips)


# --------------------------------------------------------------------------- Clotho (real sample)


def test_clotho_sample_and_caption_choice(shared_data):
    root = shared_data / "clotho_sample"
    csv, audio = root / "clotho_captions_evaluation.csv", root / "audio"
    src = pd.read_csv(csv, dtype=str)
    df1, rep = datasets.build_manifest("clotho", dataset_csv=csv, dataset_dir=audio)
    df3, _ = datasets.build_manifest("clotho", dataset_csv=csv, dataset_dir=audio, caption_column="caption_3")
    assert len(df1) == len(df3) == len(src) == 7 and rep.total == 0
    assert list(df1["caption_raw"]) == list(src["caption_1"]) and list(df3["caption_raw"]) == list(src["caption_3"])
    assert list(df1["id"]) == [f"clotho/{f}" for f in src["file_name"]]
    assert df1["audio_path"].map(lambda p: Path(p).is_file()).all()
    with pytest.raises(ValueError, match=r"caption_column must be one of \['caption_1'"):
        D.build_clotho_manifest(csv, audio, caption_column="caption")


def test_clotho_missing_file_and_column(shared_data, tmp_path):
    root = shared_data / "clotho_sample"
    src = pd.read_csv(root / "clotho_captions_evaluation.csv", dtype=str)
    csv = tmp_path / "clotho.csv"
    src.assign(file_name=["gone.wav"] + list(src["file_name"][1:])).to_csv(csv, index=False)
    with pytest.raises(
        ManifestError, match=r"row 2 of clotho.csv \(file_name='gone.wav'\).*does not exist; extract the Clotho audio"
    ):
        D.build_clotho_manifest(csv, root / "audio")
    df, rep = D.build_clotho_manifest(csv, root / "audio", on_missing="skip")
    assert len(df) == 6 and dict(rep.counts) == {"clip not found": 1}
    src.drop(columns="caption_2").to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"lacks column\(s\) \['caption_2'\]"):
        D.build_clotho_manifest(csv, root / "audio", caption_column="caption_2")


# --------------------------------------------------------------------------- WiT (fixture in PRH's schema)


def _wit_dataset(n: int = 5):
    """A tiny dataset in the schema of minhuh/prh@wit_1024: ``image`` (Image) + ``text`` (list of str)."""
    datasets = pytest.importorskip("datasets", reason="the WiT loader needs the `datasets` package (paper extra)")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)) for i in range(n)]
    texts = [[f"caption number {i}.", f"reference text {i}"] for i in range(n)]
    feats = datasets.Features({"image": datasets.Image(), "text": datasets.Sequence(datasets.Value("string"))})
    ds = datasets.Dataset.from_dict({"image": images, "text": texts}, features=feats)
    return ds


def test_wit_from_save_to_disk_and_parquet(tmp_path, monkeypatch):
    ds = _wit_dataset()
    ds.save_to_disk(str(tmp_path / "disk"))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "pq" / "data" / "train-00000.parquet"))
    for src in ("disk", "pq"):
        loaded = D.load_wit_dataset(tmp_path / src)
        df, rep = D.build_wit_manifest(loaded, tmp_path / f"images-{src}")
        assert list(df["id"]) == [f"wit/{i:04d}" for i in range(5)] and rep.total == 0
        assert list(df["caption"]) == [f"caption number {i}" for i in range(5)]  # first text, normalised
        first = Image.open(df["image_path"][0])
        assert first.size == (30, 20) and df["image_path"][0].endswith(".png")
    # the notebook's entry point: build_manifest("wit", dataset_dir=...) writes images under PERCEIVE_RAW
    monkeypatch.setenv("PERCEIVE_RAW", str(tmp_path / "raw"))
    via, _ = datasets.build_manifest("wit", dataset_dir=tmp_path / "pq")
    assert list(via["caption"]) == list(df["caption"])
    assert all(p.startswith(str((tmp_path / "raw" / "wit-wit_1024" / "images").resolve())) for p in via["image_path"])
    # rebuilding reuses the written images
    mtime = Path(df["image_path"][0]).stat().st_mtime_ns
    D.build_wit_manifest(D.load_wit_dataset(tmp_path / "pq"), tmp_path / "images-pq")
    assert Path(df["image_path"][0]).stat().st_mtime_ns == mtime


def test_wit_errors(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="the WiT loader needs the `datasets` package (paper extra)")
    records = [{"image": {"bytes": b"not an image", "path": None}, "text": ["a caption"]}, {"image": None, "text": []}]
    with pytest.raises(ManifestError, match=r"WiT row 0: image cannot be decoded"):
        D.build_wit_manifest(records, tmp_path / "im")
    with pytest.raises(ManifestError, match=r"no usable items in WiT"):
        D.build_wit_manifest(records, tmp_path / "im", on_missing="skip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"neither a `save_to_disk` dataset nor Parquet.*hf download minhuh/prh --repo-type dataset",
    ):
        D.load_wit_dataset(tmp_path / "empty")
    datasets.Dataset.from_dict({"img": [1], "caption": ["x"]}).save_to_disk(str(tmp_path / "wrong"))
    with pytest.raises(ManifestError, match=r"lacks column\(s\) \['image', 'text'\]"):
        D.load_wit_dataset(tmp_path / "wrong")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RuntimeError, match=r"could not load minhuh/prh .*pass dataset_dir=DIR"):
        D.load_wit_dataset(None)


# --------------------------------------------------------------------------- DCI (fixture in the release layout)


def _dci(root: Path, n: int = 3) -> Path:
    base = root / "densely_captioned_images"
    (base / "complete").mkdir(parents=True)
    (base / "photos").mkdir()
    for i in range(n):
        Image.new("RGB", (16, 12), (i * 40, 0, 0)).save(base / "photos" / f"sa_{i}.jpg")
        ann = {
            "image": f"sa_{i}.jpg",
            "short_caption": f"A red box {i}.",
            "extra_caption": f"It sits on a table {i}.",
            "mask_data": {},
            "mask_keys": [],
        }
        (base / "complete" / f"sa_{i}.json").write_text(json.dumps(ann))
    return base


def test_dci_release_folder_and_caption_fields(tmp_path):
    _dci(tmp_path)
    df, rep = datasets.build_manifest("dci", dataset_dir=tmp_path)
    assert list(df["id"]) == ["dci/sa_0", "dci/sa_1", "dci/sa_2"] and rep.total == 0
    assert df["caption"][0] == "a red box 0" and Image.open(df["image_path"][0]).size == (16, 12)
    ext, _ = D.build_dci_manifest(tmp_path / "densely_captioned_images", caption_column="extended")
    assert ext["caption_raw"][1] == "A red box 1. It sits on a table 1."
    with pytest.raises(ValueError, match="DCI caption_column must be one of"):
        D.build_dci_manifest(tmp_path, caption_column="summary")


def test_dci_errors(tmp_path):
    base = _dci(tmp_path)
    (base / "photos" / "sa_1.jpg").unlink()
    (base / "complete" / "sa_2.json").write_text(json.dumps({"image": "sa_2.jpg"}))
    with pytest.raises(
        ManifestError, match=r"DCI annotation sa_1.json: .*sa_1.jpg does not exist; extract the DCI photos"
    ):
        D.build_dci_manifest(tmp_path)
    df, rep = D.build_dci_manifest(tmp_path, on_missing="skip")
    assert list(df["id"]) == ["dci/sa_0"]
    assert dict(rep.counts) == {"image not found": 1, "annotation lacks fields": 1}
    with pytest.raises(
        FileNotFoundError, match=r"not a DCI release folder: expected densely_captioned_images/complete"
    ):
        D.build_dci_manifest(base / "photos")


# --------------------------------------------------------------------------- bring your own


def test_byo_relative_paths_and_mixed_modalities(tmp_path):
    (tmp_path / "media").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "media" / "a.png")
    sf.write(tmp_path / "media" / "b.wav", np.zeros((800, 2), np.float32), 44100)
    csv = tmp_path / "mine.csv"
    pd.DataFrame(
        {
            "id": ["x1", "x2", "x3"],
            "caption": ["A cat.", "rain on a roof", "a bell"],
            "image_path": ["media/a.png", "", str(tmp_path / "media" / "a.png")],
            "audio_path": ["", "media/b.wav", "media/b.wav"],
        }
    ).to_csv(csv, index=False)
    df, rep = datasets.build_manifest("byo", dataset_csv=csv)
    assert list(df["id"]) == ["x1", "x2", "x3"] and rep.total == 0
    assert df["image_path"][0] == str((tmp_path / "media" / "a.png").resolve()) and pd.isna(df["audio_path"][0])
    assert pd.isna(df["image_path"][1]) and df["audio_path"][1].endswith("b.wav")
    assert len(mf.modality_subset(df, "image")) == 2 and len(mf.modality_subset(df, "audio")) == 2


def test_byo_errors(tmp_path):
    csv = tmp_path / "mine.csv"
    pd.DataFrame({"caption": ["a"], "path": ["x.png"]}).to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"has neither `image_path` nor `audio_path`"):
        D.build_byo_manifest(csv)
    pd.DataFrame({"text": ["a"], "image_path": ["x.png"]}).to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"lacks column\(s\) \['caption'\]"):
        D.build_byo_manifest(csv)
    pd.DataFrame({"caption": ["a", "b"], "image_path": ["x.png", ""]}).to_csv(csv, index=False)
    with pytest.raises(
        ManifestError, match=r"row 2 of mine.csv \(id='byo/000000'\): `image_path` = 'x.png' -> .*x.png does not exist"
    ):
        D.build_byo_manifest(csv)
    df_skip = pd.DataFrame({"caption": ["a", "b"], "image_path": ["", ""]})
    df_skip.to_csv(csv, index=False)
    with pytest.raises(ManifestError, match=r"row 2 .*both \['image_path'\] are empty"):
        D.build_byo_manifest(csv)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="available: tuxpaint, audiocaps, clotho, wit, dci, byo"):
        datasets.build_manifest("coco")


# --------------------------------------------------------------------------- sharding


def _ids(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"item/{i}" for i in range(n)], "caption": ["c"] * n})


def test_shards_are_disjoint_cover_everything_and_ignore_order():
    m = _ids(200)
    shards = [mf.shard_items(m, s, 4) for s in range(4)]
    ids = [set(s["id"]) for s in shards]
    assert sum(len(s) for s in ids) == 200 and set().union(*ids) == set(m["id"])
    assert all(len(s) > 20 for s in ids)  # roughly balanced
    shuffled = m.sample(frac=1.0, random_state=1)
    assert set(mf.shard_items(shuffled, 2, 4)["id"]) == ids[2]
    # an item's shard does not depend on which other items are in the manifest
    assert set(mf.shard_items(m.iloc[:50], 2, 4)["id"]) == ids[2] & set(m["id"][:50])
    assert mf.shard_items(m, None, 1).equals(m)


@pytest.mark.parametrize("shard,n", [(4, 4), (-1, 4), (0, 0), (None, 3), (1.0, 4)])
def test_bad_shard_arguments(shard, n):
    with pytest.raises(ValueError, match="shard"):
        mf.shard_items(_ids(5), shard, n)
