"""The project's own BEATs (:mod:`helpers.encoders.beats`): Kaldi fbank through kaldi-native-fbank, the
official checkpoint layout, the model's pieces against their defining formulas, and layer outputs,
padding and checkpoint errors on a tiny random-weight checkpoint.

Expected values come from outside the code under test: the Kaldi/mel formulas written out here in
numpy, hand-computed buckets, the official module structure typed out key by key, and torch's own
weight normalisation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_beats import TINY_BEATS_CFG, save_tiny_beats

from helpers.encoders import beats as B

SR = 16000
LOG_EPS = math.log(np.finfo(np.float32).eps)  # Kaldi's log floor: log(FLT_EPSILON)


def _mel(f):
    """Kaldi's mel scale."""
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_centres_hz(n_mels: int = 128, low: float = 20.0, high: float = 8000.0) -> np.ndarray:
    """Centre frequency (Hz) of each of Kaldi's triangular mel filters: equally spaced in mel."""
    lo, hi = _mel(low), _mel(high)
    centres = lo + (np.arange(n_mels) + 1) * (hi - lo) / (n_mels + 1)
    return 700.0 * (np.exp(centres / 1127.0) - 1.0)


def numpy_kaldi_fbank(x: np.ndarray, n_mels: int = 128) -> np.ndarray:
    """Kaldi's fbank written out in float64 numpy: 25 ms / 10 ms snipped frames, DC removal,
    pre-emphasis 0.97, povey window, 512-point power spectrum, triangular mel filters between
    20 Hz and Nyquist over FFT bins 0..255, log with the float32-epsilon floor."""
    x = np.asarray(x, dtype=np.float64)
    n_win, shift, n_fft = 400, 160, 512
    n_frames = 1 + (len(x) - n_win) // shift
    frames = np.stack([x[i * shift : i * shift + n_win] for i in range(n_frames)])
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames - 0.97 * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    n = np.arange(n_win)
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * n / (n_win - 1))) ** 0.85
    power = np.abs(np.fft.rfft(frames, n=n_fft)) ** 2
    lo, hi = _mel(20.0), _mel(SR / 2)
    delta = (hi - lo) / (n_mels + 1)
    bin_mel = _mel(np.arange(n_fft // 2) * SR / n_fft)
    weights = np.zeros((n_mels, n_fft // 2))
    for m in range(n_mels):
        left, centre, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        tri = np.minimum((bin_mel - left) / (centre - left), (right - bin_mel) / (right - centre))
        weights[m] = np.where((bin_mel > left) & (bin_mel < right), tri, 0.0)
    energy = power[:, : n_fft // 2] @ weights.T
    return np.log(np.maximum(energy, np.finfo(np.float32).eps))


def _tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --------------------------------------------------------------------------- fbank


@pytest.mark.parametrize("n", [399, 400, 401, 559, 560, 2800, 16000, 16123])
def test_frame_count_is_snipped_25ms_every_10ms(n):
    expected = 0 if n < 400 else 1 + (n - 400) // 160
    fb = B.kaldi_fbank(np.random.default_rng(n).standard_normal(n).astype(np.float32) * 1000)
    assert fb.shape == (expected, 128) and fb.dtype == np.float32
    assert B.num_frames(n) == expected


@pytest.mark.parametrize("freq", [1000.0, 2000.0, 3000.0, 5000.0, 7000.0])
def test_pure_tone_peaks_in_the_mel_bin_centred_nearest_it(freq):
    fb = B.beats_fbank(_tone(freq))
    expected = int(np.argmin(np.abs(_mel_centres_hz() - freq)))
    peaks = fb.argmax(axis=1)
    assert np.all(peaks == expected), (freq, expected, np.unique(peaks))


def test_silence_sits_on_the_log_floor_and_noise_scales_as_power():
    silence = B.kaldi_fbank(np.zeros(4000, np.float32))
    np.testing.assert_allclose(silence, LOG_EPS, atol=1e-5)
    normalised = B.beats_fbank(np.zeros(4000, np.float32))
    np.testing.assert_allclose(normalised, (LOG_EPS - 15.41663) / (2 * 6.55582), atol=1e-5)

    noise = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.05
    quiet, loud = B.beats_fbank(noise), B.beats_fbank(2 * noise)
    raw_quiet = B.kaldi_fbank(noise * 2**15)
    live = raw_quiet > LOG_EPS + 1  # bands whose filters hold FFT bins (all but mel bin 3)
    assert live.mean() > 0.9 and raw_quiet[live].mean() > LOG_EPS + 20
    # twice the amplitude = four times the power = + 2 ln 2 in every live band (log power, normalised by 2 std)
    np.testing.assert_allclose((loud - quiet)[live], 2 * math.log(2) / (2 * 6.55582), atol=1e-4)


def test_fbank_equals_a_numpy_kaldi_reference():
    rng = np.random.default_rng(1)
    n = 400 + 160 * 20 + 37  # 21 frames and a remainder that is snipped
    x = (rng.standard_normal(n) * 3000 + 500).astype(np.float32)  # with a DC offset
    x[1000:1400] += (8000 * np.sin(2 * np.pi * 440 * np.arange(400) / SR)).astype(np.float32)
    ref = numpy_kaldi_fbank(x)
    got = B.kaldi_fbank(x)
    assert got.shape == ref.shape == (21, 128)
    np.testing.assert_allclose(got, ref, atol=5e-4)  # measured max |diff| 1.5e-4 (float32 FFT)
    # the bands whose filters hold no FFT bin are floored in both
    assert np.array_equal(got <= LOG_EPS + 1e-3, ref <= LOG_EPS + 1e-3)


def test_fbank_options_are_the_official_ones():
    o = B.fbank_options()
    fr, mel = o.frame_opts, o.mel_opts
    assert (fr.samp_freq, fr.frame_length_ms, fr.frame_shift_ms, fr.dither) == (16000, 25, 10, 0)
    assert (fr.window_type, fr.snip_edges, fr.remove_dc_offset, fr.round_to_power_of_two) == ("povey", True, True, True)
    assert abs(fr.preemph_coeff - 0.97) < 1e-7
    assert (mel.num_bins, mel.low_freq, mel.high_freq, mel.is_librosa, mel.htk_mode) == (128, 20, 0, False, False)
    assert (o.use_energy, o.use_log_fbank, o.use_power, o.use_log_floor) == (False, True, True, True)


# --------------------------------------------------------------------------- checkpoint layout


def _official_tiny_keys(finetuned_classes: int | None = None) -> dict[str, tuple[int, ...]]:
    """The state dict of the official ``BEATs`` class for TINY_BEATS_CFG, typed out from its module
    tree (BEATs.py / backbone.py): patch_embedding (Conv2d 1->16, 16x16, no bias), layer_norm (16),
    post_extract_proj (16->32), encoder.pos_conv = Sequential(weight-normed Conv1d(32, 32, 16,
    groups=4) with dim=2, SamePad, GELU), encoder.layers[i] (self_attn with q/k/v/out_proj,
    relative_attention_bias Embedding(32 buckets, 4 heads) kept per layer though shared,
    grep_linear Linear(head_dim 8 -> 8), grep_a [1, heads, 1, 1]; self_attn_layer_norm; fc1;
    fc2; final_layer_norm), encoder.layer_norm; predictor Linear(32 -> classes) when fine-tuned."""
    keys = {
        "patch_embedding.weight": (16, 1, 16, 16),
        "layer_norm.weight": (16,),
        "layer_norm.bias": (16,),
        "post_extract_proj.weight": (32, 16),
        "post_extract_proj.bias": (32,),
        "encoder.pos_conv.0.weight_g": (1, 1, 16),
        "encoder.pos_conv.0.weight_v": (32, 8, 16),
        "encoder.pos_conv.0.bias": (32,),
        "encoder.layer_norm.weight": (32,),
        "encoder.layer_norm.bias": (32,),
    }
    for i in range(2):
        a = f"encoder.layers.{i}.self_attn."
        keys[a + "relative_attention_bias.weight"] = (32, 4)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys[a + proj + ".weight"] = (32, 32)
            keys[a + proj + ".bias"] = (32,)
        keys[a + "grep_linear.weight"] = (8, 8)
        keys[a + "grep_linear.bias"] = (8,)
        keys[a + "grep_a"] = (1, 4, 1, 1)
        layer = f"encoder.layers.{i}."
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            keys[layer + ln + ".weight"] = (32,)
            keys[layer + ln + ".bias"] = (32,)
        keys[layer + "fc1.weight"], keys[layer + "fc1.bias"] = (64, 32), (64,)
        keys[layer + "fc2.weight"], keys[layer + "fc2.bias"] = (32, 64), (32,)
    if finetuned_classes is not None:
        keys["predictor.weight"] = (finetuned_classes, 32)
        keys["predictor.bias"] = (finetuned_classes,)
    return keys


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("beats_ckpts")
    return {
        "tiny": save_tiny_beats(root / "tiny.pt"),
        "as2m": save_tiny_beats(root / "tiny_as2m.pt", seed=1, finetuned_model=True, predictor_class=527),
        "preln": save_tiny_beats(root / "tiny_preln.pt", seed=2, deep_norm=False, layer_norm_first=True),
    }


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert set(ck) == {"cfg", "model"}
    return {k: tuple(v.shape) for k, v in ck["model"].items()}


def test_tiny_checkpoint_has_the_official_key_names_and_shapes(ckpts):
    assert _shapes(ckpts["tiny"]) == _official_tiny_keys()
    assert _shapes(ckpts["as2m"]) == _official_tiny_keys(finetuned_classes=527)
    assert len(_official_tiny_keys()) == 10 + 2 * 20


def test_loading_round_trips_and_keeps_the_shared_bias(ckpts, tmp_path):
    saved = torch.load(ckpts["tiny"], weights_only=True)
    model = B.load_beats(ckpts["tiny"])
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved["model"][k]), k
    cfg = model.cfg.to_dict()
    assert all(cfg[k] == v for k, v in TINY_BEATS_CFG.items() if k in cfg)
    # one relative-position table for all layers, as in the official model
    assert (
        model.encoder.layers[0].self_attn.relative_attention_bias
        is model.encoder.layers[1].self_attn.relative_attention_bias
    )
    again = B.load_beats(B.save_checkpoint(model, tmp_path / "again.pt"))
    for k, v in again.state_dict().items():
        assert torch.equal(v, saved["model"][k]), k
    # the fine-tuned checkpoint's predictor head is loaded, not dropped
    as2m = B.load_beats(ckpts["as2m"])
    assert torch.equal(as2m.predictor.weight, torch.load(ckpts["as2m"], weights_only=True)["model"]["predictor.weight"])


def _edit(src: Path, dst: Path, fn) -> Path:
    ck = torch.load(src, weights_only=True)
    fn(ck)
    torch.save(ck, dst)
    return dst


def test_bad_checkpoints_fail_naming_the_file_and_the_fix(ckpts, tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"BEATs checkpoint '.*nothing\.pt' does not exist; expected an official BEATs checkpoint \(BEATs_iter3\.pt or BEATs_iter3_plus_AS2M\.pt from github\.com/microsoft/unilm",
    ):
        B.load_beats(tmp_path / "nothing.pt")
    html = tmp_path / "BEATs_iter3.pt"
    html.write_text("<html>not a checkpoint</html>")
    with pytest.raises(ValueError, match=r"BEATs checkpoint '.*BEATs_iter3\.pt' could not be read .*download it again"):
        B.load_beats(html)
    bare = tmp_path / "bare.pt"
    torch.save(torch.load(ckpts["tiny"], weights_only=True)["model"], bare)  # a bare state dict, no cfg
    with pytest.raises(ValueError, match=r"bare\.pt' lacks 'cfg' and 'model'"):
        B.load_beats(bare)
    missing = _edit(ckpts["tiny"], tmp_path / "missing.pt", lambda ck: ck["model"].pop("encoder.layers.1.fc2.bias"))
    with pytest.raises(
        ValueError,
        match=r"missing\.pt' does not match .*missing keys \['encoder\.layers\.1\.fc2\.bias'\], unexpected keys \[\]",
    ):
        B.load_beats(missing)
    # predictor weights in a checkpoint whose cfg is not fine-tuned: reported, not silently ignored
    extra = _edit(
        ckpts["tiny"], tmp_path / "extra.pt", lambda ck: ck["model"].update({"predictor.weight": torch.zeros(527, 32)})
    )
    with pytest.raises(ValueError, match=r"unexpected keys \['predictor\.weight'\]"):
        B.load_beats(extra)
    shape = _edit(ckpts["tiny"], tmp_path / "shape.pt", lambda ck: ck["cfg"].update({"encoder_ffn_embed_dim": 48}))
    with pytest.raises(
        ValueError, match=r"shape mismatches \(file vs model\) \['encoder\.layers\.0\.fc1\.bias: \(64,\) vs \(48,\)"
    ):
        B.load_beats(shape)

    def split_bias(ck):
        ck["model"]["encoder.layers.1.self_attn.relative_attention_bias.weight"] = torch.zeros(32, 4)

    with pytest.raises(ValueError, match="relative_attention_bias copies differ"):
        B.load_beats(_edit(ckpts["tiny"], tmp_path / "split.pt", split_bias))
    with pytest.raises(ValueError, match="bad cfg .*input_patch_size"):
        B.load_beats(_edit(ckpts["tiny"], tmp_path / "nopatch.pt", lambda ck: ck["cfg"].pop("input_patch_size")))


# --------------------------------------------------------------------------- pieces against their formulas


def test_relative_position_buckets_by_hand():
    # 32 buckets, max distance 128: 16 per direction, offsets 0..7 exact, 8..127 log-spaced into 8..15
    offsets = torch.tensor([0, -1, -7, -8, -11, -12, -16, -100, -127, -128, -5000, 1, 7, 8, 16, 200])
    # e.g. -11: 8 + floor(ln(11/8) / ln(128/8) * 8) = 8 + floor(0.92) = 8; -12: 8 + floor(1.17) = 9;
    # -16: 8 + floor(2.0) = 10; -100: 8 + floor(7.29) = 15; positive offsets add 16
    expected = [0, 1, 7, 8, 8, 9, 10, 15, 15, 15, 15, 17, 23, 24, 26, 31]
    assert B.relative_position_bucket(offsets, 32, 128).tolist() == expected


def test_positional_conv_is_torch_weight_norm_with_dim_2():
    torch.manual_seed(0)
    conv = B.WeightNormConv1d(32, 16, 4)
    with torch.no_grad():
        conv.weight_g.mul_(torch.rand_like(conv.weight_g) + 0.5)
    ref = torch.nn.Conv1d(32, 32, 16, padding=8, groups=4)
    ref = torch.nn.utils.parametrizations.weight_norm(ref, name="weight", dim=2)
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(conv.weight_g)
        ref.parametrizations.weight.original1.copy_(conv.weight_v)
        ref.bias.copy_(conv.bias)
        x = torch.randn(2, 32, 40)
        torch.testing.assert_close(conv(x), ref(x), atol=1e-5, rtol=1e-5)
    pad = B.SamePad(16)(conv(x))
    assert pad.shape == x.shape  # even kernel, padding 8 each side, last step dropped


def _official_attention(attn: B.MultiheadAttention, x: torch.Tensor, key_padding_mask, position_bias) -> torch.Tensor:
    """The official MultiheadAttention.forward's arithmetic for self-attention, time-first
    [T, B, C], with its fp16 trick (q / 32, subtract the row max, x 32) and gated bias."""
    t, b, c = x.shape
    h, d = attn.num_heads, attn.head_dim
    scaling, alpha = d**-0.5, 32
    q = attn.q_proj(x) * scaling / alpha
    k, v = attn.k_proj(x), attn.v_proj(x)
    q = q.contiguous().view(t, b * h, d).transpose(0, 1)
    k = k.contiguous().view(t, b * h, d).transpose(0, 1)
    v = v.contiguous().view(t, b * h, d).transpose(0, 1)
    w = torch.bmm(q, k.transpose(1, 2))
    w = (w - w.max(dim=-1, keepdim=True)[0]) * alpha
    w = w.view(b, h, t, t).masked_fill(key_padding_mask[:, None, None, :], float("-inf")).view(b * h, t, t)
    pb = position_bias.unsqueeze(0).repeat(b, 1, 1, 1).view(b * h, t, t)
    query = q.view(b, h, t, d) * alpha / scaling
    gate_a, gate_b = torch.sigmoid(attn.grep_linear(query).view(b, h, t, 2, 4).sum(-1)).chunk(2, dim=-1)
    w = w + ((gate_a * (gate_b * attn.grep_a - 1.0) + 2.0).view(b * h, t, 1) * pb).view(w.shape)
    out = torch.bmm(torch.softmax(w, dim=-1), v).transpose(0, 1).contiguous().view(t, b, c)
    return attn.out_proj(out)


def test_attention_matches_the_official_arithmetic(ckpts):
    model = B.load_beats(ckpts["tiny"])
    attn = model.encoder.layers[1].self_attn
    torch.manual_seed(3)
    x = torch.randn(3, 24, 32)
    mask = torch.zeros(3, 24, dtype=torch.bool)
    mask[1, 16:] = True
    mask[2, 8:] = True
    bias = attn.compute_bias(24)
    assert bias.shape == (4, 24, 24)
    # bias[h, i, j] is the table entry of the bucket of j - i
    assert torch.equal(
        bias[:, 2, 5], attn.relative_attention_bias.weight[B.relative_position_bucket(torch.tensor(3), 32, 128)]
    )
    with torch.no_grad():
        ours = attn(x, mask, bias)
        ref = _official_attention(attn, x.transpose(0, 1), mask, bias).transpose(0, 1)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)


def _fbank(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    w = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (300 + 200 * seed) * t)
    return B.beats_fbank(w.astype(np.float32))


def test_layer_outputs_shapes_and_final_output(ckpts):
    model = B.load_beats(ckpts["tiny"])
    fb = torch.from_numpy(np.stack([_fbank(2.0, 0), _fbank(2.0, 1)]))  # 198 frames -> 12 time patches x 8
    with torch.no_grad():
        out = model.extract_features(fb)
    assert fb.shape == (2, 198, 128)
    assert len(out.hidden_states) == 3 and out.padding_mask is None
    assert all(h.shape == (2, 12 * 8, 32) for h in out.hidden_states) and out.last_hidden_state.shape == (2, 96, 32)
    # post-LN (deep norm): the output is the last layer's output; each layer changes the states
    assert torch.equal(out.last_hidden_state, out.hidden_states[-1])
    assert not torch.allclose(out.hidden_states[0], out.hidden_states[1], atol=1e-2)
    torch.testing.assert_close(out.mean_pool(-1), out.hidden_states[2].mean(dim=1))
    # the two clips differ, so their features do
    assert not torch.allclose(out.mean_pool()[0], out.mean_pool()[1], atol=1e-3)
    # pre-LN: the output is the final layer norm of the last hidden state
    pre = B.load_beats(ckpts["preln"])
    with torch.no_grad():
        o = pre.extract_features(fb)
        torch.testing.assert_close(o.last_hidden_state, pre.encoder.layer_norm(o.hidden_states[-1]))
    assert not torch.allclose(o.last_hidden_state, o.hidden_states[-1], atol=1e-2)


def test_too_short_input_is_refused(ckpts):
    model = B.load_beats(ckpts["tiny"])
    with pytest.raises(ValueError, match="at least 16 fbank frames, got 15"):
        model.extract_features(torch.zeros(1, 15, 128))


def test_padded_batch_gives_each_clip_its_alone_output(ckpts):
    model = B.load_beats(ckpts["tiny"])
    fbanks = [_fbank(1.3, 0), _fbank(3.1, 1), _fbank(0.5, 2), _fbank(2.0, 3)]  # 128, 308, 48, 198 frames
    x, frame_mask = B.pad_fbanks(fbanks)
    assert x.shape == (4, 308, 128) and frame_mask.sum(1).tolist() == [180, 0, 260, 110]
    with torch.no_grad():
        batch = model.extract_features(x, frame_mask)
        alone = [model.extract_features(torch.from_numpy(f)[None]) for f in fbanks]
    assert (~batch.padding_mask).sum(1).tolist() == [8 * (f.shape[0] // 16) for f in fbanks]
    for i, a in enumerate(alone):
        n = a.last_hidden_state.shape[1]
        assert torch.all(~batch.padding_mask[i, :n]) and torch.all(batch.padding_mask[i, n:])
        for layer in range(3):
            torch.testing.assert_close(
                batch.hidden_states[layer][i, :n], a.hidden_states[layer][0], atol=1e-5, rtol=1e-5
            )
            torch.testing.assert_close(batch.mean_pool(layer)[i], a.mean_pool(layer)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batch.mean_pool()[i], a.mean_pool()[0], atol=1e-5, rtol=1e-5)


def test_audioset_head_of_the_fine_tuned_checkpoint(ckpts):
    as2m = B.load_beats(ckpts["as2m"])
    fbanks = [_fbank(1.0, 0), _fbank(2.5, 1)]
    x, mask = B.pad_fbanks(fbanks)
    with torch.no_grad():
        p = as2m.audioset_probabilities(x, mask)
        p0 = as2m.audioset_probabilities(torch.from_numpy(fbanks[0])[None])
        feats = as2m.extract_features(torch.from_numpy(fbanks[0])[None]).last_hidden_state
        by_hand = torch.sigmoid((feats @ as2m.predictor.weight.T + as2m.predictor.bias).mean(dim=1))
    assert p.shape == (2, 527) and torch.all((p > 0) & (p < 1))
    torch.testing.assert_close(p[0], p0[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p0, by_hand, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="no AudioSet predictor head"):
        B.load_beats(ckpts["tiny"]).audioset_probabilities(x)
