"""Tests for helpers.data.media (reading images/sounds) and helpers.encoders.embedded (embeddings, caching).

Offline: the models come from installed registry packages, the real clips from the
shared sample data (``helpers.core.paths.shared_data_root()``; tests that need it skip
when it is absent). Tests that run a real model over many clips are marked ``slow``.
"""

from __future__ import annotations

import hashlib
import shutil
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image, ImageDraw

from helpers.core.paths import shared_data_root
from helpers.data.media import load_audio, load_image
from helpers.encoders import embedded as E, spectrograms
from helpers.encoders.embedded import Encoder, embed_cached, encoder_names, load_encoder

# --------------------------------------------------------------------------- helpers


def shared(*parts: str) -> Path:
    """A path inside the shared sample data, or skip the test when it is not there."""
    p = shared_data_root().joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared sample data not found at {p} (set PERCEIVE_SHARED or check out ../shared/data)")
    return p


def audiocaps_clips(n: int | None = None) -> list[Path]:
    clips = sorted(shared("audiocaps_sample", "audio").glob("*.wav"))
    if len(clips) < 4:
        pytest.skip("need at least 4 AudioCaps sample clips")
    return clips[:n] if n else clips


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spec.argmax()])


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def crops(clips: list[Path], tmp: Path, seconds: float = 4.0) -> tuple[list[Path], list[Path]]:
    """Non-overlapping head and tail crops of each clip, written as WAVs."""
    heads, tails = [], []
    for c in clips:
        y, sr = sf.read(c, always_2d=True)
        n = int(seconds * sr)
        assert len(y) >= 2 * n, f"{c} too short for two {seconds}s crops"
        heads.append(tmp / f"{c.stem}.head.wav")
        tails.append(tmp / f"{c.stem}.tail.wav")
        sf.write(heads[-1], y[:n], sr)
        sf.write(tails[-1], y[-n:], sr)
    return heads, tails


# --------------------------------------------------------------------------- media: images


def test_load_image_composites_transparency_onto_white(tmp_path):
    rgba = np.zeros((10, 30, 4), dtype=np.uint8)
    rgba[:, :10] = (255, 0, 0, 0)  # fully transparent (but stores red)
    rgba[:, 10:20] = (0, 0, 255, 255)  # opaque blue
    rgba[:, 20:] = (0, 0, 0, 128)  # half-transparent black
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    im = load_image(p)
    assert im.mode == "RGB" and im.size == (30, 10)
    a = np.asarray(im).astype(int)
    assert (a[:, :10] == 255).all()
    assert (a[:, 10:20] == (0, 0, 255)).all()
    assert np.allclose(a[:, 20:], 127, atol=2)


def test_load_image_palette_transparency_and_greyscale(tmp_path):
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.putpixel((0, 0), 1)
    p = tmp_path / "pal.png"
    pal.save(p, transparency=0)  # index 0 (black) is transparent
    a = np.asarray(load_image(p))
    assert tuple(a[0, 0]) == (200, 10, 10) and tuple(a[3, 3]) == (255, 255, 255)
    g = tmp_path / "grey.jpg"
    Image.new("L", (8, 8), 100).save(g)
    assert load_image(g).mode == "RGB"


def test_load_image_missing_and_unreadable_name_the_path(tmp_path):
    missing = tmp_path / "nope" / "cat.png"
    with pytest.raises(FileNotFoundError, match="cat.png") as ei:
        load_image(missing)
    assert str(missing) in str(ei.value) and "check the path" in str(ei.value)
    bad = tmp_path / "broken.png"
    bad.write_text("this is not a PNG")
    with pytest.raises(ValueError) as ei:
        load_image(bad)
    assert str(bad) in str(ei.value)


# --------------------------------------------------------------------------- media: audio


def test_load_audio_stereo_is_mixed_to_mono(tmp_path):
    sr = 16000
    left = sine(440, sr, 1.0, amp=0.6)
    right = sine(1000, sr, 1.0, amp=0.2)
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), sr, subtype="FLOAT")
    y = load_audio(p, sr, None)
    assert y.ndim == 1 and y.dtype == np.float32 and len(y) == sr
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("src_sr", [22050, 8000, 48000])
def test_load_audio_resamples_any_rate(tmp_path, src_sr):
    p = tmp_path / f"tone_{src_sr}.wav"
    sf.write(p, sine(1000, src_sr, 2.0), src_sr)
    y = load_audio(p, 16000, None)
    assert y.dtype == np.float32
    assert abs(len(y) - 32000) <= 1
    assert abs(dominant_freq(y, 16000) - 1000) < 2.0
    assert 0.3 < np.abs(y).max() < 0.7  # amplitude preserved


def test_load_audio_crops_to_first_seconds(tmp_path):
    sr = 22050
    y = np.concatenate([sine(500, sr, 2.0), sine(3000, sr, 3.0)])  # 2 s of 500 Hz, then 3 s of 3 kHz
    p = tmp_path / "long.flac"
    sf.write(p, y, sr)
    head = load_audio(p, 16000, 1.5)
    assert len(head) == 24000  # exact: round(max_seconds * target_sr)
    assert abs(dominant_freq(head, 16000) - 500) < 2.0  # the head, not a random window
    full = load_audio(p, 16000, None)
    assert abs(len(full) - 80000) <= 1
    short = load_audio(p, 16000, 60.0)  # longer limit than the clip: untouched
    assert abs(len(short) - 80000) <= 1


def test_load_audio_errors_name_the_file(tmp_path):
    missing = tmp_path / "gone.wav"
    with pytest.raises(FileNotFoundError) as ei:
        load_audio(missing, 16000, None)
    assert str(missing) in str(ei.value)

    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError) as ei:
        load_audio(garbage, 16000, None)
    assert str(garbage) in str(ei.value)

    zero_bytes = tmp_path / "zero.ogg"
    zero_bytes.write_bytes(b"")
    with pytest.raises(ValueError, match="empty") as ei:
        load_audio(zero_bytes, 16000, None)
    assert str(zero_bytes) in str(ei.value)

    empty = tmp_path / "empty.wav"  # a valid WAV header with 0 frames
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    with pytest.raises(ValueError, match="no samples") as ei:
        load_audio(empty, 16000, None)
    assert str(empty) in str(ei.value)


def test_load_audio_reads_real_mp3():
    import pandas as pd

    root = shared("freesound_sss")
    meta = pd.read_csv(root / "captions.csv")
    row = meta.iloc[0]
    path = root / "audio" / row["file_name"]
    info = sf.info(path)
    y = load_audio(path, info.samplerate, None)
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    assert abs(len(y) / info.samplerate - float(row["duration_s"])) < 0.1
    assert np.abs(y).max() > 0.01
    # a long MP3, resampled and cropped
    long_row = meta.sort_values("duration_s").iloc[-1]
    head = load_audio(root / "audio" / long_row["file_name"], 16000, 5.0)
    assert len(head) == 80000


# --------------------------------------------------------------------------- registry


def test_registry_names_and_errors():
    assert encoder_names() == [
        "aisfx",
        "beats",
        "clip-vit-b32-vision",
        "dinov2-base",
        "efficientnet-lite2",
        "whisper-base",
    ]
    assert encoder_names("vision") == ["clip-vit-b32-vision", "dinov2-base", "efficientnet-lite2"]
    assert encoder_names("audio") == ["aisfx", "beats", "whisper-base"]
    with pytest.raises(ValueError, match="Unknown encoder 'dinov2'") as ei:
        load_encoder("dinov2")
    for name in encoder_names():
        assert name in str(ei.value)
    with pytest.raises(ValueError, match="modality"):
        encoder_names("smell")


def test_registry_is_extensible():
    @E.register_encoder("test-dummy", "vision", "for this test")
    class Dummy(Encoder):
        name, modality, dim = "test-dummy", "vision", 3
        fingerprint = {"encoder": "test-dummy"}

        def _embed_batch(self, paths):
            return np.ones((len(paths), 3))

    try:
        assert "test-dummy" in encoder_names("vision")
        enc = load_encoder("test-dummy", batch_size=2)
        assert enc.embed(["a", "b", "c"]).shape == (3, 3)
    finally:
        E.ENCODERS.pop("test-dummy")


@pytest.mark.parametrize("name", ["efficientnet-lite2", "aisfx", "whisper-base"])
def test_load_encoder_is_lazy_and_fingerprinted(name):
    enc = load_encoder(name)
    fp = enc.fingerprint
    assert enc._model is None  # building and fingerprinting load no weights
    assert fp["step_version"] == E.STEP_VERSION and fp["encoder"] == name
    sha = fp["weights_sha256"]
    hashes = list(sha.values()) if isinstance(sha, dict) else [sha]
    assert all(len(h) == 64 for h in hashes)
    assert enc.modality in ("vision", "audio") and enc.dim in (512, 1280)
    assert E.stable_hash(fp) == E.stable_hash(load_encoder(name).fingerprint)


def test_fingerprint_tracks_options():
    assert load_encoder("aisfx", max_seconds=10).fingerprint != load_encoder("aisfx").fingerprint
    assert load_encoder("aisfx", resampler="soxr_hq").fingerprint != load_encoder("aisfx").fingerprint
    assert load_encoder("whisper-base", max_seconds=10).fingerprint != load_encoder("whisper-base").fingerprint
    with pytest.raises(ValueError, match="30"):
        load_encoder("whisper-base", max_seconds=60)


# --------------------------------------------------------------------------- preprocessing pieces


def test_essentia_mel_filterbank_and_framing():
    fb = spectrograms.essentia_mel_filterbank(44100, 2048, 96, 0.0, 22050.0)
    assert fb.shape == (96, 1025)
    np.testing.assert_allclose(fb.sum(axis=1), 1.0, atol=1e-12)
    assert (fb >= 0).all()
    enc = load_encoder("aisfx")
    # Essentia FrameCutter(2048, 1024, startFromZero=False): frames start at 1024k - 1024 while < n
    for n, frames in [(1, 2), (1024, 2), (1025, 3), (4096, 5), (4097, 6), (44100, 45)]:
        assert enc.spectrogram(np.zeros(n)).shape == (frames, 96), n


def test_aisfx_blocks_match_the_package():
    aisfx_pp = pytest.importorskip("aisfx.preprocessing")
    enc = load_encoder("aisfx")
    rng = np.random.default_rng(0)
    for t in [51, 99, 100, 101, 149, 150, 151, 437]:
        spec = rng.random((t, 96)).astype(np.float32)
        ref = aisfx_pp.blocking(spec, 100, aisfx_pp.compute_hopSize(100, 0.5, spec), True)
        np.testing.assert_array_equal(enc.blocks(spec), ref)
    short = enc.blocks(rng.random((7, 96)).astype(np.float32))  # the package asserts here; we pad
    assert short.shape == (1, 100, 96) and (short[0, 7:] == 0).all()


def test_whisper_features_and_frame_count():
    y = sine(440, 16000, 2.0)
    mel = spectrograms.whisper_log_mel(y)
    assert mel.shape == (80, 3000) and mel.dtype == np.float32
    assert np.isclose(mel.max() - mel.min(), 2.0, atol=1e-5)  # floor at max - 8 (log10), /4
    assert np.allclose(mel[:, 300:], mel.min())  # padding is at the floor
    assert E.WhisperBaseEncoder.n_audio_frames(480000) == 1500
    assert E.WhisperBaseEncoder.n_audio_frames(160000) == 500
    assert E.WhisperBaseEncoder.n_audio_frames(1) == 1


def test_whisper_model_dir_is_assembled_once(tmp_path):
    d = E.whisper_model_dir(tmp_path)
    assert d.parent == tmp_path / "models" and d.name.startswith("whisper-base-ct2-")
    src = E.whisper_source_files()
    assert (d / "model.bin").stat().st_size == src["model.bin.part1"].stat().st_size + src[
        "model.bin.part2"
    ].stat().st_size
    assert {"config.json", "vocabulary.json", "SOURCES.json"} <= {p.name for p in d.iterdir()}
    mtime = (d / "model.bin").stat().st_mtime_ns
    assert E.whisper_model_dir(tmp_path) == d and (d / "model.bin").stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "models").iterdir()] == [d.name]  # no temp dirs left


# --------------------------------------------------------------------------- EfficientNet-Lite2


def _scene(seed: int, size: int = 320) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = (int(v) for v in rng.integers(0, size - 40, 2))
        w, h = (int(v) for v in rng.integers(30, 140, 2))
        shape = d.ellipse if rng.random() < 0.5 else d.rectangle
        shape([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def _shift_rescale(im: Image.Image, dx: int = 12, dy: int = 8, scale: float = 0.9) -> Image.Image:
    w, h = im.size
    small = im.resize((int(w * scale), int(h * scale)), Image.Resampling.BICUBIC)
    out = Image.new("RGB", (w, h), im.getpixel((0, 0)))
    out.paste(small, (dx + int(w * (1 - scale) / 2), dy + int(h * (1 - scale) / 2)))
    return out


def _crossword(size: int = 320) -> Image.Image:
    g = np.full((size, size), 255, np.uint8)
    rng = np.random.default_rng(0)
    cell = size // 10
    for i in range(10):
        for j in range(10):
            if rng.random() < 0.2:
                g[i * cell : (i + 1) * cell, j * cell : (j + 1) * cell] = 0
    for k in (0, 1):
        g[k::cell, :] = 0
        g[:, k::cell] = 0
    return Image.fromarray(g).convert("RGB")


@pytest.fixture(scope="module")
def effnet():
    return load_encoder("efficientnet-lite2", batch_size=4)


@pytest.mark.slow
def test_efficientnet_shape_determinism_and_similarity(effnet, tmp_path):
    paths = []
    for seed in range(3):
        a = _scene(seed)
        for tag, im in (("a", a), ("shifted", _shift_rescale(a)), ("other", _scene(100 + seed))):
            paths.append(tmp_path / f"{seed}_{tag}.png")
            im.save(paths[-1])
    emb = effnet.embed(paths)
    assert emb.shape == (9, 1280) and emb.dtype == np.float32 and np.isfinite(emb).all()
    np.testing.assert_allclose(effnet.embed(paths[:3]), emb[:3], rtol=1e-5, atol=1e-5)
    u = unit(emb).reshape(3, 3, 1280)
    for a, shifted, other in u:
        assert a @ shifted > a @ other + 0.05
        assert a @ shifted > 0.9


@pytest.mark.slow
def test_efficientnet_classifier_recognises_a_crossword(effnet, tmp_path):
    p = tmp_path / "crossword.jpg"
    _crossword().save(p, quality=95)
    logits = effnet.predict_logits([p])
    assert logits.shape == (1, 1000)
    assert int(logits[0].argmax()) == 918  # ImageNet class 918: "crossword puzzle"


# --------------------------------------------------------------------------- aiSFX


@pytest.fixture(scope="module")
def aisfx():
    return load_encoder("aisfx", max_seconds=10.0)


@pytest.mark.slow
def test_aisfx_shape_determinism_and_batching(aisfx, tmp_path):
    clips = audiocaps_clips(3)
    short = tmp_path / "short.wav"  # 0.3 s: shorter than one 2.3 s block
    sf.write(short, sine(800, 22050, 0.3), 22050)
    paths = [*clips, short]
    emb = aisfx.embed(paths)
    assert emb.shape == (4, 512) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert (np.linalg.norm(emb, axis=1) > 0).all()
    again = np.concatenate([aisfx.embed([p]) for p in paths])  # batch composition must not matter
    np.testing.assert_allclose(again, emb, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_aisfx_same_clip_crops_are_closer_than_other_clips(aisfx, tmp_path):
    heads, tails = crops(audiocaps_clips(), tmp_path)
    s = unit(aisfx.embed(heads)) @ unit(aisfx.embed(tails)).T
    n = len(heads)
    same, other = np.diag(s).mean(), (s.sum() - np.trace(s)) / (n * n - n)
    assert same > other + 0.03, (same, other)
    assert (s.argmax(axis=1) == np.arange(n)).mean() >= 0.6  # observed 0.85 on the 13 clips


@pytest.mark.slow
def test_aisfx_groups_freesound_clusters(aisfx):
    import pandas as pd

    root = shared("freesound_sss")
    meta = pd.read_csv(root / "captions.csv").groupby("cluster").head(3)
    labels = np.asarray(meta["cluster"].astype(str))
    s = unit(aisfx.embed([root / "audio" / f for f in meta["file_name"]]))
    sim = s @ s.T
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.05
    np.fill_diagonal(sim, -np.inf)
    nn_acc = (labels[sim.argmax(axis=1)] == labels).mean()
    assert nn_acc >= 0.5, nn_acc  # observed 0.8; chance is about 0.07


# --------------------------------------------------------------------------- Whisper-base


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return load_encoder("whisper-base", model_root=tmp_path_factory.mktemp("whisper-models"))


@pytest.mark.slow
def test_whisper_shape_and_determinism(whisper, tmp_path):
    clip = audiocaps_clips(1)[0]
    short = tmp_path / "short.wav"
    sf.write(short, sine(300, 44100, 1.0), 44100)
    emb = whisper.embed([clip, short])
    assert emb.shape == (2, 512) and emb.dtype == np.float32 and np.isfinite(emb).all()
    np.testing.assert_allclose(whisper.embed([clip]), emb[:1], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_whisper_same_clip_crops_are_closer_than_other_clips(whisper, tmp_path):
    heads, tails = crops(audiocaps_clips(8), tmp_path)
    s = unit(whisper.embed(heads)) @ unit(whisper.embed(tails)).T
    n = len(heads)
    same, other = np.diag(s).mean(), (s.sum() - np.trace(s)) / (n * n - n)
    assert same > other + 0.03, (same, other)
    ranks = [(s[i] > s[i, i]).sum() for i in range(n)]
    assert np.median(ranks) <= 1, ranks


# --------------------------------------------------------------------------- caching


class CountingEncoder(Encoder):
    """Cheap deterministic stand-in: the embedding is a function of the file's bytes."""

    name, modality, dim = "counting-test", "audio", 8
    fingerprint = {"encoder": "counting-test", "step_version": 1}

    def _embed_batch(self, paths):
        self.calls = getattr(self, "calls", 0) + 1
        return np.stack(
            [
                np.frombuffer(hashlib.sha256(Path(p).read_bytes()).digest()[:8], np.uint8).astype(np.float32)
                for p in paths
            ]
        )


def test_embed_cached_hits_renamed_and_misses_edited(tmp_path):
    files = []
    for i in range(3):
        files.append(tmp_path / f"f{i}.bin")
        files[-1].write_bytes(f"content {i}".encode())
    root = tmp_path / "cache"
    enc = CountingEncoder(batch_size=2)
    first = embed_cached(enc, [files[0], files[1], files[0], files[2]], batch_size=2, cache_root=root)
    assert first.shape == (4, 8) and first.dtype == np.float32
    assert enc.items_encoded == 3  # the duplicate is computed once
    np.testing.assert_array_equal(first[[0, 1, 3]], enc.embed([files[0], files[1], files[2]]))
    enc.items_encoded = 0

    renamed = tmp_path / "renamed.bin"
    shutil.copy(files[1], renamed)
    again = embed_cached(enc, [files[2], renamed, files[0]], cache_root=root)
    assert enc.items_encoded == 0  # no encoder work at all
    np.testing.assert_array_equal(again, first[[3, 1, 0]])

    files[2].write_bytes(b"edited content")
    edited = embed_cached(enc, [files[2]], cache_root=root)
    assert enc.items_encoded == 1
    assert not np.array_equal(edited[0], first[3])

    assert embed_cached(enc, [], cache_root=root).shape == (0, 8)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        embed_cached(enc, [files[0], tmp_path / "missing.bin"], cache_root=root)


@pytest.mark.slow
def test_embed_cached_with_a_real_encoder_loads_no_model_on_hits(tmp_path):
    paths = []
    for seed in range(3):
        paths.append(tmp_path / f"img{seed}.png")
        _scene(seed, size=200).save(paths[-1])
    root = tmp_path / "cache"
    enc = load_encoder("efficientnet-lite2")
    first = embed_cached(enc, paths, batch_size=2, cache_root=root)
    np.testing.assert_allclose(first, enc.embed(paths), rtol=1e-5, atol=1e-5)

    fresh = load_encoder("efficientnet-lite2")
    second = embed_cached(fresh, paths, cache_root=root)
    assert fresh._model is None and fresh.items_encoded == 0
    np.testing.assert_array_equal(second, first)

    # the same encoder with another option is another cache folder: a miss that computes again
    other = load_encoder("efficientnet-lite2")
    other.image_size = fresh.image_size + 32
    third = embed_cached(other, paths, cache_root=root)
    assert other.items_encoded == len(paths) and len(list((root / "embeddings" / "efficientnet-lite2").iterdir())) == 2
    assert not np.allclose(third, first)


def test_embed_manifest_yields_each_encoder_over_its_modality(tmp_path, tmp_cache):
    """Notebook 04's loop: images for a vision encoder, sounds for an audio one, a named skip for neither."""
    seen = {}

    def dummy(name, modality):
        @E.register_encoder(name, modality, "for this test")
        class Dummy(Encoder):
            dim = 2

            def __init__(self, batch_size: int = 16):
                super().__init__(batch_size)
                self.name, self.modality = name, modality

            @property
            def fingerprint(self):
                return {"encoder": self.name}

            def _embed_batch(self, paths):
                seen.setdefault(name, []).extend(p.name for p in map(Path, paths))
                return np.array([[len(p.name), 1.0] for p in map(Path, paths)])

    for f in ("a.png", "bb.png", "ccc.wav"):
        (tmp_path / f).write_bytes(f.encode())
    manifest = pd.DataFrame(
        {
            "id": ["a", "b"],
            "caption": ["x", "y"],
            "image_path": [str(tmp_path / "a.png"), str(tmp_path / "bb.png")],
            "audio_path": [None, str(tmp_path / "ccc.wav")],
        }
    )
    dummy("test-vis", "vision")
    dummy("test-aud", "audio")
    try:
        out = list(E.embed_manifest(manifest, ["test-vis", "test-aud"], batch_size=4))
        assert [(n, m, ids) for n, m, ids, _ in out] == [
            ("test-vis", "vision", ["a", "b"]),
            ("test-aud", "audio", ["b"]),
        ]
        np.testing.assert_array_equal(out[0][3], [[5, 1], [6, 1]])
        assert seen == {"test-vis": ["a.png", "bb.png"], "test-aud": ["ccc.wav"]}
        no_sound = manifest.assign(audio_path=None)
        assert [(n, ids, f) for n, _, ids, f in E.embed_manifest(no_sound, ["test-aud"])] == [("test-aud", [], None)]
    finally:
        E.ENCODERS.pop("test-vis")
        E.ENCODERS.pop("test-aud")
