"""BEATs, the paper's audio encoder, in plain torch (no torchaudio, no SpeechBrain).

BEATs (Chen et al. 2023, "BEATs: Audio Pre-Training with Acoustic Tokenizers",
arXiv 2212.09058) is a ViT-style transformer over a log-mel spectrogram. This module
re-implements its inference path after the official code (github.com/microsoft/unilm,
``beats/BEATs.py`` and ``beats/backbone.py``) so that the official checkpoints
``BEATs_iter3.pt`` and ``BEATs_iter3_plus_AS2M.pt`` load **unchanged**: every module is
named as there, so the checkpoint's ``model`` state dict matches key for key.

The pipeline, for a 16 kHz mono waveform in [-1, 1]:

1. **Fbank** (:func:`beats_fbank`): scale to the 16-bit integer range (× 2^15) and take
   Kaldi's log mel filterbank, 128 bins, 25 ms frames every 10 ms (one frame = one row
   of the spectrogram), computed with ``kaldi-native-fbank`` set up as
   ``torchaudio.compliance.kaldi.fbank`` is in the official code; then normalise with the
   AudioSet statistics, ``(fbank - 15.41663) / (2 * 6.55582)``.
2. **Patches**: the ``[T, 128]`` spectrogram is cut into 16 × 16 patches (16 frames =
   160 ms × 16 mel bins) by a stride-16 convolution (``patch_embedding``); the patches
   are read time-major (all 8 frequency patches of the first 160 ms, then the next), layer
   normalised (``layer_norm``) and projected to the transformer width
   (``post_extract_proj``). A 10 s clip gives 998 frames → 62 × 8 = 496 patches.
3. **Transformer** (:class:`TransformerEncoder`): a grouped, weight-normalised 1-D
   convolution over the patch sequence adds positional information (``pos_conv``), then
   post-LN ("deep norm") or pre-LN transformer layers whose self-attention carries a
   T5-style bucketed relative position bias, gated per query (``gru_rel_pos``).
4. For the AudioSet-fine-tuned checkpoint, a linear ``predictor`` head maps each output
   patch to 527 AudioSet class logits; their mean over patches, through a sigmoid, gives
   clip-level class probabilities (:meth:`BEATs.audioset_probabilities`).

Inference only: dropout, layer drop and the training-time tricks of the official code
(gradient scaling, quantisation noise) are left out, since they are identities in eval mode.

One module because it is one model, read side by side with the official ``BEATs.py`` and
``backbone.py``: the fbank, the patch embedding, the transformer and the checkpoint loading
are checked against them together (``tests/test_beats.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMPLE_RATE = 16000
#: BEATs feeds Kaldi 16-bit-range samples: waveform in [-1, 1] times 2^15
WAVEFORM_SCALE = 2.0**15
NUM_MEL_BINS = 128
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
#: mean and std of the fbank over AudioSet (the official ``preprocess`` defaults)
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
#: the frame length and shift in samples at 16 kHz
FRAME_LENGTH = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)  # 400
FRAME_SHIFT = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)  # 160
OFFICIAL_CHECKPOINTS = ("BEATs_iter3.pt", "BEATs_iter3_plus_AS2M.pt")
CHECKPOINT_SOURCE = "github.com/microsoft/unilm/tree/master/beats"

#: every Kaldi fbank option and the value BEATs uses (those of torchaudio.compliance.kaldi.fbank
#: with the official call's num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10)
FBANK_OPTIONS: dict[str, Any] = {
    "samp_freq": float(SAMPLE_RATE),
    "frame_length_ms": FRAME_LENGTH_MS,
    "frame_shift_ms": FRAME_SHIFT_MS,
    "dither": 0.0,
    "preemph_coeff": 0.97,
    "remove_dc_offset": True,
    "window_type": "povey",
    "round_to_power_of_two": True,
    "snip_edges": True,
    "num_bins": NUM_MEL_BINS,
    "low_freq": 20.0,
    "high_freq": 0.0,
    "htk_mode": False,
    "is_librosa": False,
    "use_energy": False,
    "use_log_fbank": True,
    "use_log_floor": True,
    "eps": float(np.finfo(np.float32).eps),
    "use_power": True,
}


# --------------------------------------------------------------------------- fbank


def fbank_options():
    """``kaldi_native_fbank.FbankOptions`` set to BEATs' preprocessing, option by option.

    Frame extraction (``frame_opts``):

    - ``samp_freq`` 16000, ``frame_length_ms`` 25, ``frame_shift_ms`` 10: 400-sample frames
      every 160 samples.
    - ``snip_edges`` True: only frames that fit wholly inside the signal, so ``n`` samples
      give ``1 + (n - 400) // 160`` frames (none below 400 samples).
    - ``dither`` 0: no random noise is added (torchaudio's default, kaldi-native-fbank's is
      3e-5), so the features are deterministic.
    - ``remove_dc_offset`` True: each frame's mean is subtracted.
    - ``preemph_coeff`` 0.97: ``x[i] -= 0.97 * x[i-1]`` within the frame (``x[0] -= 0.97 * x[0]``),
      a first-order high-pass that flattens speech/audio's spectral tilt.
    - ``window_type`` "povey": ``(0.5 - 0.5 cos(2 pi n / (N - 1))) ** 0.85``, a Hann window
      raised to 0.85 (Kaldi's default).
    - ``round_to_power_of_two`` True: frames are zero-padded to 512 samples for the FFT
      (31.25 Hz per FFT bin).

    Mel filterbank (``mel_opts``):

    - ``num_bins`` 128 triangular filters, equally spaced on Kaldi's mel scale
      ``1127 ln(1 + f / 700)`` between ``low_freq`` 20 Hz and ``high_freq`` 0 (= the
      Nyquist frequency, 8 kHz); ``htk_mode`` and ``is_librosa`` False keep Kaldi's own
      filter shapes (triangles in mel, unnormalised).

    Output:

    - ``use_power`` True: filters weight the power spectrum ``|X|^2``.
    - ``use_log_fbank`` True with ``use_log_floor`` True and ``eps`` = float32 epsilon:
      ``log(max(energy, eps))``, Kaldi's floor (torchaudio's too). The lowest filters are
      narrower than the 31.25 Hz FFT bins; one of them (bin 3, centred near 78 Hz) holds no FFT
      bin at all and reads ``log(eps) = -15.94`` always, in torchaudio as here.
    - ``use_energy`` False: no extra log-energy column (``energy_floor``/``raw_energy``/
      ``htk_compat`` then play no part).
    """
    import kaldi_native_fbank as knf

    o = knf.FbankOptions()
    fr, mel = o.frame_opts, o.mel_opts
    for key in (
        "samp_freq",
        "frame_length_ms",
        "frame_shift_ms",
        "dither",
        "preemph_coeff",
        "remove_dc_offset",
        "window_type",
        "round_to_power_of_two",
        "snip_edges",
    ):
        setattr(fr, key, FBANK_OPTIONS[key])
    for key in ("num_bins", "low_freq", "high_freq", "htk_mode", "is_librosa"):
        setattr(mel, key, FBANK_OPTIONS[key])
    for key in ("use_energy", "use_log_fbank", "use_log_floor", "eps", "use_power"):
        setattr(o, key, FBANK_OPTIONS[key])
    return o


def num_frames(num_samples: int) -> int:
    """Frames Kaldi takes from ``num_samples`` samples with snipped edges: ``1 + (n - 400) // 160``."""
    return 0 if num_samples < FRAME_LENGTH else 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


def kaldi_fbank(samples: np.ndarray) -> np.ndarray:
    """Kaldi log mel filterbank of 16 kHz ``samples`` (in 16-bit range): float32 ``[frames, 128]``.

    Row ``t`` describes samples ``[160 t, 160 t + 400)``; column ``m`` is the log energy
    in the ``m``-th mel band (low to high frequency). See :func:`fbank_options`.
    """
    import kaldi_native_fbank as knf

    x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
    comp = knf.OnlineFbank(fbank_options())
    comp.accept_waveform(float(SAMPLE_RATE), x)
    comp.input_finished()
    n = comp.num_frames_ready
    if n == 0:
        return np.zeros((0, NUM_MEL_BINS), dtype=np.float32)
    return np.stack([np.asarray(comp.get_frame(i), dtype=np.float32) for i in range(n)])


def beats_fbank(waveform: np.ndarray, fbank_mean: float = FBANK_MEAN, fbank_std: float = FBANK_STD) -> np.ndarray:
    """BEATs' input for a 16 kHz mono waveform in [-1, 1]: ``(kaldi_fbank(w * 2^15) - mean) / (2 std)``.

    The official ``BEATs.preprocess``; float32 ``[frames, 128]``.
    """
    fb = kaldi_fbank(np.asarray(waveform, dtype=np.float32) * np.float32(WAVEFORM_SCALE))
    return ((fb - np.float32(fbank_mean)) / np.float32(2 * fbank_std)).astype(np.float32)


def pad_fbanks(fbanks: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Stack fbanks of different lengths: zero-padded ``[B, T_max, 128]`` and a frame padding
    mask ``[B, T_max]`` (True = padding frame)."""
    t_max = max(f.shape[0] for f in fbanks)
    x = torch.zeros(len(fbanks), t_max, fbanks[0].shape[1])
    mask = torch.ones(len(fbanks), t_max, dtype=torch.bool)
    for i, f in enumerate(fbanks):
        x[i, : f.shape[0]] = torch.from_numpy(f)
        mask[i, : f.shape[0]] = False
    return x, mask


# --------------------------------------------------------------------------- config


@dataclass
class BeatsConfig:
    """The architecture fields of the official ``BEATsConfig`` (a checkpoint's ``cfg``), same
    names and defaults. Training-only fields (dropouts, layer drop, gradient decay) are
    accepted in :meth:`from_dict` and ignored."""

    input_patch_size: int = -1
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_class: int = 527

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> BeatsConfig:
        known = {f.name for f in fields(cls)}
        out = cls(**{k: v for k, v in cfg.items() if k in known})
        if out.input_patch_size < 1:
            raise ValueError(f"BEATs cfg needs input_patch_size >= 1, got {out.input_patch_size}")
        if out.deep_norm and out.layer_norm_first:
            raise ValueError("BEATs cfg: deep_norm and layer_norm_first cannot both be set")
        if out.activation_fn not in _ACTIVATIONS:
            raise ValueError(
                f"BEATs cfg activation_fn {out.activation_fn!r} not supported; one of {sorted(_ACTIVATIONS)}"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


#: the official ``get_activation_fn`` choices used by the feed-forward block ("gelu" is exact, erf-based)
_ACTIVATIONS = {"gelu": F.gelu, "gelu_accurate": _gelu_tanh, "relu": F.relu, "tanh": torch.tanh, "linear": lambda x: x}


# --------------------------------------------------------------------------- modules


class WeightNormConv1d(nn.Module):
    """``nn.Conv1d`` under weight normalisation with ``dim=2``, stored as ``weight_g``/``weight_v``.

    The kernel is ``weight_v * weight_g / ||weight_v||``, the norm taken over output and
    input channels separately for every kernel tap (so ``weight_g`` is ``[1, 1, K]``), as
    ``torch.nn.utils.weight_norm(conv, dim=2)`` stores it in the official checkpoints.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2
        v = torch.randn(channels, channels // groups, kernel_size) * math.sqrt(4 / (kernel_size * channels))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(channels))

    def weight(self) -> Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    """Drop the last output step of an even-kernel convolution padded by ``K // 2`` on both
    sides, so the output is as long as the input."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : -self.remove] if self.remove else x


def relative_position_bucket(relative_position: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5-style bidirectional buckets of ``key - query`` offsets.

    Half of the buckets are for positive offsets (key after query), half for the rest. In
    each half, offsets below ``num_buckets // 4`` get a bucket each; larger ones share
    log-spaced buckets up to ``max_distance`` and the last bucket beyond it.
    """
    half = num_buckets // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (half - max_exact)).long()).clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class MultiheadAttention(nn.Module):
    """Self-attention with BEATs' gated relative position bias.

    For each head, ``softmax(q k^T / sqrt(d) + g(q) * b[bucket(j - i)])`` weights the values,
    where ``b`` is a learned scalar per relative-position bucket and head
    (``relative_attention_bias``, shared by all layers) and ``g(q) in (1, 3)`` a gate computed
    from the query (``grep_linear``, ``grep_a``): ``g = a (c * grep_a - 1) + 2`` with
    ``a, c`` two sigmoids of sums of ``grep_linear(q)``. Padding keys are masked out.
    (The official code divides the logits by 32 before subtracting their row maximum and
    multiplies back, for fp16 range; softmax is unchanged by that.)
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        has_relative_attention_bias: bool,
        num_buckets: int,
        max_distance: int,
        gru_rel_pos: bool,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"BEATs: encoder_embed_dim {embed_dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.gru_rel_pos = gru_rel_pos
        if gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, num_heads, 1, 1))

    def compute_bias(self, length: int) -> Tensor:
        """``[heads, length, length]``: the learned bias for query ``i`` and key ``j``."""
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # [B, H, T, d]

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None, position_bias: Tensor | None = None) -> Tensor:
        """``x``: ``[B, T, C]``; ``key_padding_mask``: ``[B, T]``, True = padding; ``position_bias``:
        ``[H, T, T]`` from :meth:`compute_bias` (None = no relative position bias)."""
        b, t, c = x.shape
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        bias = None
        if position_bias is not None:
            bias = position_bias.unsqueeze(0)  # [1, H, T, T]
            if self.gru_rel_pos:
                gates = torch.sigmoid(self.grep_linear(q).view(b, self.num_heads, t, 2, 4).sum(-1))
                gate_a, gate_b = gates[..., :1], gates[..., 1:]
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias  # [B, H, T, T]
        if key_padding_mask is not None:
            pad = torch.zeros(b, 1, 1, t, dtype=q.dtype, device=q.device).masked_fill(
                key_padding_mask[:, None, None, :], float("-inf")
            )
            bias = pad if bias is None else bias + pad
        if bias is not None:
            bias = bias.to(q.dtype).expand(b, self.num_heads, t, t)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.head_dim**-0.5)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class TransformerSentenceEncoderLayer(nn.Module):
    """One transformer layer: self-attention then a 2-layer feed-forward block.

    Post-LN (``layer_norm_first`` False, the official checkpoints): ``x = LN(alpha x + f(x))``
    for each block, with DeepNet's residual scale ``alpha = (2 L) ** (1/4)`` when
    ``deep_norm`` (else 1). Pre-LN: ``x = x + f(LN(x))``.
    """

    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = MultiheadAttention(
            dim,
            cfg.encoder_attention_heads,
            cfg.relative_position_embedding,
            cfg.num_buckets,
            cfg.max_distance,
            cfg.gru_rel_pos,
        )
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _ACTIVATIONS[cfg.activation_fn]
        self.layer_norm_first = cfg.layer_norm_first
        self.deep_norm_alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def _ffn(self, x: Tensor) -> Tensor:
        return self.fc2(self.activation(self.fc1(x)))

    def forward(self, x: Tensor, padding_mask: Tensor | None, position_bias: Tensor | None) -> Tensor:
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), padding_mask, position_bias)
            return x + self._ffn(self.final_layer_norm(x))
        a = self.deep_norm_alpha
        x = self.self_attn_layer_norm(a * x + self.self_attn(x, padding_mask, position_bias))
        return self.final_layer_norm(a * x + self._ffn(x))


class TransformerEncoder(nn.Module):
    """Convolutional positional embedding, then the transformer layers.

    ``pos_conv`` is a grouped 1-D convolution (``conv_pos`` taps, ``conv_pos_groups``
    groups) over the patch sequence followed by GELU, added to its input: each patch learns
    where it sits from its neighbours (padding patches are zeroed first, so they read like
    the zero padding at a sequence's end). Post-LN models normalise before the first layer
    (``layer_norm``), pre-LN models after the last.
    """

    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups), SamePad(cfg.conv_pos), nn.GELU()
        )
        self.layers = nn.ModuleList(TransformerSentenceEncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        if cfg.relative_position_embedding:  # one bias table for all layers, as in the official model
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared
        self.relative_position_embedding = cfg.relative_position_embedding
        self.layer_norm_first = cfg.layer_norm_first
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """``x``: ``[B, T, C]`` patch embeddings. Returns the final output ``[B, T, C]`` and the
        ``L + 1`` hidden states: the input to layer 1 (after the positional convolution and,
        post-LN, the layer norm), then each layer's output."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        bias = self.layers[0].self_attn.compute_bias(x.shape[1]) if self.relative_position_embedding else None
        hidden = [x]
        for layer in self.layers:
            x = layer(x, padding_mask, bias)
            hidden.append(x)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x, hidden


@dataclass
class BeatsOutput:
    """What :meth:`BEATs.extract_features` returns.

    ``last_hidden_state``: ``[B, P, C]`` the model's output per patch (``P`` = time patches ×
    frequency patches, time-major); ``hidden_states``: ``L + 1`` tensors ``[B, P, C]`` (see
    :meth:`TransformerEncoder.forward`); ``padding_mask``: ``[B, P]``, True where a patch
    covers padding, or None when nothing was padded.
    """

    last_hidden_state: Tensor
    hidden_states: list[Tensor]
    padding_mask: Tensor | None

    def mean_pool(self, layer: int = -1) -> Tensor:
        """``[B, C]``: mean over the non-padding patches of the output (``layer`` -1) or of
        hidden state ``layer``."""
        h = self.last_hidden_state if layer == -1 else self.hidden_states[layer]
        if self.padding_mask is None:
            return h.mean(dim=1)
        keep = (~self.padding_mask).to(h.dtype).unsqueeze(-1)
        return (h * keep).sum(dim=1) / keep.sum(dim=1)


class BEATs(nn.Module):
    """The BEATs model; module names and shapes follow the official ``BEATs`` class."""

    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        self.cfg = cfg
        p = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=p, stride=p, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (
            nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim) if cfg.embed_dim != cfg.encoder_embed_dim else None
        )
        self.encoder = TransformerEncoder(cfg)
        self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class) if cfg.finetuned_model else None

    @property
    def num_layers(self) -> int:
        return self.cfg.encoder_layers

    def patch_padding_mask(self, frame_mask: Tensor, time_patches: int) -> Tensor:
        """``[B, P]`` from a frame mask ``[B, T]``: a patch is padding when any of its 16 frames is.

        Patches are laid time-major with ``128 / patch`` frequency patches per time step, so
        each time step's mask repeats over its frequency patches. (The official code instead
        reshapes the frame mask straight to the patch count, ignoring the frequency axis;
        with a per-patch time mask a clip gives the same output in a padded batch as alone.)
        """
        p = self.cfg.input_patch_size
        per_step = frame_mask[:, : time_patches * p].reshape(frame_mask.shape[0], time_patches, p).any(-1)
        freq_patches = NUM_MEL_BINS // p
        return per_step.repeat_interleave(freq_patches, dim=1)

    def extract_features(self, fbank: Tensor, padding_mask: Tensor | None = None) -> BeatsOutput:
        """Run BEATs on normalised fbanks ``[B, T, 128]`` (from :func:`beats_fbank`);
        ``padding_mask`` ``[B, T]`` marks padding frames (True)."""
        if fbank.shape[1] < self.cfg.input_patch_size:
            raise ValueError(f"BEATs needs at least {self.cfg.input_patch_size} fbank frames, got {fbank.shape[1]}")
        x = self.patch_embedding(fbank.unsqueeze(1))  # [B, E, T/16, 128/16]
        time_patches = x.shape[2]
        x = self.layer_norm(x.flatten(2).transpose(1, 2))  # [B, P, E], time-major
        mask = None
        if padding_mask is not None and padding_mask.any():
            mask = self.patch_padding_mask(padding_mask, time_patches)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        out, hidden = self.encoder(x, mask)
        return BeatsOutput(out, hidden, mask)

    def audioset_probabilities(self, fbank: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """``[B, 527]`` AudioSet class probabilities of the fine-tuned checkpoint: the predictor's
        logits averaged over non-padding patches, through a sigmoid (the official output)."""
        if self.predictor is None:
            raise ValueError("this BEATs checkpoint has no AudioSet predictor head (cfg finetuned_model is False)")
        feats = self.extract_features(fbank, padding_mask)
        logits = BeatsOutput(self.predictor(feats.last_hidden_state), [], feats.padding_mask).mean_pool()
        return torch.sigmoid(logits)


# --------------------------------------------------------------------------- checkpoints


def _checkpoint_hint(path: Path) -> str:
    return (
        f"expected an official BEATs checkpoint ({' or '.join(OFFICIAL_CHECKPOINTS)} from {CHECKPOINT_SOURCE}): "
        f"a torch file holding {{'cfg': dict, 'model': state_dict}}; download it again and pass its path"
    )


def read_checkpoint(path: str | Path) -> tuple[BeatsConfig, dict[str, Tensor]]:
    """The config and state dict of a BEATs checkpoint file (loaded with ``weights_only=True``:
    tensors and plain values only, no code runs)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"BEATs checkpoint {str(path)!r} does not exist; {_checkpoint_hint(path)}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"BEATs checkpoint {str(path)!r} could not be read ({type(exc).__name__}: {str(exc)[:200]}); "
            f"{_checkpoint_hint(path)}"
        ) from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("cfg"), dict) or not isinstance(ckpt.get("model"), dict):
        got = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(
            f"BEATs checkpoint {str(path)!r} lacks 'cfg' and 'model' (got {got}); {_checkpoint_hint(path)}"
        )
    try:
        cfg = BeatsConfig.from_dict(ckpt["cfg"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"BEATs checkpoint {str(path)!r}: bad cfg ({exc}); {_checkpoint_hint(path)}") from exc
    return cfg, ckpt["model"]


def load_beats(path: str | Path) -> BEATs:
    """Build BEATs from a checkpoint's ``cfg`` and load its ``model`` weights strictly (eval mode, CPU).

    Every key must match: a missing or unexpected key, or a shape mismatch, raises a
    ``ValueError`` naming the file and the keys. The AudioSet checkpoint's ``predictor.*``
    keys load into the predictor head its cfg (``finetuned_model``) asks for.
    """
    path = Path(path).expanduser()
    cfg, state = read_checkpoint(path)
    model = BEATs(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"BEATs checkpoint {str(path)!r} does not match its cfg's architecture: missing keys {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}, unexpected keys {unexpected[:10]}"
            f"{' ...' if len(unexpected) > 10 else ''}, shape mismatches (file vs model) {shapes[:10]}; "
            f"{_checkpoint_hint(path)}"
        )
    _check_shared_bias(path, state, cfg)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _check_shared_bias(path: Path, state: dict[str, Tensor], cfg: BeatsConfig) -> None:
    """All layers share one relative position table; the file repeats it per layer, and the copies must agree."""
    if not cfg.relative_position_embedding:
        return
    keys = [f"encoder.layers.{i}.self_attn.relative_attention_bias.weight" for i in range(cfg.encoder_layers)]
    if any(not torch.equal(state[keys[0]], state[k]) for k in keys[1:]):
        raise ValueError(
            f"BEATs checkpoint {str(path)!r}: the layers' relative_attention_bias copies differ, "
            "but BEATs shares one table across layers; " + _checkpoint_hint(path)
        )


def save_checkpoint(model: BEATs, path: str | Path) -> Path:
    """Write ``model`` as an official-format checkpoint ``{"cfg": dict, "model": state_dict}``."""
    path = Path(path)
    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, path)
    return path
