"""helpers.lm.kvcache: the preallocated KV cache holds what transformers' growing cache holds, so decoding does not change."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch
from tiny_models import PROMPTS  # noqa: E402

from helpers import lm as L
from helpers.lm import generation
from helpers.lm.fused import generate_and_represent
from helpers.lm.kvcache import new_kv_cache, preallocated_layer_class


def _growing_cache(monkeypatch):
    """Make the decoding loop use transformers' own concatenating ``DynamicCache``."""
    monkeypatch.setattr(generation, "new_kv_cache", lambda model, capacity=None: new_kv_cache(model))


def test_the_layer_holds_what_concatenation_holds():
    torch.manual_seed(0)
    layer = preallocated_layer_class()(capacity=7)
    steps = [torch.randn(3, 2, s, 4) for s in (4, 1, 1)]
    for k in steps:
        keys, values = layer.update(k, -k)
    want = torch.cat(steps, dim=-2)
    assert torch.equal(keys, want) and torch.equal(values, -want)
    assert layer.get_seq_length() == 6 and layer.get_mask_sizes(1) == (7, 0)
    layer.batch_select_indices(torch.tensor([0, 2]))  # rows 0 and 2 go on decoding
    keys, _ = layer.update(torch.ones(2, 2, 1, 4), torch.ones(2, 2, 1, 4))
    assert torch.equal(keys[:, :, :6], want[[0, 2]]) and torch.equal(keys[:, :, 6], torch.ones(2, 2, 4))
    with pytest.raises(RuntimeError, match="capacity 7"):
        layer.update(torch.ones(2, 2, 1, 4), torch.ones(2, 2, 1, 4))


def test_sliding_window_layers_keep_transformers_class():
    from transformers import Qwen3Config, Qwen3ForCausalLM
    from transformers.cache_utils import DynamicSlidingWindowLayer

    cfg = Qwen3Config(
        vocab_size=16,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
        head_dim=8,
        use_sliding_window=True,
        sliding_window=4,
        layer_types=["full_attention", "sliding_attention"],
    )
    cache = new_kv_cache(Qwen3ForCausalLM(cfg), capacity=10)
    assert [type(layer) for layer in cache.layers] == [preallocated_layer_class(), DynamicSlidingWindowLayer]


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_decoding_is_the_same_with_either_cache(llms, kind, monkeypatch):
    llm = llms[kind]
    prompts = [L.format_prompt(llm, p) for p in PROMPTS] + [L.format_prompt(llm, "a much longer prompt " * 3)]
    free = L.generate(dataclasses.replace(llm, eos_token_ids=()), prompts, max_new_tokens=9, show_progress=False)
    llm = dataclasses.replace(llm, eos_token_ids=(free[0]["gen_ids"][3],))  # some rows leave the batch early

    def run():
        return generate_and_represent(
            llm, prompts, L.Decoding(max_new_tokens=9), batch_size=3, prefix_lengths=[2, 5], show_progress=False
        )

    pre = run()
    _growing_cache(monkeypatch)
    grown = run()
    assert any(o["stopped_at_eos"] for o in pre) and not all(o["stopped_at_eos"] for o in pre)
    assert [o["gen_ids"] for o in pre] == [o["gen_ids"] for o in grown]
    for a, b in zip(pre, grown):
        for key in ("gen_mean", "prompt_mean", "prompt_last", "prefix_means"):
            np.testing.assert_allclose(
                a["representation"][key], b["representation"][key], rtol=1e-6, atol=1e-7, err_msg=key
            )
