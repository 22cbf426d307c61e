"""The paper's encoders on tiny random-weight models built in-process (no hub): DINOv2 and CLIP's
image tower through the same ``embed`` / ``embed_cached`` path as the default encoders, BEATs (the
project's own :mod:`helpers.encoders.beats`, on a tiny official-format checkpoint and the real Clotho and
AudioCaps sample clips), and shard runs merging into one cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

from helpers.core import runtime
from helpers.data import manifest as mf
from helpers.encoders import embedded as E, paper as P


@pytest.fixture(scope="module")
def tiny_vision(tmp_path_factory):
    """Folders with a tiny DINOv2 (two seeds) and a tiny CLIP vision tower + projection."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("tiny_vision")
    dino = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=8, image_size=32
    )
    for seed in (0, 1):
        torch.manual_seed(seed)
        Dinov2Model(Dinov2Config(**dino)).save_pretrained(root / f"dino{seed}")
    torch.manual_seed(2)
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=16,
        )
    ).save_pretrained(root / "clip")
    return {"dino": root / "dino0", "dino_other": root / "dino1", "clip": root / "clip"}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Eight small drawings of different shapes, colours and sizes (one RGBA, one greyscale)."""
    root = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(8):
        im = Image.new("RGB", (48 + 8 * i, 40 + 4 * (i % 3)), (255 - 30 * i, 20 * i, 128))
        d = ImageDraw.Draw(im)
        d.ellipse((5, 5, 20 + 3 * i, 30), fill=(0, 200 - 20 * i, 30 * i))
        d.rectangle((25, 10 + i, 40, 35), fill=(10 * i, 10, 250 - 25 * i))
        if i == 6:
            im = im.convert("RGBA")
        if i == 7:
            im = im.convert("L")
        p = root / f"im{i}.png"
        im.save(p)
        paths.append(p)
    return paths


def _dino(ckpt, **kw):
    return E.load_encoder("dinov2-base", checkpoint=str(ckpt), image_size=32, **kw)


def test_dinov2_shapes_pooling_layers_and_batch_independence(tiny_vision, images):
    cls = _dino(tiny_vision["dino"], pooling="cls")
    mean = _dino(tiny_vision["dino"], pooling="mean")
    f_cls, f_mean = cls.embed(images), mean.embed(images)
    assert f_cls.shape == f_mean.shape == (8, 32) and f_cls.dtype == np.float32 and np.isfinite(f_cls).all()
    assert not np.allclose(f_cls, f_mean, atol=1e-3)  # the two poolings are different features
    one_by_one = _dino(tiny_vision["dino"], pooling="cls", batch_size=1).embed(images)
    np.testing.assert_allclose(one_by_one, f_cls, atol=1e-5)
    # layer=-1 (final layer-normed output) differs from the raw last hidden state, which differs from layer 1
    last_raw = _dino(tiny_vision["dino"], pooling="cls", layer=2).embed(images[:2])
    first = _dino(tiny_vision["dino"], pooling="cls", layer=1).embed(images[:2])
    assert not np.allclose(last_raw, f_cls[:2], atol=1e-3) and not np.allclose(first, last_raw, atol=1e-3)
    # the CLS token equals Dinov2Model's own pooler_output on the same pixels
    from transformers import Dinov2Model

    model = Dinov2Model.from_pretrained(str(tiny_vision["dino"])).eval()
    with torch.no_grad():
        ref = model(pixel_values=cls._pixels(images[:3])).pooler_output.numpy()
    np.testing.assert_allclose(f_cls[:3], ref, atol=1e-5)


def test_clip_vision_poolings_and_projection(tiny_vision, images):
    proj = E.load_encoder("clip-vit-b32-vision", checkpoint=str(tiny_vision["clip"]))
    cls = E.load_encoder("clip-vit-b32-vision", checkpoint=str(tiny_vision["clip"]), pooling="cls")
    mean = E.load_encoder("clip-vit-b32-vision", checkpoint=str(tiny_vision["clip"]), pooling="mean")
    fp, fc, fm = proj.embed(images), cls.embed(images), mean.embed(images)
    assert (proj.dim, cls.dim, mean.dim) == (16, 32, 32)
    assert fp.shape == (8, 16) and fc.shape == fm.shape == (8, 32)
    # image_embeds = visual_projection(post-layernorm CLS)
    w = proj.model.visual_projection.weight.detach().numpy()
    np.testing.assert_allclose(fc @ w.T, fp, atol=1e-4)
    assert proj.image_size == 32
    with pytest.raises(ValueError, match="image_size must equal the model's 32"):
        E.load_encoder("clip-vit-b32-vision", checkpoint=str(tiny_vision["clip"]), image_size=224)


def test_options_are_validated_with_clear_errors(tiny_vision, tmp_path):
    with pytest.raises(ValueError, match=r"dinov2-base pooling must be one of \['cls', 'mean'\]"):
        _dino(tiny_vision["dino"], pooling="avg")
    with pytest.raises(ValueError, match="layer must be an int"):
        _dino(tiny_vision["dino"], layer="last")
    with pytest.raises(ValueError, match="dtype must be one of"):
        _dino(tiny_vision["dino"], dtype="int8")
    with pytest.raises(FileNotFoundError, match="is not a model folder"):
        _dino(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks config.json or model weights"):
        _dino(tmp_path / "empty")
    # offline (HF_HUB_OFFLINE=1 in conftest) and not in the local hub cache: say how to get it
    with pytest.raises(
        RuntimeError,
        match=r"could not get 'nobody/no-such-dinov2'.*encoder_options=\{'dinov2-base': \{'checkpoint': 'DIR'\}\}",
    ):
        _dino("nobody/no-such-dinov2")
    with pytest.raises(ValueError, match=r"encoder 'dinov2-base' has no option\(s\) \['poolin'\]; it accepts"):
        E.encoder_from_options("dinov2-base", {}, {"dinov2-base": {"poolin": "cls"}})


def test_encoder_from_options_passes_defaults_only_where_accepted(tiny_vision):
    enc = E.encoder_from_options(
        "dinov2-base",
        {"max_seconds": 5.0, "device": "cpu"},
        {"dinov2-base": {"checkpoint": str(tiny_vision["dino"]), "pooling": "mean", "image_size": 32}},
    )
    assert enc.pooling == "mean" and enc.device == "cpu"
    assert "max_seconds" not in E.accepted_options("dinov2-base") and "max_seconds" in E.accepted_options("beats")
    assert {"dinov2-base", "clip-vit-b32-vision"} <= set(E.encoder_names("vision"))
    assert "beats" in E.encoder_names("audio")


def test_fingerprints_track_weights_and_options(tiny_vision):
    a = _dino(tiny_vision["dino"]).fingerprint
    assert a == _dino(tiny_vision["dino"]).fingerprint
    assert a != _dino(tiny_vision["dino"], pooling="mean").fingerprint
    assert a != _dino(tiny_vision["dino_other"]).fingerprint
    assert (
        a["weights_sha256"]["model.safetensors"]
        != _dino(tiny_vision["dino_other"]).fingerprint["weights_sha256"]["model.safetensors"]
    )


def test_shard_runs_merge_into_one_cache(tiny_vision, images, tmp_cache):
    """Shard 0 and shard 1 embed their items into the shared cache; the full run then computes nothing."""
    manifest = pd.DataFrame(
        {
            "id": [f"img/{i}" for i in range(8)],
            "caption": ["c"] * 8,
            "image_path": [str(p) for p in images],
            "audio_path": [None] * 8,
        }
    )
    parts = [mf.shard_items(manifest, s, 2) for s in (0, 1)]
    assert len(parts[0]) + len(parts[1]) == 8 and not set(parts[0]["id"]) & set(parts[1]["id"])
    done = []
    for part in parts:
        enc = _dino(tiny_vision["dino"])
        E.embed_cached(enc, list(part["image_path"]), batch_size=3)
        done.append(enc.items_encoded)
    assert done == [len(parts[0]), len(parts[1])]
    full_enc = _dino(tiny_vision["dino"])
    full = E.embed_cached(full_enc, list(manifest["image_path"]), batch_size=3)
    assert full_enc.items_encoded == 0 and full_enc._model is None  # all hits: the model was never loaded
    np.testing.assert_allclose(full, _dino(tiny_vision["dino"]).embed(images), atol=1e-5)


# --------------------------------------------------------------------------- BEATs


def test_beats_options_and_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match=r"beats needs encoder_options=\{'beats': \{'checkpoint': PATH\}\}"):
        E.load_encoder("beats")
    with pytest.raises(
        FileNotFoundError,
        match=r"beats checkpoint .*nope.pt' does not exist; download one of \(iter3: BEATs_iter3.pt, iter3\+AS2M: BEATs_iter3_plus_AS2M.pt\)",
    ):
        E.load_encoder("beats", checkpoint=str(tmp_path / "nope.pt"))
    ck = tmp_path / "x.pt"
    ck.write_bytes(b"x")
    with pytest.raises(ValueError, match="beats layer must be an int"):
        E.load_encoder("beats", checkpoint=str(ck), layer=None)
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        E.load_encoder("beats", checkpoint=str(ck), max_seconds=0)
    enc = E.load_encoder("beats", checkpoint=str(ck), max_seconds=4.0, layer=3)
    fp = enc.fingerprint
    assert fp["layer"] == 3 and fp["audio"]["sr"] == 16000 and fp["audio"]["max_seconds"] == 4.0
    assert fp != E.load_encoder("beats", checkpoint=str(ck), max_seconds=5.0, layer=3).fingerprint


def test_beats_waveform_is_16k_mono_cropped_and_padded(shared_data, tmp_path):
    import soundfile as sf

    clip = shared_data / "audiocaps_sample" / "audio" / "fGGYeXR_LS8_30.wav"  # 22.05 kHz stereo, 10 s
    info = sf.info(str(clip))
    assert info.samplerate == 22050 and info.channels == 2
    y = P.beats_waveform(clip, max_seconds=4.0)
    assert y.ndim == 1 and y.dtype == np.float32 and y.shape == (64000,)
    full = P.beats_waveform(clip, max_seconds=None)
    assert abs(full.shape[0] - 160000) <= 2
    np.testing.assert_allclose(full[:60000], y[:60000], atol=1e-4)  # cropping keeps the head
    short = tmp_path / "click.wav"
    sf.write(short, np.ones(441, np.float32) * 0.1, 44100)
    s = P.beats_waveform(short, 10.0)
    assert s.shape == (P.BEATS_MIN_SAMPLES,) and np.all(s[200:] == 0)


@pytest.fixture(scope="module")
def beats_ckpt(tmp_path_factory):
    from tiny_beats import save_tiny_beats

    return save_tiny_beats(tmp_path_factory.mktemp("beats") / "tiny_beats.pt")


def test_beats_fingerprint_names_the_new_implementation(beats_ckpt):
    fp = E.load_encoder("beats", checkpoint=str(beats_ckpt)).fingerprint
    assert (
        fp["implementation"] == P.BEATS_IMPLEMENTATION and "helpers.beats v1" in fp["implementation"]
    )  # the cache key's name, kept
    # features made by the SpeechBrain implementation (fingerprinted under this string) never hit
    assert fp["implementation"] != "speechbrain.lobes.models.beats.BEATs, fbank_mean 15.41663, fbank_std 6.55582"
    assert "speechbrain" not in str(fp).lower()
    assert fp["fbank"]["num_bins"] == 128 and fp["fbank"]["dither"] == 0.0
    assert fp["fbank"]["kaldi_native_fbank"] != "not installed"  # the library version is part of the identity


def test_beats_tiny_model_features(beats_ckpt, shared_data, tmp_cache):
    clips = sorted((shared_data / "audiocaps_sample" / "audio").glob("*.wav"))[:3]  # one is 9.27 s, the others 10 s
    enc = E.load_encoder("beats", checkpoint=str(beats_ckpt), max_seconds=10.0)
    f = enc.embed(clips)
    assert enc.dim == 32 and f.shape == (3, 32) and np.isfinite(f).all()
    # the 9.27 s clip is padded in the batch; alone it is not: same feature
    np.testing.assert_allclose(
        E.load_encoder("beats", checkpoint=str(beats_ckpt), batch_size=1).embed(clips), f, atol=1e-5
    )
    last = E.load_encoder("beats", checkpoint=str(beats_ckpt), layer=2).embed(clips)
    np.testing.assert_allclose(last, f, atol=1e-5)  # layer 2 of 2 = the final output
    assert not np.allclose(E.load_encoder("beats", checkpoint=str(beats_ckpt), layer=0).embed(clips), f, atol=1e-3)
    assert not np.allclose(f[0], f[1], atol=1e-3)
    cached_enc = E.load_encoder("beats", checkpoint=str(beats_ckpt))
    E.embed_cached(cached_enc, clips)
    again = E.load_encoder("beats", checkpoint=str(beats_ckpt))
    np.testing.assert_allclose(E.embed_cached(again, clips), f, atol=1e-6)
    assert again.items_encoded == 0


def test_beats_clotho_clips_of_different_lengths(beats_ckpt, shared_data):
    """Seven real Clotho clips (15.7 to 29.5 s, 44.1 kHz) in one padded batch, whole (max_seconds=None)."""
    from helpers.encoders.beats import beats_fbank, load_beats

    clips = sorted((shared_data / "clotho_sample" / "audio").glob("*.wav"))
    assert len(clips) == 7
    enc = E.load_encoder("beats", checkpoint=str(beats_ckpt), max_seconds=None, batch_size=7)
    f = enc.embed(clips)
    assert f.shape == (7, 32) and np.isfinite(f).all()
    np.testing.assert_allclose(
        E.load_encoder("beats", checkpoint=str(beats_ckpt), max_seconds=None, batch_size=1).embed(clips), f, atol=1e-5
    )
    # the encoder is: 16 kHz mono waveform -> normalised fbank -> BEATs -> mean over output patches
    model = load_beats(beats_ckpt)
    wave = P.beats_waveform(clips[0], None)
    fb = torch.from_numpy(beats_fbank(wave))[None]
    assert abs(fb.shape[1] - (1 + (wave.shape[0] - 400) // 160)) == 0
    with torch.no_grad():
        by_hand = model.extract_features(fb).last_hidden_state.mean(dim=1)[0].numpy()
    np.testing.assert_allclose(f[0], by_hand, atol=1e-5)
    # cropping to the first 10 s changes the feature (the rest of the clip no longer counts)
    cropped = E.load_encoder("beats", checkpoint=str(beats_ckpt), max_seconds=10.0).embed(clips[:2])
    assert not np.allclose(cropped, f[:2], atol=1e-4)


def test_beats_device_auto_and_checkpoint_errors(beats_ckpt, shared_data, tmp_path, monkeypatch):
    clip = sorted((shared_data / "audiocaps_sample" / "audio").glob("*.wav"))[0]
    enc = E.load_encoder("beats", checkpoint=str(beats_ckpt), device="auto")
    assert next(enc.model.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == "cuda" and runtime.resolve_device("cuda:1") == "cuda:1"
    monkeypatch.undo()
    with pytest.raises(ValueError, match="beats layer 3 out of range for a 2-layer checkpoint"):
        E.load_encoder("beats", checkpoint=str(beats_ckpt), layer=3).embed([clip])
    bad = tmp_path / "BEATs_iter3.pt"
    bad.write_bytes(b"<html>a login page, not a checkpoint</html>")
    with pytest.raises(
        ValueError,
        match=r"BEATs checkpoint '.*BEATs_iter3\.pt' could not be read .*download it again and pass its path",
    ):
        E.load_encoder("beats", checkpoint=str(bad)).embed([clip])
