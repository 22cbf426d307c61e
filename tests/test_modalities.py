"""Image-only and audio-only runs: the cells of the absent medium are skipped with one line each.

Unit tests of the skip helpers (helpers.data.manifest) and of the bring-your-own CSV written from a
manifest (helpers.data.datasets.write_byo_csv); the slow test runs notebooks 01-09 on a small image-only
bring-your-own run made from real Tux Paint stamps.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from helpers.data import datasets, manifest as mf


def _media(tmp_path, n_images: int, n_sounds: int) -> pd.DataFrame:
    """A manifest of ``n_images`` items with an image and, of them, the first ``n_sounds`` with a sound."""
    rows = []
    for i in range(max(n_images, n_sounds)):
        img = wav = None
        if i < n_images:
            img = tmp_path / f"i{i}.png"
            Image.new("RGB", (4, 4), (i * 20, 0, 0)).save(img)
        if i < n_sounds:
            wav = tmp_path / f"s{i}.wav"
            sf.write(wav, np.sin(np.arange(800) / (i + 2.0)).astype(np.float32), 8000)
        rows.append(
            {
                "id": f"it{i}",
                "caption": f"a thing {i}",
                "caption_raw": f"A thing {i}.",
                "category": "c",
                "source": "test",
                "image_path": img and str(img),
                "audio_path": wav and str(wav),
            }
        )
    return pd.DataFrame(rows, columns=mf.MANIFEST_COLUMNS)


def test_missing_media_and_the_skip_lines(tmp_path):
    both, images, sounds = _media(tmp_path, 3, 1), _media(tmp_path, 3, 0), _media(tmp_path, 0, 2)
    assert (
        mf.missing_media(both) == [] and mf.missing_media(images) == ["audio"] and mf.missing_media(sounds) == ["image"]
    )
    assert mf.skipped_medium(both, "audio", "the audio players") is None
    assert (
        mf.skipped_medium(images, "audio", "the audio players")
        == "no sounds in this run: the audio players are skipped"
    )
    assert (
        mf.skipped_medium(sounds, "image", "the gallery", plural=False)
        == "no images in this run: the gallery is skipped"
    )
    with pytest.raises(ValueError, match="medium must be one of"):
        mf.skip_line("video", "the clips")


def test_media_encoders_leave_out_the_absent_mediums_encoders_in_one_line(tmp_path):
    vision, audio = ["effnet"], ["aisfx", "whisper-base"]
    assert mf.media_encoders(_media(tmp_path, 3, 1), vision, audio) == (["effnet", "aisfx", "whisper-base"], [])
    names, notes = mf.media_encoders(_media(tmp_path, 3, 0), vision, audio)
    assert names == ["effnet"] and notes == [
        "no sounds in this run: the audio encoders (aisfx, whisper-base) are skipped"
    ]
    names, notes = mf.media_encoders(_media(tmp_path, 0, 2), vision, audio)
    assert names == ["aisfx", "whisper-base"] and notes == [
        "no images in this run: the vision encoders (effnet) are skipped"
    ]
    assert mf.media_encoders(_media(tmp_path, 3, 0), vision, []) == (["effnet"], [])  # nothing asked, nothing to say


def test_byo_csv_of_one_medium_round_trips_through_the_byo_loader(tmp_path):
    full = _media(tmp_path, 3, 2)
    path = datasets.write_byo_csv(full, tmp_path / "csv" / "images.csv", media=("image",))
    built, report = datasets.build_byo_manifest(path)
    assert report.total == 0 and built["id"].tolist() == ["it0", "it1", "it2"]
    assert built["audio_path"].isna().all() and built["image_path"].tolist() == full["image_path"].tolist()
    assert built["caption"].tolist() == full["caption"].tolist()  # "A thing 0." normalises to the same caption
    sounds, _ = datasets.build_byo_manifest(datasets.write_byo_csv(full, tmp_path / "sounds.csv", media=("audio",)))
    assert sounds["id"].tolist() == ["it0", "it1"] and sounds["image_path"].isna().all()
    with pytest.raises(mf.ManifestError, match="no item of this manifest has audio"):
        datasets.write_byo_csv(_media(tmp_path, 2, 0), tmp_path / "none.csv", media=("audio",))
    with pytest.raises(ValueError, match="media must be"):
        datasets.write_byo_csv(full, tmp_path / "x.csv", media=("video",))


# ---------------------------------------------------------------------------- the chain on an image-only run


def _outputs(path) -> list[tuple[int, dict]]:
    nb = json.loads(path.read_text())
    return [(i, o) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _stdout(path) -> str:
    return "".join("".join(o.get("text", "")) for _, o in _outputs(path) if o.get("name") == "stdout")


@pytest.mark.slow
def test_image_only_chain_skips_the_audio_cells_with_one_line(tmp_path):
    from helpers.run import runner

    stamps, _ = datasets.build_manifest("tuxpaint")
    chosen = mf.select_items(stamps, 12, seed=0)
    csv = datasets.write_byo_csv(chosen, tmp_path / "images.csv", media=("image",))
    params = runner.load_profile(
        "tiny",
        {
            "dataset": "byo",
            "dataset_csv": str(csv),
            "run_name": "images",
            "n_items": 12,
            "size_llms": ["smollm2-135m-instruct"],
        },
    )
    notebooks = runner.select(runner.numbered_notebooks(), ["01", "02", "03", "04", "05", "06", "07", "08", "09"])
    executed = {
        p.name[:2]: p for p in runner.run_notebooks(params, notebooks, outputs=tmp_path / "out", log_output=False)
    }
    assert "no sounds in this run: the audio players are skipped" in _stdout(executed["01"])
    assert "no sounds in this run: the audio encoders (aisfx, whisper-base) are skipped" in _stdout(executed["04"])
    for name, path in executed.items():
        for i, out in _outputs(path):
            assert out.get("output_type") != "error", f"{name} cell {i}: {out.get('ename')}"
            shown = "".join(out.get("data", {}).get("text/plain", ""))
            assert not shown.startswith("Empty DataFrame"), f"{name} cell {i} shows an empty table"
    results = tmp_path / "out" / "results" / "images"
    table = pd.read_csv(results / "alignment.csv")
    assert set(table["modality"]) == {"vision"} and (table["n_items"] == 12).all()
    assert not (tmp_path / "out" / "figures" / "images" / "05_alignment_scatter.png").exists()
    lengths = pd.read_csv(results / "generation_lengths.csv")
    assert lengths["cue"].tolist() == ["SEE", "HEAR", "NONE"] and lengths["n_items"].eq(12).all()


def test_encoders_left_out_says_why_in_one_line(tmp_path):
    vision, audio = ["effnet"], ["aisfx", "whisper-base"]
    line = mf.encoders_left_out(_media(tmp_path, 3, 0), vision, audio, ["aisfx", "whisper-base"])
    assert (
        line
        == "no sounds in this run: the audio encoders (aisfx, whisper-base) and their tables and figures are skipped"
    )
    # sounds exist: 04 simply ran for fewer encoders, so the encoder is named as left out
    assert mf.encoders_left_out(_media(tmp_path, 3, 1), vision, audio, ["whisper-base"]) == (
        "no features for ['whisper-base'] in this run (04 made none): left out"
    )
    assert mf.encoders_left_out(None, vision, audio, ["aisfx", "whisper-base"]).startswith("no features for ['aisfx'")
    assert "\n" not in mf.encoders_left_out(_media(tmp_path, 0, 2), vision, audio, ["effnet"])


def test_analysis_notebooks_print_the_skip_line_for_an_image_only_run(tmp_path, capsys):
    from helpers.data.artifacts import RunPaths, run_encoder_features, save_arrays, save_table

    run = RunPaths.of("images", tmp_path / "out")
    save_table(_media(tmp_path, 3, 0), run.manifest)
    save_arrays(run.features("effnet"), ["it0", "it1", "it2"], {"features": np.eye(3)})
    feats = run_encoder_features(run, ["effnet"], ["aisfx", "whisper-base"])
    assert list(feats) == ["effnet"]
    assert capsys.readouterr().out == (
        "no sounds in this run: the audio encoders (aisfx, whisper-base) and their tables and figures are skipped\n"
    )
