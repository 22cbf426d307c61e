"""Generation and representation cached on disk, keyed by everything that determines them.

:func:`generate_cached` and :func:`represent_cached` wrap :func:`helpers.lm.generate` /
:func:`helpers.lm.represent` in a :class:`helpers.cache.Store`: the config (model fingerprint,
library versions and device class, decoding or reduction settings, a step version) names a
folder, each item is one file written atomically as its batch finishes, so a killed run
resumes where it stopped. The ``"step"`` names (``llm.generate``, ``llm.represent``) are part
of the cache keys and predate the ``lm`` package; they stay as they are so existing caches hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from helpers.cache import Store, map_cached, stable_hash
from helpers.lm.batching import model_devices
from helpers.lm.generation import Decoding, _generate
from helpers.lm.loading import LLM, encode_prompts
from helpers.lm.representation import represent
from helpers.paths import cache_root as default_cache_root
from helpers.runtime import LLM_PACKAGES, runtime_key

#: Bump when a change to the generation code changes its results (invalidates cached generations).
GENERATE_STEP_VERSION = 1
#: Bump when a change to the representation code changes its results.
REPRESENT_STEP_VERSION = 1


def generate_cached(
    llm: LLM,
    prompts: list[str],
    decoding: Decoding,
    *,
    batch_size: int = 16,
    cache_root: str | Path | None = None,
) -> list[dict[str, Any]]:
    """:func:`generate` with ``decoding``, stored per prompt under ``cache_root/generations/<config hash>/``.

    Config: model fingerprint, library versions and device class (:func:`helpers.runtime.runtime_key`),
    ``decoding.cache_config()`` (``max_new_tokens``; seed, temperature
    and top-p only when sampling, since greedy ignores them) and ``GENERATE_STEP_VERSION``.
    Item key: hash of the exact prompt string. Because each sampled item has its own seeded
    generator (:func:`item_seed`), ``batch_size`` is not part of the key. Items are written as
    each batch finishes, so an interrupted run resumes.
    """
    config = {
        "step": "llm.generate",
        "version": GENERATE_STEP_VERSION,
        "model": llm.fingerprint,
        "runtime": runtime_key(LLM_PACKAGES, model_devices(llm)),
        **decoding.cache_config(),
    }
    store = Store(cache_root or default_cache_root(), "generations", config, kind="json")
    keys = [stable_hash(p) for p in prompts]
    # Hand the work over sorted by length so that each batch needs little padding.
    distinct = list(dict.fromkeys(prompts))  # repeated prompts (captions shared by items) are generated once
    lengths = {p: len(ids) for p, ids in zip(distinct, encode_prompts(llm, distinct))} if distinct else {}
    order = sorted(range(len(prompts)), key=lambda i: lengths[prompts[i]])

    def compute(batch: list[str]) -> list[dict[str, Any]]:
        return _generate(llm, batch, decoding, len(batch), False)

    got = map_cached(
        store, [keys[i] for i in order], [prompts[i] for i in order], compute, batch_size=batch_size, desc="generate"
    )
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    for i, r in zip(order, got):
        results[i] = r
    return results  # type: ignore[return-value]


def _label(generation: Mapping[str, Any], index: int) -> str:
    """How an error names one generation: its item id and cue when the caller passed them."""
    parts = [f"{k}={generation[k]!r}" for k in ("id", "cue") if k in generation]
    return f"item {' '.join(parts)}" if parts else f"generation {index} of the list"


def represent_cached(
    llm: LLM,
    generations: Sequence[Mapping[str, Any]],
    *,
    include_embeddings: bool = True,
    prefix_lengths: Sequence[int] = (),
    batch_size: int = 8,
    cache_root: str | Path | None = None,
    on_empty: Literal["error", "nan"] = "error",
) -> list[dict[str, np.ndarray]]:
    """:func:`represent` over ``generations`` (dicts with ``prompt_ids`` and ``gen_ids``; ``id`` and
    ``cue``, when present, name an item in errors), stored as npz.

    Config: model fingerprint, library versions and device class, ``include_embeddings``, ``prefix_lengths``, ``on_empty`` and
    ``REPRESENT_STEP_VERSION``. Item key: hash of ``prompt_ids`` + ``gen_ids``.
    """
    config = {
        "step": "llm.represent",
        "version": REPRESENT_STEP_VERSION,
        "model": llm.fingerprint,
        "runtime": runtime_key(LLM_PACKAGES, model_devices(llm)),
        "include_embeddings": bool(include_embeddings),
        "prefix_lengths": [int(t) for t in prefix_lengths],
        "on_empty": on_empty,
    }
    store = Store(cache_root or default_cache_root(), "representations", config, kind="npz")
    pairs = [(list(map(int, g["prompt_ids"])), list(map(int, g["gen_ids"]))) for g in generations]
    if on_empty == "error" and (empty := [i for i, (_, q) in enumerate(pairs) if not q]):
        names = [_label(generations[i], i) for i in empty]
        raise ValueError(
            f"{len(empty)} generation(s) have no generated tokens, so no generative representation: "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}. The model ended its answer at once; "
            "drop these items from the run, or pass on_empty='nan' to keep them as NaN"
        )
    keys = [stable_hash({"prompt_ids": p, "gen_ids": q}) for p, q in pairs]
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))

    def compute(batch: list[tuple[list[int], list[int]]]) -> list[dict[str, np.ndarray]]:
        return represent(
            llm,
            [p for p, _ in batch],
            [q for _, q in batch],
            batch_size=len(batch),
            include_embeddings=include_embeddings,
            prefix_lengths=prefix_lengths,
            on_empty=on_empty,
            show_progress=False,
        )

    got = map_cached(
        store, [keys[i] for i in order], [pairs[i] for i in order], compute, batch_size=batch_size, desc="represent"
    )
    results: list[dict[str, np.ndarray] | None] = [None] * len(pairs)
    for i, r in zip(order, got):
        results[i] = r
    return results  # type: ignore[return-value]


__all__ = ["GENERATE_STEP_VERSION", "REPRESENT_STEP_VERSION", "generate_cached", "represent_cached"]
