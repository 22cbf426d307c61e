"""helpers.lm.head: the LM head computed in vocabulary chunks gives the very same logits, so decoding does not change."""

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
from helpers.lm import head as H
from helpers.lm.fused import generate_and_represent


@pytest.mark.parametrize(
    "hidden, vocab, rows",
    [(576, 49152, (1, 7, 64, 113, 128)), (640, 262144, (1, 128))],  # SmolLM2-135M's and Gemma-3-270M's heads
    ids=["smollm2", "gemma3"],
)
def test_chunked_logits_are_bit_for_bit_the_single_product(hidden, vocab, rows):
    g = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(hidden, vocab, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(vocab, hidden, generator=g) * 0.05)
    chunked = H.ChunkedHead(linear, H.CHUNK_ROWS)
    for m in rows:
        x = torch.randn(m, 1, hidden, generator=g)  # [rows, one position, hidden], as the decoding loop calls it
        with torch.inference_mode():
            assert torch.equal(chunked(x), linear(x)), f"{m} rows"


def test_a_bias_is_split_with_its_rows():
    linear = torch.nn.Linear(5, 23)
    x = torch.randn(4, 5)
    with torch.no_grad():
        np.testing.assert_allclose(H.ChunkedHead(linear, 4)(x), linear(x), rtol=1e-6, atol=1e-6)


def test_the_swap_lasts_for_the_block_only_and_only_where_it_helps(llms):
    model = llms["llama"].model
    head = model.get_output_embeddings()
    with H.chunked_head(model, chunk=3):
        swapped = model.get_output_embeddings()
        assert isinstance(swapped, H.ChunkedHead) and swapped.weight is head.weight
    assert model.get_output_embeddings() is head
    with H.chunked_head(model, chunk=head.weight.shape[0]):  # a vocabulary of one or two chunks: left alone
        assert model.get_output_embeddings() is head
    with pytest.raises(KeyError):
        with H.chunked_head(model, chunk=3):
            raise KeyError("a failed batch")
    assert model.get_output_embeddings() is head  # restored after an error too


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
def test_decoding_is_the_same_with_a_chunked_head(llms, kind, monkeypatch):
    llm = llms[kind]
    prompts = [L.format_prompt(llm, p) for p in PROMPTS]
    free = L.generate(dataclasses.replace(llm, eos_token_ids=()), prompts, max_new_tokens=9, show_progress=False)
    llm = dataclasses.replace(llm, eos_token_ids=(free[0]["gen_ids"][3],))  # rows leave the batch early

    def run():
        return generate_and_represent(
            llm, prompts, L.Decoding(max_new_tokens=9), batch_size=3, prefix_lengths=[2, 5], show_progress=False
        )

    monkeypatch.setattr(H, "CHUNK_ROWS", 10**9)  # never chunked
    whole = run()
    monkeypatch.setattr(H, "CHUNK_ROWS", 3)  # every tiny vocabulary chunked
    seen = []
    monkeypatch.setattr(H.ChunkedHead, "forward", _counting(H.ChunkedHead.forward, seen))
    chunked = run()
    assert seen, "the chunked head was never used"
    assert [o["gen_ids"] for o in whole] == [o["gen_ids"] for o in chunked]
    for a, b in zip(whole, chunked):
        for key in ("gen_mean", "prompt_mean", "prefix_means"):
            np.testing.assert_array_equal(a["representation"][key], b["representation"][key], err_msg=key)


def _counting(forward, seen):
    def wrapped(self, x):
        seen.append(x.shape)
        return forward(self, x)

    return wrapped
