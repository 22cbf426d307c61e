"""helpers.lm.fused: the representation reduced while decoding equals the teacher-forced pass over its output."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
from tiny_models import PROMPTS  # noqa: E402

from helpers import lm as L
from helpers.lm.fused import generate_and_represent

KINDS = ("gen_mean", "prompt_mean", "prompt_last")


def _prompts(llm):
    # prompts of different lengths share a batch: left padding in the fused pass
    return [L.format_prompt(llm, p) for p in PROMPTS] + [L.format_prompt(llm, "a much longer prompt " * 3)]


def _eos_in_mid_batch(llm, prompts, T):
    """The tiny model with an EOS token chosen so that some generations stop early and others do not."""
    free = L.generate(dataclasses.replace(llm, eos_token_ids=()), prompts, max_new_tokens=T, show_progress=False)
    seq = free[0]["gen_ids"]
    tok = next(t for k, t in enumerate(seq) if k >= 2 and t not in seq[:k])
    llm = dataclasses.replace(llm, eos_token_ids=(tok,))
    outs = L.generate(llm, prompts, max_new_tokens=T, show_progress=False)
    assert any(o["stopped_at_eos"] for o in outs) and not all(o["stopped_at_eos"] for o in outs)
    return llm


def _assert_same(fused, reference, prefix_lengths, rtol=1e-4, atol=1e-5):
    for f, r in zip(fused, reference):
        rep = f["representation"]
        assert int(rep["n_gen"]) == int(r["n_gen"]) == len(f["gen_ids"])
        for kind in KINDS:
            np.testing.assert_allclose(rep[kind], r[kind], rtol=rtol, atol=atol, err_msg=kind)
        if prefix_lengths:
            assert rep["prefix_means"].shape == r["prefix_means"].shape
            np.testing.assert_allclose(rep["prefix_means"], r["prefix_means"], rtol=rtol, atol=atol, err_msg="prefix")


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
@pytest.mark.parametrize("include_embeddings", [True, False])
def test_fused_equals_teacher_forced_with_padding_eos_and_prefixes(llms, kind, include_embeddings):
    T, prefixes = 9, [1, 3, 9, 20]  # 9 = T and 20 > T: a prefix as long as the generation is its whole mean
    llm = llms[kind]
    prompts = _prompts(llm)
    llm = _eos_in_mid_batch(llm, prompts, T)
    fused = generate_and_represent(
        llm,
        prompts,
        L.Decoding(max_new_tokens=T),
        batch_size=3,
        include_embeddings=include_embeddings,
        prefix_lengths=prefixes,
        show_progress=False,
    )
    plain = L.generate(llm, prompts, max_new_tokens=T, batch_size=3, show_progress=False)
    assert [f["gen_ids"] for f in fused] == [p["gen_ids"] for p in plain]  # the tokens do not change
    assert [f["stopped_at_eos"] for f in fused] == [p["stopped_at_eos"] for p in plain]
    kept = [i for i, f in enumerate(fused) if f["gen_ids"]]
    reference = L.represent(
        llm,
        [fused[i]["prompt_ids"] for i in kept],
        [fused[i]["gen_ids"] for i in kept],
        batch_size=2,
        include_embeddings=include_embeddings,
        prefix_lengths=prefixes,
        show_progress=False,
    )
    _assert_same([fused[i] for i in kept], reference, prefixes)
    n_layers = llm.n_layers + int(include_embeddings)
    assert fused[0]["representation"]["gen_mean"].shape == (n_layers, llm.hidden_size)


def test_fused_does_not_depend_on_the_batch(llms):
    llm = dataclasses.replace(llms["qwen3"], eos_token_ids=())
    prompts = _prompts(llm)
    one = generate_and_represent(
        llm, prompts, L.Decoding(max_new_tokens=5), batch_size=1, prefix_lengths=[2], show_progress=False
    )
    many = generate_and_represent(
        llm, prompts, L.Decoding(max_new_tokens=5), batch_size=4, prefix_lengths=[2], show_progress=False
    )
    _assert_same(one, [m["representation"] for m in many], [2])


def test_a_generation_that_stops_at_once_has_nan_generative_means(llms):
    llm = llms["qwen3"]
    prompts = _prompts(llm)[:2]
    first = L.generate(dataclasses.replace(llm, eos_token_ids=()), prompts, max_new_tokens=1, show_progress=False)
    eos_first = dataclasses.replace(llm, eos_token_ids=(first[0]["gen_ids"][0],))
    out = generate_and_represent(
        eos_first, prompts, L.Decoding(max_new_tokens=4), prefix_lengths=[2], show_progress=False
    )
    rep = out[0]["representation"]
    assert out[0]["gen_ids"] == [] and int(rep["n_gen"]) == 0
    assert np.isnan(rep["gen_mean"]).all() and np.isnan(rep["prefix_means"]).all()
    assert np.isfinite(rep["prompt_mean"]).all() and np.isfinite(rep["prompt_last"]).all()


def test_sampled_fused_generations_are_the_sampled_ones(llms):
    llm = dataclasses.replace(llms["llama"], eos_token_ids=())
    prompts = _prompts(llm)
    d = L.Decoding(max_new_tokens=6, do_sample=True, seed=3, temperature=0.8, top_p=0.9)
    fused = generate_and_represent(llm, prompts, d, batch_size=2, show_progress=False)
    plain = L.generate(
        llm, prompts, 6, do_sample=True, seed=3, temperature=0.8, top_p=0.9, batch_size=2, show_progress=False
    )
    assert [f["gen_ids"] for f in fused] == [p["gen_ids"] for p in plain]


def test_bad_prefix_lengths_are_refused(llms):
    with pytest.raises(ValueError, match="prefix lengths must be >= 1"):
        generate_and_represent(llms["qwen3"], ["x"], L.Decoding(max_new_tokens=2), prefix_lengths=[0])


def test_generation_with_a_reduction_leaves_nothing_for_the_representation_pass(llms, tmp_cache, capsys):
    llm = dataclasses.replace(llms["qwen3"], eos_token_ids=())
    prompts = _prompts(llm)
    d, red = L.Decoding(max_new_tokens=5), L.Reduction(True, (2, 4))
    gens = L.generate_cached(llm, prompts, d, batch_size=2, reduction=red)
    capsys.readouterr()
    reps = L.represent_cached(llm, gens, include_embeddings=True, prefix_lengths=[2, 4], batch_size=2)
    assert f"represent: {len(prompts)} cached, 0 to compute" in capsys.readouterr().out
    teacher = L.represent(
        llm, [g["prompt_ids"] for g in gens], [g["gen_ids"] for g in gens], prefix_lengths=[2, 4], show_progress=False
    )
    _assert_same([{"representation": r, "gen_ids": g["gen_ids"]} for r, g in zip(reps, gens)], teacher, [2, 4])
    # other settings are another representation: computed by the teacher-forced pass
    L.represent_cached(llm, gens, include_embeddings=False, prefix_lengths=[2, 4], batch_size=2)
    assert f"represent: 0 cached, {len(prompts)} to compute" in capsys.readouterr().out


def test_cached_generations_are_not_generated_again_for_a_reduction(llms, tmp_cache, capsys):
    llm = dataclasses.replace(llms["llama"], eos_token_ids=())
    prompts = _prompts(llm)
    d = L.Decoding(max_new_tokens=4)
    first = L.generate_cached(llm, prompts, d, batch_size=2)
    capsys.readouterr()
    again = L.generate_cached(llm, prompts, d, batch_size=2, reduction=L.Reduction(True, ()))
    assert f"generate: {len(prompts)} cached, 0 to compute" in capsys.readouterr().out
    assert [g["gen_ids"] for g in again] == [g["gen_ids"] for g in first]
    L.represent_cached(llm, again, batch_size=2)  # nothing was reduced while generating: the teacher-forced pass runs
    assert f"represent: 0 cached, {len(prompts)} to compute" in capsys.readouterr().out
