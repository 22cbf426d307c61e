"""The prefix property behind the generation-length ablation.

Under greedy decoding the generation of T_short tokens is the first T_short tokens of the
generation of T_long tokens (same prompts, same batch), so every shorter length is computed
from the one generation of the longest T: the representation at length t is the mean over the
first t generated positions of the single teacher-forced pass (``prefix_lengths``), and it
equals the generative representation of a separate, shorter generation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tiny_models import PROMPTS

from helpers import lm as L
from helpers.analyses.pipeline import stack_representations


def _check_prefix_property(llm, prompts, t_short, t_long, rtol=1e-4, atol=1e-5):
    # (the two passes pad their batches to different widths: equal up to float32 noise)
    short = L.generate(llm, prompts, max_new_tokens=t_short, batch_size=len(prompts))
    long = L.generate(llm, prompts, max_new_tokens=t_long, batch_size=len(prompts))
    for s, g in zip(short, long):
        assert s["prompt_ids"] == g["prompt_ids"]
        assert s["gen_ids"] == g["gen_ids"][:t_short]  # also when the long one stopped at EOS before t_short
        if len(g["gen_ids"]) < t_short:
            assert s["stopped_at_eos"] and g["stopped_at_eos"]
    # one pass over the long generations, reduced to the mean over the first t_short tokens ...
    from_long = L.represent(
        llm, [g["prompt_ids"] for g in long], [g["gen_ids"] for g in long], prefix_lengths=(t_short, t_long)
    )
    # ... equals the generative representation of the short generations
    from_short = L.represent(llm, [s["prompt_ids"] for s in short], [s["gen_ids"] for s in short])
    for a, b in zip(from_long, from_short):
        np.testing.assert_allclose(a["prefix_means"][0], b["gen_mean"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(a["prefix_means"][1], a["gen_mean"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(a["prompt_last"], b["prompt_last"], rtol=rtol, atol=atol)
    stacked = stack_representations(from_long, (t_short, t_long))
    assert set(stacked) == {"gen_mean", "prompt_mean", "prompt_last", f"prefix_T{t_short}", f"prefix_T{t_long}"}
    np.testing.assert_allclose(
        stacked[f"prefix_T{t_short}"], np.stack([b["gen_mean"] for b in from_short]), rtol=rtol, atol=atol
    )
    return short, long


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
@pytest.mark.parametrize("eos", [True, False])
def test_prefix_property_tiny_models(llms, kind, eos):
    llm = llms[kind] if eos else dataclasses.replace(llms[kind], eos_token_ids=())
    prompts = [L.format_prompt(llm, p) for p in PROMPTS]
    short, long = _check_prefix_property(llm, prompts, t_short=3, t_long=9)
    if not eos:  # without EOS every generation runs to its length: the prefix really is a strict prefix
        assert all(len(s["gen_ids"]) == 3 and len(g["gen_ids"]) == 9 for s, g in zip(short, long))


@pytest.mark.slow
def test_prefix_property_embedded_smollm2():
    llm = L.load_llm(L.EMBEDDED_DEFAULT)
    captions = ["a red apple", "a barking dog", "a steam train"]
    prompts = [L.format_prompt(llm, f"Imagine what it would look like to see {c}.") for c in captions]
    short, long = _check_prefix_property(llm, prompts, t_short=8, t_long=24, rtol=1e-4, atol=1e-4)
    assert sum(len(g["gen_ids"]) > 8 for g in long) >= 2  # the long generations do go past the short ones
