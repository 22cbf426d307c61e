"""Tests for helpers.lm with tiny random-weight Qwen3 and Llama models built in-process (offline)."""

from __future__ import annotations

import dataclasses
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch
from tiny_models import BOS, EOS, PAD, PROMPTS, VOCAB  # noqa: E402

from helpers import lm as L


def _no_eos(llm):
    return dataclasses.replace(llm, eos_token_ids=())


def _prompts(llm):
    return [L.format_prompt(llm, p) for p in PROMPTS]


class Counter:
    """Counts forward calls of a module."""

    def __init__(self, module):
        self.n = 0
        self.handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, *_):
        self.n += 1

    def close(self):
        self.handle.remove()


# ---------------------------------------------------------------------------- loading / prompts


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as exc:
        L.load_llm("no-such-model")
    msg = str(exc.value)
    assert "'no-such-model'" in msg
    assert "smollm2-135m-instruct" in msg and "Qwen/Qwen3-0.6B" in msg and "Qwen/Qwen3-32B" in msg
    assert "local directory" in msg and "Hugging Face id" in msg


def test_hf_id_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not in the local cache"):
        L.load_llm("perceive-test-org/definitely-not-cached-model")


def test_load_local_dir(llms, model_dirs):
    q = llms["qwen3"]
    assert q.use_chat_template and not llms["llama"].use_chat_template
    assert q.tokenizer.padding_side == "left" and q.tokenizer.pad_token_id == PAD
    assert q.eos_token_ids == (EOS,)
    assert q.n_layers == 3 and q.hidden_size == 32
    assert q.fingerprint["source"] == "local" and q.fingerprint["dtype"] == "float32"
    assert q.fingerprint != llms["llama"].fingerprint
    assert L.load_llm(str(model_dirs["qwen3"])).fingerprint == q.fingerprint  # stable


def test_format_prompt_with_and_without_chat_template(llms):
    q, ll = llms["qwen3"], llms["llama"]
    assert L.format_prompt(q, "hello world") == "<|user|> hello world <|assistant|>"
    assert L.format_prompt(ll, "hello world") == "hello world"
    # chat prompts carry their own special tokens; raw prompts get the tokenizer's BOS
    assert L.encode_prompts(q, [L.format_prompt(q, "hello world")]) == [[4, VOCAB["hello"], VOCAB["world"], 5]]
    assert L.encode_prompts(ll, ["hello world"]) == [[BOS, VOCAB["hello"], VOCAB["world"]]]


# ---------------------------------------------------------------------------- generation


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_batched_generation_equals_one_by_one(llms, kind):
    llm = _no_eos(llms[kind])
    prompts = _prompts(llm)
    batched = L.generate(llm, prompts, max_new_tokens=12, batch_size=len(prompts))
    single = [L.generate(llm, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    for b, s, p in zip(batched, single, prompts):
        assert b["prompt"] == p
        assert b["gen_ids"] == s["gen_ids"]
        assert len(b["gen_ids"]) == 12 and not b["stopped_at_eos"]
        assert b["prompt_ids"] == L.encode_prompts(llm, [p])[0]
    assert len({tuple(b["gen_ids"]) for b in batched}) > 1  # the prompts actually matter


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_generation_matches_hf_generate(llms, kind):
    llm = _no_eos(llms[kind])
    prompts = _prompts(llm)
    ours = L.generate(llm, prompts, max_new_tokens=8, batch_size=2)
    enc = llm.tokenizer(prompts, add_special_tokens=not llm.use_chat_template, padding=True, return_tensors="pt")
    ref = llm.model.generate(**enc, max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=PAD)
    for i, o in enumerate(ours):
        assert o["gen_ids"] == ref[i, enc["input_ids"].shape[1] :].tolist()


def test_eos_truncation(llms):
    base = _no_eos(llms["qwen3"])
    prompts = _prompts(base)
    full = L.generate(base, prompts, max_new_tokens=10)
    seq = full[1]["gen_ids"]
    k = next(k for k in range(2, 10) if seq[k] not in seq[:k])  # first occurrence of a new token
    eos_llm = dataclasses.replace(base, eos_token_ids=(seq[k],))
    cut = L.generate(eos_llm, prompts, max_new_tokens=10)
    assert cut[1]["gen_ids"] == seq[:k] and cut[1]["stopped_at_eos"]
    for f, c in zip(full, cut):
        ids = f["gen_ids"]
        n = ids.index(seq[k]) if seq[k] in ids else len(ids)
        assert c["gen_ids"] == ids[:n]
        assert c["stopped_at_eos"] == (seq[k] in ids)
        assert c["text"] == base.tokenizer.decode(c["gen_ids"], skip_special_tokens=True)
    for bad in (0, -1, 2.5, True):  # no token to represent: refused before any work
        with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
            L.generate(base, prompts[:1], max_new_tokens=bad)


def test_text_skips_special_tokens(llms):
    llm = llms["qwen3"]
    (out,) = L.generate(_no_eos(llm), _prompts(llm)[:1], max_new_tokens=6)
    assert out["text"] == llm.tokenizer.decode(out["gen_ids"], skip_special_tokens=True)
    assert "<pad>" not in out["text"] and "</s>" not in out["text"]


def test_sampling_is_seeded_and_independent_of_batch(llms):
    llm = _no_eos(llms["llama"])
    prompts = _prompts(llm)
    kw = dict(max_new_tokens=10, do_sample=True, temperature=3.0, top_p=0.95)
    a = L.generate(llm, prompts, seed=7, batch_size=5, **kw)
    b = [L.generate(llm, [p], seed=7, batch_size=1, **kw)[0] for p in prompts]
    c = L.generate(llm, prompts, seed=8, batch_size=5, **kw)
    assert [x["gen_ids"] for x in a] == [x["gen_ids"] for x in b]
    assert [x["gen_ids"] for x in a] != [x["gen_ids"] for x in c]
    greedy = L.generate(llm, prompts, max_new_tokens=10)
    assert [x["gen_ids"] for x in a] != [x["gen_ids"] for x in greedy]


# ---------------------------------------------------------------------------- representations


def _reference(llm, prompt_ids, gen_ids, include_embeddings, prefix_lengths):
    """Per-item reductions computed from HF output_hidden_states on the unpadded sequence."""
    ids = torch.tensor([prompt_ids + gen_ids])
    with torch.no_grad():
        hs = llm.model(input_ids=ids, output_hidden_states=True).hidden_states
    h = torch.stack(hs)[:, 0].double().numpy()  # [layers+1, seq, hidden]
    if not include_embeddings:
        h = h[1:]
    n_p, n_g = len(prompt_ids), len(gen_ids)
    ref = {
        "gen_mean": h[:, n_p:].mean(1),
        "prompt_mean": h[:, :n_p].mean(1),
        "prompt_last": h[:, n_p - 1],
    }
    if prefix_lengths:
        ref["prefix_means"] = np.stack([h[:, n_p : n_p + min(t, n_g)].mean(1) for t in prefix_lengths])
    return ref


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("include_embeddings", [True, False])
def test_streaming_reduction_equals_output_hidden_states(llms, kind, padding_side, include_embeddings):
    llm = _no_eos(llms[kind])
    gens = L.generate(llm, _prompts(llm), max_new_tokens=7)
    gens[2]["gen_ids"] = gens[2]["gen_ids"][:3]  # different generation lengths in one batch
    prefix = (1, 2, 5, 50)
    reps = L.represent(
        llm,
        [g["prompt_ids"] for g in gens],
        [g["gen_ids"] for g in gens],
        batch_size=3,
        include_embeddings=include_embeddings,
        prefix_lengths=prefix,
        padding_side=padding_side,
    )
    n_out = 3 + int(include_embeddings)
    for g, r in zip(gens, reps):
        ref = _reference(llm, g["prompt_ids"], g["gen_ids"], include_embeddings, prefix)
        assert r["gen_mean"].shape == (n_out, 32) and r["gen_mean"].dtype == np.float32
        assert r["prefix_means"].shape == (len(prefix), n_out, 32)
        assert int(r["n_gen"]) == len(g["gen_ids"])
        for key, val in ref.items():
            np.testing.assert_allclose(r[key], val, rtol=1e-4, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(r["prefix_means"][-1], r["gen_mean"], rtol=1e-5, atol=1e-6)
    # the last entry is after the final norm, not the raw last decoder layer
    assert not np.allclose(reps[0]["gen_mean"][-1], reps[0]["gen_mean"][-2])


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_teacher_forced_equals_incremental_generation_states(llms, kind):
    """Hidden states of one forward pass over prompt+generation equal those seen while decoding."""
    llm = _no_eos(llms[kind])
    prompts = _prompts(llm)
    T = 6
    enc = llm.tokenizer(prompts, add_special_tokens=not llm.use_chat_template, padding=True, return_tensors="pt")
    width = enc["input_ids"].shape[1]
    out = llm.model.generate(
        **enc,
        max_new_tokens=T,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=PAD,
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    gens = L.generate(llm, prompts, max_new_tokens=T)
    reps = L.represent(
        llm,
        [g["prompt_ids"] for g in gens],
        [g["gen_ids"] for g in gens],
        batch_size=len(gens),
        prefix_lengths=range(1, T + 1),
        padding_side="left",
    )
    for i, (g, r) in enumerate(zip(gens, reps)):
        assert g["gen_ids"] == out.sequences[i, width:].tolist()
        n_p = len(g["prompt_ids"])
        step0 = torch.stack(out.hidden_states[0])[:, i].numpy()  # [layers+1, width, hidden]
        np.testing.assert_allclose(r["prompt_last"], step0[:, -1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(r["prompt_mean"], step0[:, width - n_p :].mean(1), rtol=1e-4, atol=1e-5)
        # per-position states from the cumulative prefix means: h_t = t*m_t - (t-1)*m_{t-1}
        m = r["prefix_means"].astype(np.float64)
        for t in range(1, T):  # generated token t-1 is fed (and its states computed) at decoding step t
            h_tf = t * m[t - 1] - (t - 1) * m[t - 2] if t > 1 else m[0]
            h_inc = torch.stack(out.hidden_states[t])[:, i, -1].numpy()
            np.testing.assert_allclose(h_tf, h_inc, rtol=1e-3, atol=1e-4, err_msg=f"item {i} position {t}")


def test_represent_empty_generation(llms):
    llm = llms["qwen3"]
    p = L.encode_prompts(llm, _prompts(llm)[:2])
    with pytest.raises(ValueError, match=r"item 1 has no generated tokens"):
        L.represent(llm, p, [[7, 8], []])
    r = L.represent(llm, p, [[7, 8], []], prefix_lengths=(1,), on_empty="nan")
    assert np.isnan(r[1]["gen_mean"]).all() and np.isnan(r[1]["prefix_means"]).all()
    assert np.isfinite(r[1]["prompt_last"]).all() and np.isfinite(r[0]["gen_mean"]).all()


def test_represent_rejects_unknown_layout(llms):
    class Weird(torch.nn.Module):
        config = llms["qwen3"].model.config

    bad = dataclasses.replace(llms["qwen3"], model=Weird())
    with pytest.raises(TypeError, match=re.escape("model.model.layers")):
        L.represent(bad, [[4, 5]], [[6]])


# ---------------------------------------------------------------------------- caching


def test_generate_cached_hits_and_misses(llms, tmp_path):
    llm = _no_eos(llms["qwen3"])
    prompts = _prompts(llm)
    prompts = prompts + [prompts[0]]  # a duplicate
    counter = Counter(llm.model)
    try:
        kw = dict(batch_size=2, cache_root=tmp_path)
        first = L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=5), **kw)
        assert counter.n > 0
        assert [g["prompt"] for g in first] == prompts
        assert [g["gen_ids"] for g in first] == [g["gen_ids"] for g in L.generate(llm, prompts, 5)]
        counter.n = 0
        again = L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=5), **kw)
        assert counter.n == 0 and again == first
        # greedy ignores sampling parameters: still a hit
        assert L.generate_cached(llm, prompts, L.Decoding(5, seed=3, temperature=0.5), **kw) == first and counter.n == 0
        # a different max_new_tokens is a different configuration: a miss
        L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=6), **kw)
        assert counter.n > 0
    finally:
        counter.close()


def test_generate_cached_resumes(llms, tmp_path):
    llm = _no_eos(llms["llama"])
    prompts = _prompts(llm)
    L.generate_cached(llm, prompts[:2], L.Decoding(max_new_tokens=4), cache_root=tmp_path)
    counter = Counter(llm.model)
    try:
        L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=4), batch_size=16, cache_root=tmp_path)
        # 3 missing prompts decoded as one batch: 1 prefill + 3 steps
        assert counter.n == 4
    finally:
        counter.close()


def test_represent_cached_hits_and_misses(llms, tmp_path):
    llm = _no_eos(llms["llama"])
    gens = L.generate(llm, _prompts(llm), max_new_tokens=5)
    base = llm.model.model
    counter = Counter(base)
    try:
        kw = dict(include_embeddings=True, prefix_lengths=(1, 3), batch_size=2, cache_root=tmp_path)
        first = L.represent_cached(llm, gens, **kw)
        assert counter.n == 3
        direct = L.represent(llm, [g["prompt_ids"] for g in gens], [g["gen_ids"] for g in gens], prefix_lengths=(1, 3))
        for a, b in zip(first, direct):
            assert set(a) == set(b)
            for k in a:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5)  # batch shapes differ
        counter.n = 0
        again = L.represent_cached(llm, gens, **kw)
        assert counter.n == 0
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a["gen_mean"], b["gen_mean"])
        L.represent_cached(llm, gens, **{**kw, "prefix_lengths": (1, 4)})
        assert counter.n > 0
    finally:
        counter.close()


# ---------------------------------------------------------------------------- the real embedded model


@pytest.mark.slow
def test_embedded_smollm2_end_to_end():
    llm = L.load_llm(L.EMBEDDED_DEFAULT)
    assert llm.use_chat_template and len(llm.fingerprint["gguf_sha256"]) == 64
    prompt = L.format_prompt(llm, "Imagine what it would look like to see a red apple.")
    assert prompt.endswith("<|im_start|>assistant\n")
    (g,) = L.generate(llm, [prompt], max_new_tokens=24)
    assert len(g["gen_ids"]) > 0 and g["text"].strip()
    words = re.findall(r"[A-Za-z]+", g["text"])
    assert (
        len(words) >= 3
        and sum(w.lower() in {"the", "a", "an", "of", "and", "is", "it", "red", "apple", "i"} for w in words) >= 1
    )
    (r,) = L.represent(llm, [g["prompt_ids"]], [g["gen_ids"]], include_embeddings=True, prefix_lengths=(4,))
    assert r["gen_mean"].shape == (31, 576) and r["prompt_last"].shape == (31, 576)
    assert r["prefix_means"].shape == (1, 31, 576) and np.isfinite(r["gen_mean"]).all()


def test_gguf_conversion_bar_is_plain_text_when_headless(monkeypatch):
    """transformers draws its GGUF conversion bar with tqdm.auto (a widget in a notebook kernel) whatever its
    progress switch says; headless, the conversion uses the package's plain-text bar, and only for its duration."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from helpers.core.progress import progress
    from helpers.lm import gguf

    original = gguf_utils.tqdm
    monkeypatch.setenv("PERCEIVE_HEADLESS", "1")
    with gguf._headless_conversion_bar():
        assert gguf_utils.tqdm is progress
    assert gguf_utils.tqdm is original
    monkeypatch.delenv("PERCEIVE_HEADLESS")
    monkeypatch.delenv("CI", raising=False)
    with gguf._headless_conversion_bar():
        assert gguf_utils.tqdm is original  # live in JupyterLab: transformers' own bar
