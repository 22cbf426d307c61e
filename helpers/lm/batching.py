"""Batch sizes from free accelerator memory: what one sequence costs, how many fit.

Used by the notebooks' ``gen_batch_size="auto"`` / ``rep_batch_size="auto"`` on a GPU; on
CPU memory is not the limit and a fixed default is returned.
"""

from __future__ import annotations

from typing import Literal

import torch

from helpers.lm.loading import LLM


def model_devices(llm: LLM) -> list[torch.device]:
    """Every device holding part of the model (several with ``device_map="auto"``), sorted."""
    dmap = getattr(llm.model, "hf_device_map", None) or {}
    devs = {torch.device(f"cuda:{d}") if isinstance(d, int) else torch.device(d) for d in dmap.values()}
    return sorted(devs or {llm.device}, key=str)


def bytes_per_sequence(llm: LLM, max_tokens: int, kind: Literal["generate", "represent"] = "generate") -> int:
    """Estimated accelerator bytes one sequence of ``max_tokens`` tokens needs in a batch.

    ``generate``: the KV cache, ``2 x layers x kv_heads x head_dim x tokens`` elements in
    the model dtype, plus the per-layer activations of the prefill. ``represent`` (no KV
    cache): the activations plus the float32 reduction buffer (``layers x rows x hidden``)
    and its weights. Activations of one layer at a time: ``tokens x (4 hidden + 3 intermediate)``
    elements (residual, normed input, attention output, MLP gate/up/act) and the attention
    scores ``heads x tokens^2`` (an upper bound: SDPA kernels often avoid them), plus one
    float32 logits row (``vocab``) per step. Conservative by design; scale with ``safety``
    in :func:`suggest_batch_size`.
    """
    cfg = llm.model.config.get_text_config()
    elem = torch.finfo(llm.model.dtype).bits // 8 if llm.model.dtype.is_floating_point else 4
    layers, hidden = int(cfg.num_hidden_layers), int(cfg.hidden_size)
    heads = int(cfg.num_attention_heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or hidden // heads)
    inter = int(getattr(cfg, "intermediate_size", 4 * hidden))
    vocab = int(cfg.vocab_size)
    t = int(max_tokens)
    act = t * (4 * hidden + 3 * inter) * elem + heads * t * t * elem + vocab * 4
    if kind == "generate":
        return 2 * layers * kv_heads * head_dim * t * elem + act
    if kind == "represent":
        rows = 8  # gen/prompt/last + a few prefix lengths
        return act + (layers + 1) * rows * hidden * 4 + rows * t * 4
    raise ValueError(f"kind must be 'generate' or 'represent', got {kind!r}")


def suggest_batch_size(
    llm: LLM,
    max_tokens: int,
    free_bytes: int | None = None,
    *,
    kind: Literal["generate", "represent"] = "generate",
    safety: float = 0.7,
    max_batch: int = 256,
    cpu_default: int = 16,
) -> int:
    """A batch size that fits ``safety x free_bytes`` given :func:`bytes_per_sequence`.

    ``max_tokens`` is the longest sequence (prompt + generated tokens). ``free_bytes``
    defaults to the free memory of the model's CUDA devices (``torch.cuda.mem_get_info``,
    summed over the devices ``device_map="auto"`` used: the KV cache is split with the
    layers). On CPU, with ``free_bytes`` not given, memory is not the limit and
    ``cpu_default`` is returned. The result lies in ``[1, max_batch]``.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if free_bytes is None:
        devs = [d for d in model_devices(llm) if d.type == "cuda"]
        if not devs:
            return max(1, min(int(cpu_default), int(max_batch)))
        free_bytes = sum(torch.cuda.mem_get_info(d)[0] for d in devs)
    per = bytes_per_sequence(llm, max_tokens, kind)
    return int(max(1, min(int(max_batch), int(safety * free_bytes) // per)))


def resolve_batch_size(
    value: int | str, llm: LLM, max_tokens: int, kind: Literal["generate", "represent"] = "generate"
) -> int:
    """A notebook's ``gen_batch_size`` / ``rep_batch_size`` parameter: a positive int, or ``"auto"``
    (:func:`suggest_batch_size` for ``max_tokens``)."""
    if isinstance(value, str):
        if value.strip().lower() != "auto":
            raise ValueError(f"batch size must be a positive integer or 'auto', got {value!r}")
        return suggest_batch_size(llm, max_tokens, kind=kind)
    if int(value) < 1:
        raise ValueError(f"batch size must be a positive integer or 'auto', got {value!r}")
    return int(value)


__all__ = ["bytes_per_sequence", "model_devices", "resolve_batch_size", "suggest_batch_size"]
