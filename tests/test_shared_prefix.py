"""A prompt prefix shared by a whole batch is computed once: same tokens, same representations.

The references are independent of the sharing: each prompt decoded alone (a batch of one shares
nothing), the same batch with sharing switched off, and the teacher-forced pass of
:func:`helpers.lm.represent` over the generated tokens.
"""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch
from test_fused import _assert_same, _eos_in_mid_batch  # noqa: E402
from tiny_models import PROMPTS  # noqa: E402

from helpers import lm as L
from helpers.lm import generation
from helpers.lm.fused import generate_and_represent
from helpers.lm.generation import shared_prefix_length
from helpers.lm.kvcache import preallocated_layer_class

CUE = "imagine a w20 w21 w22 see"  # six words every prompt starts with: a cue after the chat template's marker


def _cued(llm):
    return [L.format_prompt(llm, f"{CUE} {p}") for p in PROMPTS] + [
        L.format_prompt(llm, f"{CUE} " + "a red apple " * 4)
    ]


def _no_sharing(monkeypatch):
    monkeypatch.setattr(generation, "MIN_SHARED_PREFIX", 10**9)


@pytest.mark.parametrize(
    "rows, want",
    [
        ([[5, 6, 7, 8, 9, 1], [5, 6, 7, 8, 9, 2]], 5),
        ([[5, 6, 7, 8, 9], [5, 6, 7, 8, 9, 3, 4]], 4),  # the shortest row keeps one token of its own
        ([[5, 6, 7, 8, 9, 1], [5, 6, 7, 8, 9, 1], [5, 6, 7, 0, 9, 1]], 0),  # 3 shared: under the minimum of 4
        ([[5, 6, 7, 8, 1], [5, 6, 7, 8, 2], [5, 6, 7, 8, 9, 9]], 4),
        ([[5, 6, 7, 8, 9, 1]], 0),  # one row: nothing to share
        ([[1, 6, 7, 8, 9], [2, 6, 7, 8, 9]], 0),
    ],
)
def test_shared_prefix_length(rows, want):
    assert shared_prefix_length(rows) == want


def test_the_layer_repeats_its_rows():
    torch.manual_seed(0)
    layer = preallocated_layer_class()(capacity=9)
    k = torch.randn(1, 2, 4, 3)
    layer.update(k, -k)
    layer.batch_repeat_interleave(3)
    assert layer.keys.shape == (3, 2, 4, 3) and torch.equal(layer.keys, k.expand(3, -1, -1, -1))
    assert torch.equal(layer.values, -k.expand(3, -1, -1, -1))
    new = torch.randn(3, 2, 2, 3)  # the rows' own tokens go on filling the same buffer
    keys, _ = layer.update(new, new)
    assert torch.equal(keys[:, :, :4], k.expand(3, -1, -1, -1)) and torch.equal(keys[:, :, 4:], new)
    assert layer.capacity == 9 and layer.get_seq_length() == 6


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_the_prefix_is_computed_once_for_one_row(llms, kind):
    llm = dataclasses.replace(llms[kind], eos_token_ids=())
    prompts = _cued(llm)
    ids = L.encode_prompts(llm, prompts)
    shared = shared_prefix_length(ids)
    assert shared >= 6
    shapes = []
    handle = llm.model.register_forward_pre_hook(
        lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    try:
        L.generate(llm, prompts, max_new_tokens=3, batch_size=len(prompts), show_progress=False)
    finally:
        handle.remove()
    width = max(len(i) for i in ids) - shared
    assert shapes == [(1, shared), (len(prompts), width), (len(prompts), 1), (len(prompts), 1)]


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_sharing_keeps_the_tokens(llms, kind, monkeypatch):
    llm = llms[kind]
    prompts = _cued(llm)
    llm = _eos_in_mid_batch(llm, prompts, 9)
    batched = L.generate(llm, prompts, max_new_tokens=9, batch_size=len(prompts), show_progress=False)
    alone = [L.generate(llm, [p], max_new_tokens=9, batch_size=1, show_progress=False)[0] for p in prompts]
    _no_sharing(monkeypatch)
    unshared = L.generate(llm, prompts, max_new_tokens=9, batch_size=len(prompts), show_progress=False)
    for a, b, c in zip(batched, alone, unshared):
        assert a["gen_ids"] == b["gen_ids"] == c["gen_ids"]
        assert a["stopped_at_eos"] == b["stopped_at_eos"] == c["stopped_at_eos"]


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
@pytest.mark.parametrize("include_embeddings", [True, False])
def test_fused_with_a_shared_prefix_equals_teacher_forced(llms, kind, include_embeddings):
    T, prefixes = 9, [1, 4, 20]
    llm = llms[kind]
    prompts = _cued(llm)
    llm = _eos_in_mid_batch(llm, prompts, T)
    fused = generate_and_represent(
        llm,
        prompts,
        L.Decoding(max_new_tokens=T),
        batch_size=4,
        include_embeddings=include_embeddings,
        prefix_lengths=prefixes,
        show_progress=False,
    )
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


def test_no_sharing_under_a_sliding_window_shorter_than_the_batch(monkeypatch):
    """Sliding-window masks count cache slots: padding after a shared prefix would hide prefix tokens."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(
        vocab_size=16,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
        head_dim=8,
        use_sliding_window=True,
        sliding_window=6,
        layer_types=["full_attention", "sliding_attention"],
    )
    model = Qwen3ForCausalLM(cfg)
    assert not generation._window_allows_sharing(model, 7)
    assert generation._window_allows_sharing(model, 6)
    cfg.sliding_window = 4096
    assert generation._window_allows_sharing(model, 300)
    assert generation._window_allows_sharing(
        Qwen3ForCausalLM(
            Qwen3Config(
                vocab_size=16,
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                num_key_value_heads=1,
                intermediate_size=32,
                head_dim=8,
            )
        ),
        10**6,
    )
