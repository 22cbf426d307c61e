"""Batched generation: left-padded, KV-cached decoding with our own small loop (greedy by default).

The prompt tokens that a whole batch shares (a chat template's system prompt, a cue's first
words) go through the model once, for one row, and their keys and values serve every row
(:func:`shared_prefix_length`, :func:`_prefill`); the rest of each prompt is left-padded after
them. Finished rows are dropped from the batch as soon as they emit EOS, and sampling draws from a
per-item ``torch.Generator`` seeded from ``(seed, prompt)``, so a sampled continuation does not
depend on which other prompts share its batch. :class:`Decoding` holds the settings that
determine the generated tokens (and so the cache key of :func:`helpers.lm.generate_cached`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from helpers.core.cache import stable_hash
from helpers.core.progress import progress
from helpers.lm.head import chunked_head
from helpers.lm.kvcache import new_kv_cache
from helpers.lm.loading import LLM, encode_prompts


def _cache_kwarg(model: Any) -> str:
    """Name of the KV-cache argument of ``model.forward`` (``cache`` in transformers>=5.2x)."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class DecodeObserver(Protocol):
    """What :func:`_generate_batch` tells a reduction that watches it (:mod:`helpers.lm.fused`).

    ``shared(length)`` comes before the forward over the prompt prefix that all rows share (one
    row of ``length`` tokens: :func:`shared_prefix_length`; not called when none is shared);
    ``prefill(mask)`` before the forward over the rest of each prompt, left-padded (``mask``: its
    attention mask, ``[rows, width]``); ``feed(rows)`` before each forward that feeds one token to
    each of the batch's original ``rows`` still decoding, ``fed(rows)`` after it.
    """

    def shared(self, length: int) -> None: ...

    def prefill(self, mask: torch.Tensor) -> None: ...

    def feed(self, rows: list[int]) -> None: ...

    def fed(self, rows: list[int]) -> None: ...


@dataclass(frozen=True)
class Decoding:
    """Generation settings that determine the generated tokens (and so the cache key).

    :func:`generate_cached` takes one
    (:func:`generate` takes the same fields as keyword arguments); ``cache_config()`` is the
    part of the cache key they determine (seed, temperature and top-p only matter when sampling).
    """

    max_new_tokens: int = 128
    do_sample: bool = False
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(
                f"max_new_tokens must be a positive integer (the paper generates 128 tokens), got {n!r}: "
                "with no generated token there is no generative representation"
            )
        if self.do_sample and not float(self.temperature) > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature!r}")
        if not 0 < float(self.top_p) <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")

    def cache_config(self) -> dict[str, Any]:
        s = self.do_sample
        return {
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": bool(s),
            "seed": int(self.seed) if s else None,
            "temperature": float(self.temperature) if s else None,
            "top_p": float(self.top_p) if s else None,
        }


def item_seed(seed: int, prompt: str) -> int:
    """The per-item sampling seed: a stable function of the run seed and the prompt string."""
    return int(stable_hash({"seed": int(seed), "prompt": prompt}, 15), 16)


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids, mask


#: a batch's prompts that start with this many identical tokens or more compute that prefix once
MIN_SHARED_PREFIX = 4


def shared_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """Tokens at the start of every row of a batch that the prefill computes once (0: none).

    The longest common prefix of the rows (a chat template's system prompt and turn markers,
    a cue's opening words), leaving each row at least one token of its own (the prefill's last
    position gives the first next-token logits); 0 for a single row or a prefix shorter than
    :data:`MIN_SHARED_PREFIX`.
    """
    if len(seqs) < 2:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs) - 1
    for s in seqs[1:]:
        n = next((i for i in range(n) if s[i] != first[i]), n)
    return n if n >= MIN_SHARED_PREFIX else 0


def _window_allows_sharing(model: Any, length: int) -> bool:
    """Whether a shared prefix keeps every attention span of a ``length``-position batch.

    A row's own tokens sit after the left padding that follows the shared prefix, and
    transformers' sliding-window masks count cache slots, not positions: with a window shorter
    than the batch, a padded row would see fewer prefix tokens than it should.
    """
    cfg = model.config.get_text_config()
    window = getattr(cfg, "sliding_window", None)
    slides = "sliding_attention" in (getattr(cfg, "layer_types", None) or ()) or bool(
        getattr(cfg, "use_sliding_window", False)
    )
    return not (slides and window is not None and int(window) < length)


def _next_tokens(
    logits: torch.Tensor,
    do_sample: bool,
    temperature: float,
    top_p: float,
    generators: Sequence[torch.Generator | None],
) -> torch.Tensor:
    """Greedy argmax, or one draw per row from that row's own generator (temperature, top-p)."""
    if not do_sample:
        return logits.argmax(dim=-1).cpu()
    logits = logits.float().cpu() / max(float(temperature), 1e-6)
    if top_p < 1.0:  # nucleus filtering with the same convention as HF's TopPLogitsWarper
        sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1.0 - top_p)
        remove[..., -1] = False
        logits = logits.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.stack([torch.multinomial(probs[j], 1, generator=g).squeeze(0) for j, g in enumerate(generators)])


def _generate_batch(llm: LLM, *args: Any, **kwargs: Any) -> list[tuple[list[int], bool]]:
    """:func:`_decode_batch` with the LM head computed in vocabulary chunks on the CPU (same values: :mod:`helpers.lm.head`)."""
    with chunked_head(llm.model):
        return _decode_batch(llm, *args, **kwargs)


@torch.inference_mode()
def _prefill(
    llm: LLM, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, observer: DecodeObserver | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """The prompts' forward: the next-token logits of each row, its attention mask and last
    position, and the KV cache (room for every new token; the observer feeds the last one too).

    A prefix that all rows share (:func:`shared_prefix_length`) is computed once, for one row, and
    its keys and values copied to every row: ``[shared prefix | left padding | own tokens]``.
    """
    model, dev, n = llm.model, llm.device, len(prompt_ids)
    shared = shared_prefix_length(prompt_ids)
    if shared and not _window_allows_sharing(model, max(map(len, prompt_ids)) + max_new_tokens):
        shared = 0
    ids, mask = _left_pad([p[shared:] for p in prompt_ids], int(llm.tokenizer.pad_token_id))
    positions = shared + (mask.cumsum(-1) - 1).clamp(min=0)
    cache = new_kv_cache(model, capacity=shared + ids.shape[1] + max_new_tokens)
    ckw = _cache_kwarg(model)
    if shared:
        if observer is not None:
            observer.shared(shared)
        model(
            input_ids=torch.as_tensor([list(prompt_ids[0][:shared])], dtype=torch.long).to(dev),
            attention_mask=torch.ones((1, shared), dtype=torch.long, device=dev),
            position_ids=torch.arange(shared, device=dev)[None],
            use_cache=True,
            logits_to_keep=1,
            **{ckw: cache},
        )
        cache.batch_repeat_interleave(n)
    mask = torch.cat([mask.new_ones((n, shared)), mask], dim=1).to(dev)
    if observer is not None:
        observer.prefill(mask[:, shared:])
    logits = model(
        input_ids=ids.to(dev),
        attention_mask=mask,
        position_ids=positions.to(dev),
        use_cache=True,
        logits_to_keep=1,
        **{ckw: cache},
    ).logits[:, -1, :]
    return logits, mask, positions[:, -1].clone(), cache


@torch.inference_mode()
def _decode_batch(
    llm: LLM,
    prompt_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float,
    generators: Sequence[torch.Generator | None],
    observer: DecodeObserver | None = None,
) -> list[tuple[list[int], bool]]:
    """Decode one left-padded batch; rows leave the batch (and its KV cache) when they hit EOS.

    A prefix that all prompts share is computed once (:func:`_prefill`).

    With an ``observer`` (:class:`DecodeObserver`) the loop also feeds the last sampled token of
    the rows that reach ``max_new_tokens`` (one more forward without sampling), so that every
    generated token has passed through the network once; the tokens are the same either way.
    """
    n = len(prompt_ids)
    out: list[list[int]] = [[] for _ in range(n)]
    stopped = [False] * n
    if max_new_tokens <= 0 or n == 0:
        return [(o, s) for o, s in zip(out, stopped)]
    model, dev = llm.model, llm.device
    eos, ckw = set(llm.eos_token_ids), _cache_kwarg(model)
    logits, mask, last_pos, cache = _prefill(llm, prompt_ids, max_new_tokens, observer)
    active = list(range(n))  # original row of each row still in the batch
    for step in range(max_new_tokens):
        nxt = _next_tokens(logits, do_sample, temperature, top_p, [generators[r] for r in active])
        keep: list[int] = []
        for j, (row, tok) in enumerate(zip(active, nxt.tolist())):
            if tok in eos:
                stopped[row] = True
            else:
                out[row].append(tok)
                keep.append(j)
        final = step == max_new_tokens - 1
        if not keep or (final and observer is None):
            break
        if len(keep) < len(active):
            sel = torch.as_tensor(keep, dtype=torch.long)
            cache.batch_select_indices(sel)  # CPU indices: valid for cache layers on any device
            mask, nxt, last_pos = mask[sel.to(dev)], nxt[sel], last_pos[sel]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        last_pos = last_pos + 1
        if observer is not None:
            observer.feed(active)
        logits = model(
            input_ids=nxt[:, None].to(dev),
            attention_mask=mask,
            position_ids=last_pos[:, None].to(dev),
            use_cache=True,
            **{ckw: cache},
        ).logits[:, -1, :]
        if observer is not None:
            observer.fed(active)
        if final:
            break
    return [(o, s) for o, s in zip(out, stopped)]


def _generate(
    llm: LLM,
    prompts: Sequence[str],
    decoding: Decoding,
    batch_size: int,
    show_progress: bool,
    observe: Callable[[list[list[int]]], Any] | None = None,
) -> list[dict[str, Any]]:
    """Decode ``prompts`` in batches of similar length. With ``observe`` (a factory of a
    :class:`DecodeObserver` per batch, given the batch's prompt ids, that also has
    ``summary(row, n_gen)``), each result gets that summary as ``"representation"``."""
    d = decoding
    prompt_ids = encode_prompts(llm, prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompt_ids[i]))
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    bs = max(1, int(batch_size))
    bar = progress(total=len(prompts), desc="generate", unit="prompt", disable=not show_progress)
    with bar:
        for start in range(0, len(order), bs):
            rows = order[start : start + bs]
            gens = [torch.Generator().manual_seed(item_seed(d.seed, prompts[i])) if d.do_sample else None for i in rows]
            batch_ids = [prompt_ids[i] for i in rows]
            observer = observe(batch_ids) if observe is not None else None
            outs = _generate_batch(
                llm, batch_ids, d.max_new_tokens, d.do_sample, d.temperature, d.top_p, gens, observer
            )
            for j, (i, (gen_ids, stopped)) in enumerate(zip(rows, outs)):
                results[i] = {
                    "prompt": prompts[i],
                    "text": llm.tokenizer.decode(gen_ids, skip_special_tokens=True),
                    "prompt_ids": prompt_ids[i],
                    "gen_ids": gen_ids,
                    "stopped_at_eos": stopped,
                }
                if observer is not None:
                    results[i]["representation"] = observer.summary(j, len(gen_ids))
            bar.update(len(rows))
    return results  # type: ignore[return-value]


def generate(
    llm: LLM,
    prompts: list[str],
    max_new_tokens: int,
    do_sample: bool = False,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 16,
    *,
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """Continue each exact prompt string (apply :func:`format_prompt` first for chat models).

    Prompts are sorted by token length and decoded ``batch_size`` at a time with left padding
    and a KV cache; results come back in input order. Greedy unless ``do_sample``; sampled
    items use their own generator seeded by :func:`item_seed` ``(seed, prompt)``, so the
    continuation of a prompt does not depend on the batch it lands in (up to floating-point
    differences between batch shapes). Per item: ``prompt``, ``text`` (decoded, special
    tokens skipped), ``prompt_ids``, ``gen_ids`` (cut at the first EOS, EOS excluded) and
    ``stopped_at_eos``.

    Many parameters because it takes :class:`Decoding`'s fields as keywords, the low-level call for code that
    has no Decoding (:func:`generate_cached` takes one).
    """
    decoding = Decoding(max_new_tokens, do_sample, seed, temperature, top_p)
    return _generate(llm, prompts, decoding, batch_size, show_progress)


__all__ = ["Decoding", "generate", "item_seed", "shared_prefix_length"]
