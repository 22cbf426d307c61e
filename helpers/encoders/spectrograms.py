"""The audio encoders' spectrograms, re-implemented to match what their weights were trained with.

A leaf (numpy, plus torch and librosa for Whisper's), so that each step can be audited
against its reference on its own:

- aiSFX was trained on Essentia 2.1b6 spectrograms (Essentia is AGPL and not a dependency):
  :func:`essentia_mel_filterbank` (``MelBands``, HTK mel, unit-sum triangles),
  :func:`essentia_log_mel` (framing, Hann window, power spectrum, ``log10(1e4 x + 1)``) and
  :func:`aisfx_blocks` (the package's ``blocking``) reproduce it; clip embeddings match
  Essentia + the package to cosine 1.000000 on WAV input (see ``helpers.encoders.embedded.AiSFXEncoder``).
- :func:`whisper_log_mel` is ``whisper.audio.log_mel_spectrogram`` of one padded 30 s window.

BEATs' Kaldi filterbank comes from kaldi-native-fbank in :mod:`helpers.encoders.beats`.
"""

from __future__ import annotations

import math

import numpy as np


def _hz_to_mel_htk(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz_htk(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def essentia_mel_filterbank(sr: float, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Essentia ``MelBands(warpingFormula='htkMel', weighting='warping', normalize='unit_sum')``.

    Re-implements Essentia 2.1b6's ``TriangularBands``: band edges equally spaced on the
    HTK mel scale, triangle weights computed on the mel scale at FFT bin frequencies for
    bins ``ceil(f_lo / df) .. floor(f_hi / df)``, each band scaled to sum to 1.
    Returns ``[n_mels, n_fft // 2 + 1]`` float64.
    """
    n_bins = n_fft // 2 + 1
    edges = _mel_to_hz_htk(np.linspace(_hz_to_mel_htk(f_min), _hz_to_mel_htk(f_max), n_mels + 2))
    df = (sr / 2.0) / (n_bins - 1)
    fb = np.zeros((n_mels, n_bins), dtype=np.float64)
    for i in range(n_mels):
        f0, f1, f2 = edges[i : i + 3]
        j = np.arange(int(math.ceil(f0 / df)), min(int(math.floor(f2 / df)), n_bins - 1) + 1)
        b = j * df
        m0, m1, m2, mb = _hz_to_mel_htk(f0), _hz_to_mel_htk(f1), _hz_to_mel_htk(f2), _hz_to_mel_htk(b)
        w = np.where(b < f1, (mb - m0) / (m1 - m0), (m2 - mb) / (m2 - m1))
        total = w.sum()
        if total <= 0:
            raise ValueError(f"mel band {i} has no FFT bins; use a larger n_fft")
        fb[i, j] = w / total
    return fb


def essentia_log_mel(y: np.ndarray, fb: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """Essentia's ``FrameCutter`` + ``Windowing`` + |rfft|^2 + ``MelBands`` + ``log10(1e4 x + 1)``: ``[n_frames, n_mels]``.

    Frame ``k`` starts at ``hop * k - n_fft // 2`` (``startFromZero=False``, zero padded), frames
    while the start is inside the signal; ``fb`` is ``[n_fft // 2 + 1, n_mels]`` (the transpose of
    :func:`essentia_mel_filterbank`), ``window`` the symmetric Hann window of ``n_fft`` samples.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    half = n_fft // 2
    n_frames = -(-(n + half) // hop)  # frames whose start (k*hop - half) is < n
    padded = np.zeros(half + (n_frames - 1) * hop + n_fft, dtype=np.float64)
    padded[half : half + n] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    mag2 = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return np.log10(1e4 * (mag2 @ fb) + 1.0)


def aisfx_blocks(spec: np.ndarray, block_frames: int, block_hop: int) -> np.ndarray:
    """``[frames, mels]`` -> ``[n_blocks, block_frames, mels]`` like ``aisfx.preprocessing.blocking``:
    the partial last block dropped, a spectrogram shorter than one block zero-padded to one block."""
    t = spec.shape[0]
    bs, hop = block_frames, block_hop
    n_blocks = int(math.ceil((t - bs) / hop + 1))
    if (t - bs) % hop != 0:  # drop_partial_block=True
        n_blocks -= 1
    n_blocks = max(n_blocks, 1)
    data = np.vstack([spec, np.zeros((bs, spec.shape[1]), dtype=spec.dtype)])
    return np.stack([data[i * hop : i * hop + bs] for i in range(n_blocks)])


_WHISPER_MEL_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def whisper_log_mel(audio: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Whisper's log-mel spectrogram of one 30 s window: ``[n_mels, 3000]`` float32.

    Same steps as ``whisper.audio.pad_or_trim`` + ``log_mel_spectrogram``: the 16 kHz
    waveform is zero-padded/trimmed to 480000 samples; STFT with n_fft 400, hop 160,
    periodic Hann, centred with reflect padding (``torch.stft``), last frame dropped;
    power spectrum x librosa's slaney mel filterbank (``librosa.filters.mel(sr=16000,
    n_fft=400, n_mels=80)``, the source of whisper's ``mel_filters.npz``);
    ``log10(max(x, 1e-10))``, floored at ``max - 8``, then ``(x + 4) / 4``.
    """
    import torch

    n_samples, n_fft, hop = 480000, 400, 160
    key = (16000, n_fft, n_mels)
    if key not in _WHISPER_MEL_CACHE:
        import librosa

        _WHISPER_MEL_CACHE[key] = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels).astype(np.float32)
    filters = torch.from_numpy(_WHISPER_MEL_CACHE[key])
    a = np.zeros(n_samples, dtype=np.float32)
    a[: min(len(audio), n_samples)] = audio[:n_samples]
    x = torch.from_numpy(a)
    stft = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel = filters @ magnitudes
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy().astype(np.float32)


__all__ = ["aisfx_blocks", "essentia_log_mel", "essentia_mel_filterbank", "whisper_log_mel"]
