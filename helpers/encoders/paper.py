"""The paper's encoders: DINOv2 (vision), CLIP's image tower (vision), BEATs (audio).

They register themselves in :data:`helpers.encoders.embedded.ENCODERS` (this module is imported
by :mod:`helpers.encoders.embedded`) and run through the same ``embed`` / ``embed_cached`` path
as the embedded default's encoders. Their weights come from the Hugging Face hub or a
local folder/file (the ``checkpoint`` option), so they belong to the ``paper`` profile;
building them checks the options and finds the weights, and the model itself loads on
first use.

=================== ======== ===================================================================
name                modality what
=================== ======== ===================================================================
dinov2-base         vision   ``transformers.Dinov2Model`` (``facebook/dinov2-base``, 768-d);
                             ``pooling`` "cls" (final layer-normed CLS token, default) or "mean"
                             (mean over patch tokens); ``layer`` -1 = final output, else that
                             hidden state
clip-vit-b32-vision vision   ``transformers.CLIPVisionModelWithProjection``
                             (``openai/clip-vit-base-patch32``); ``pooling`` "proj" (default:
                             the 512-d ``image_embeds`` CLIP matches against text), "cls"
                             (post-layernorm CLS, 768-d) or "mean" (patch tokens)
beats               audio    BEATs through :mod:`helpers.encoders.beats` (plain torch); a
                             local checkpoint (``BEATs_iter3.pt`` or ``BEATs_iter3_plus_AS2M.pt``),
                             16 kHz mono, first ``max_seconds`` s, mean over all output frames of
                             layer ``layer`` (-1 = last)
=================== ======== ===================================================================

**Image preprocessing** is done here, explicitly, with the settings of the checkpoints'
own ``preprocessor_config.json`` (so the cache fingerprint records them and no processor
files are needed): shorter side resized (bicubic) to ``resize``, centre crop
``image_size``, scale to [0, 1], normalise with the model's mean/std. DINOv2-base:
256 → 224, ImageNet mean/std. CLIP: 224 → 224, CLIP's mean/std; CLIP's input size must
equal its config's ``image_size``.

**Weight identity** in fingerprints: SHA-256 of the config and weight files of the
resolved checkpoint folder (hub ids are resolved to the local hub cache first), or of the
BEATs checkpoint file. A different checkpoint therefore never reuses cached features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from helpers.core.cache import file_fingerprint
from helpers.core.runtime import resolve_device, resolve_dtype
from helpers.data.media import AUDIO_RESAMPLER, load_audio, load_image
from helpers.encoders.base import STEP_VERSION, Encoder, quiet_init, register_encoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")
PAPER_EXTRA = "pip install -e '.[paper]'"


# --------------------------------------------------------------------------- shared pieces


def resolve_checkpoint(checkpoint: str | Path, encoder: str) -> Path:
    """A local folder holding ``config.json`` + weights for ``checkpoint`` (a folder or a hub id).

    Hub ids go through ``huggingface_hub.snapshot_download`` (which uses only the local
    cache when ``HF_HUB_OFFLINE=1``); failing that, the error says how to get the weights.
    """
    p = Path(str(checkpoint)).expanduser()
    if p.is_dir():
        folder = p
    elif p.exists() or str(checkpoint).startswith(("/", ".", "~")) or str(checkpoint).count("/") != 1:
        raise FileNotFoundError(
            f"{encoder}: checkpoint {str(checkpoint)!r} is not a model folder (expected config.json + model.safetensors) "
            "nor a Hugging Face hub id like 'facebook/dinov2-base'"
        )
    else:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(checkpoint), allow_patterns=["*.json", "*.safetensors"]))
        except Exception as exc:
            raise RuntimeError(
                f"{encoder}: could not get {checkpoint!r} from the Hugging Face hub or its local cache "
                f"({type(exc).__name__}: {str(exc)[:200]}). Download it where there is network "
                f"(`hf download {checkpoint} --local-dir DIR`) and pass "
                f"encoder_options={{'{encoder}': {{'checkpoint': 'DIR'}}}} (or unset HF_HUB_OFFLINE)."
            ) from exc
    if not (folder / "config.json").is_file() or not any((folder / w).is_file() for w in _WEIGHT_FILES[1:]):
        raise FileNotFoundError(
            f"{encoder}: {folder} lacks config.json or model weights (model.safetensors / pytorch_model.bin)"
        )
    return folder


def checkpoint_fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of the files that define a Hugging Face model folder's outputs."""
    return {w: file_fingerprint(folder / w) for w in _WEIGHT_FILES if (folder / w).is_file()}


def _choice(value: Any, allowed: tuple, what: str) -> Any:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {list(allowed)}, got {value!r}")
    return value


def preprocess_image(image, resize: int, crop: int, mean: tuple, std: tuple) -> np.ndarray:
    """PIL RGB → float32 CHW: shorter side to ``resize`` (bicubic), centre crop ``crop``, normalise."""
    from PIL import Image

    w, h = image.size
    scale = resize / min(w, h)
    nw, nh = max(crop, round(w * scale)), max(crop, round(h * scale))
    im = image.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - crop) // 2, (nh - crop) // 2
    im = im.crop((left, top, left + crop, top + crop))
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class _HFVisionEncoder(Encoder):
    """A transformers vision tower loaded from a checkpoint folder, pooled to one vector per image."""

    modality = "vision"
    default_checkpoint = ""
    poolings: tuple[str, ...] = ()
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        pooling: str | None = None,
        layer: int = -1,
        device: str = "cpu",
        dtype: str = "float32",
        image_size: int | None = None,
        resize: int | None = None,
        batch_size: int = 16,
    ):
        super().__init__(batch_size)
        self.pooling = _choice(pooling or self.poolings[0], self.poolings, f"{self.name} pooling")
        if not isinstance(layer, int):
            raise ValueError(f"{self.name} layer must be an int (-1 = final output), got {layer!r}")
        self.layer = layer
        self.device = device
        self.dtype = _choice(dtype, ("float32", "bfloat16", "float16"), f"{self.name} dtype")
        self.checkpoint = str(checkpoint or self.default_checkpoint)
        self.folder = resolve_checkpoint(self.checkpoint, self.name)
        import json

        self.config = json.loads((self.folder / "config.json").read_text())
        self.image_size, self.resize = self._sizes(image_size, resize)
        self.dim = self._dim()
        self._model = None

    def _sizes(self, image_size: int | None, resize: int | None) -> tuple[int, int]:
        raise NotImplementedError

    def _dim(self) -> int:
        raise NotImplementedError

    def _build(self):
        raise NotImplementedError

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "step_version": STEP_VERSION,
            "weights_sha256": checkpoint_fingerprint(self.folder),
            "checkpoint": self.checkpoint if not Path(self.checkpoint).exists() else "local folder",
            "pooling": self.pooling,
            "layer": self.layer,
            "dtype": self.dtype,
            "image_loading": "RGB, EXIF-transposed, alpha composited onto white",
            "resize": {
                "shorter_side": self.resize,
                "crop": self.image_size,
                "interp": "PIL bicubic",
                "crop_at": "center",
            },
            "normalize": {"mean": list(self.mean), "std": list(self.std)},
        }

    @property
    def model(self):
        if self._model is None:
            with quiet_init():
                m = self._build()
            self._model = m.to(device=resolve_device(self.device), dtype=resolve_dtype(self.dtype)).eval()
        return self._model

    def _pixels(self, paths: list[Path]):
        import torch

        x = np.stack(
            [preprocess_image(load_image(p), self.resize, self.image_size, self.mean, self.std) for p in paths]
        )
        return torch.from_numpy(x).to(device=next(self.model.parameters()).device, dtype=resolve_dtype(self.dtype))

    def _pool_tokens(self, tokens, n_prefix: int):
        """CLS (index 0) or mean over patch tokens (after ``n_prefix`` CLS/register tokens)."""
        if self.pooling == "cls":
            return tokens[:, 0]
        return tokens[:, n_prefix:].mean(dim=1)


# --------------------------------------------------------------------------- DINOv2


@register_encoder(
    "dinov2-base", "vision", "DINOv2 ViT-B/14 (transformers Dinov2Model), CLS or mean-pooled patch tokens"
)
class Dinov2Encoder(_HFVisionEncoder):
    """DINOv2 through ``transformers.Dinov2Model``; options: ``checkpoint`` (hub id or folder),
    ``pooling`` ("cls" | "mean"), ``layer`` (-1 = final layer-normed output; ``k`` = hidden state
    ``k``, 0 = embeddings), ``device``, ``dtype``, ``image_size``/``resize`` (224/256)."""

    name = "dinov2-base"
    default_checkpoint = "facebook/dinov2-base"
    poolings = ("cls", "mean")

    def _sizes(self, image_size, resize):
        crop = int(image_size or 224)
        return crop, int(resize or round(crop * 256 / 224))

    def _dim(self) -> int:
        return int(self.config["hidden_size"])

    def _build(self):
        from transformers import Dinov2Model

        return Dinov2Model.from_pretrained(str(self.folder), dtype=resolve_dtype(self.dtype))

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        import torch

        x = self._pixels(paths)
        with torch.inference_mode():
            out = self.model(pixel_values=x, output_hidden_states=self.layer != -1)
            tokens = out.last_hidden_state if self.layer == -1 else out.hidden_states[self.layer]
            n_prefix = 1 + int(self.config.get("num_register_tokens", 0) or 0)
            return self._pool_tokens(tokens, n_prefix).float().cpu().numpy()


# --------------------------------------------------------------------------- CLIP image tower


@register_encoder(
    "clip-vit-b32-vision", "vision", "CLIP ViT-B/32 image tower: projected image embedding (or CLS / mean)"
)
class ClipVisionEncoder(_HFVisionEncoder):
    """CLIP's image tower through ``transformers.CLIPVisionModelWithProjection``.

    ``pooling="proj"`` (default) is ``image_embeds``: the post-layernorm CLS token through
    the visual projection, the vector CLIP compares with text; "cls" is that CLS token
    before the projection (``pooler_output``); "mean" averages the last layer's patch tokens.
    ``layer`` applies to "cls"/"mean" only (-1 = final output).
    """

    name = "clip-vit-b32-vision"
    default_checkpoint = "openai/clip-vit-base-patch32"
    poolings = ("proj", "cls", "mean")
    mean = CLIP_MEAN
    std = CLIP_STD

    def _vision_config(self) -> dict:
        return self.config.get("vision_config", self.config)

    def _sizes(self, image_size, resize):
        native = int(self._vision_config().get("image_size", 224))
        if image_size is not None and int(image_size) != native:
            raise ValueError(
                f"{self.name}: image_size must equal the model's {native} (CLIP has fixed position embeddings)"
            )
        return native, int(resize or native)

    def _dim(self) -> int:
        cfg = self._vision_config()
        if self.pooling == "proj":
            return int(self.config.get("projection_dim", cfg.get("projection_dim", 512)))
        return int(cfg["hidden_size"])

    def _build(self):
        from transformers import CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection.from_pretrained(str(self.folder), dtype=resolve_dtype(self.dtype))

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        import torch

        x = self._pixels(paths)
        with torch.inference_mode():
            out = self.model(pixel_values=x, output_hidden_states=self.layer != -1)
            if self.pooling == "proj":
                v = out.image_embeds
            elif self.layer == -1 and self.pooling == "cls":
                v = self.model.vision_model.post_layernorm(out.last_hidden_state[:, 0])
            else:
                tokens = out.last_hidden_state if self.layer == -1 else out.hidden_states[self.layer]
                v = self._pool_tokens(tokens, 1)
            return v.float().cpu().numpy()


# --------------------------------------------------------------------------- BEATs

BEATS_CHECKPOINTS = {
    "iter3": "BEATs_iter3.pt",
    "iter3+AS2M": "BEATs_iter3_plus_AS2M.pt",
}
BEATS_SAMPLE_RATE = 16000
#: shortest input BEATs turns into one 16x16 patch row: 16 fbank frames of 25 ms every 10 ms
BEATS_MIN_SAMPLES = 400 + 15 * 160
#: what computes the features; part of the cache fingerprint, so features of another
#: implementation (e.g. the SpeechBrain one used before) never count as cache hits
BEATS_IMPLEMENTATION = (
    "helpers.beats v1: plain-torch BEATs (official module layout), kaldi-native-fbank fbank, "
    "per-patch padding mask, fbank_mean 15.41663, fbank_std 6.55582"
)


def beats_waveform(path: str | Path, max_seconds: float | None) -> np.ndarray:
    """A clip as BEATs reads it: 16 kHz mono float32, first ``max_seconds`` s, zero-padded at the
    end to :data:`BEATS_MIN_SAMPLES` when shorter (0.175 s) so it yields at least one frame."""
    y = load_audio(path, BEATS_SAMPLE_RATE, max_seconds)
    if y.shape[0] < BEATS_MIN_SAMPLES:
        y = np.pad(y, (0, BEATS_MIN_SAMPLES - y.shape[0]))
    return y


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@register_encoder(
    "beats", "audio", "BEATs (helpers.encoders.beats, plain torch), 16 kHz mono, mean over frames of one layer"
)
class BeatsEncoder(Encoder):
    """BEATs audio encoder (Chen et al. 2023) through the project's own implementation, :mod:`helpers.encoders.beats`.

    Options: ``checkpoint`` (path to ``BEATs_iter3.pt`` or ``BEATs_iter3_plus_AS2M.pt`` from
    github.com/microsoft/unilm/tree/master/beats; required: there is no hub copy to fall back
    on), ``layer`` (-1 = the model's output, which for the official post-LN checkpoints is
    layer L's; 0 = the input to the first transformer layer, the projected patch embeddings
    after the positional convolution; k = layer k's output), ``max_seconds`` (long clips are
    cropped to their first seconds, default 10 = one AudioCaps clip), ``device`` ("cpu",
    "cuda", or "auto" = CUDA when available). The feature is the mean over all output frames
    (BEATs' 16x16 time-frequency patches, 160 ms x 16 mel bins each) of that layer. Clips
    of different lengths share a batch: they are zero-padded and the padding patches are
    masked out of attention and of the mean, so a clip's feature does not depend on its batch.
    """

    name = "beats"
    modality = "audio"
    dim = 768

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        layer: int = -1,
        max_seconds: float | None = 10.0,
        device: str = "cpu",
        batch_size: int = 8,
    ):
        super().__init__(batch_size)
        if not isinstance(layer, int):
            raise ValueError(f"beats layer must be an int (-1 = last layer), got {layer!r}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"beats max_seconds must be positive or None, got {max_seconds!r}")
        if checkpoint is None:
            raise ValueError(
                "beats needs encoder_options={'beats': {'checkpoint': PATH}}: download BEATs_iter3.pt or "
                "BEATs_iter3_plus_AS2M.pt (github.com/microsoft/unilm/tree/master/beats) and give its path"
            )
        path = Path(str(checkpoint)).expanduser()
        if not path.is_file():
            known = ", ".join(f"{k}: {v}" for k, v in BEATS_CHECKPOINTS.items())
            raise FileNotFoundError(
                f"beats checkpoint {str(path)!r} does not exist; download one of ({known}) from "
                "github.com/microsoft/unilm/tree/master/beats and pass its path as the `checkpoint` option"
            )
        self.checkpoint = path
        self.layer = layer
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        self.device = device
        self._model = None
        self._n_layers: int | None = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        from helpers.encoders.beats import FBANK_OPTIONS

        return {
            "encoder": self.name,
            "step_version": STEP_VERSION,
            "weights_sha256": file_fingerprint(self.checkpoint),
            "implementation": BEATS_IMPLEMENTATION,
            "fbank": {
                **FBANK_OPTIONS,
                "waveform_scale": 2**15,
                "kaldi_native_fbank": _package_version("kaldi-native-fbank"),
            },
            "layer": self.layer,
            "audio": {
                "sr": BEATS_SAMPLE_RATE,
                "mono": "mean",
                "resampler": AUDIO_RESAMPLER,
                "max_seconds": self.max_seconds,
                "crop": "head",
                "min_samples": BEATS_MIN_SAMPLES,
            },
            "pool": "mean over all output frames",
        }

    @property
    def model(self):
        if self._model is None:
            from helpers.encoders.beats import load_beats

            m = load_beats(self.checkpoint)
            self._n_layers = m.num_layers + 1
            if not -self._n_layers <= self.layer < self._n_layers:
                raise ValueError(f"beats layer {self.layer} out of range for a {self._n_layers - 1}-layer checkpoint")
            self.dim = int(m.cfg.encoder_embed_dim)
            self._model = m.to(resolve_device(self.device)).eval()
        return self._model

    def embed(self, paths):
        _ = self.model  # dim comes from the checkpoint's config
        return super().embed(paths)

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        import torch

        from helpers.encoders.beats import beats_fbank, pad_fbanks

        fbanks = [beats_fbank(beats_waveform(p, self.max_seconds)) for p in paths]
        device = next(self.model.parameters()).device
        x, frame_mask = pad_fbanks(fbanks)
        with torch.inference_mode():
            out = self.model.extract_features(x.to(device), frame_mask.to(device))
            return out.mean_pool(self.layer).float().cpu().numpy()
