"""Generation and representation cached on disk, keyed by everything that determines them.

:func:`generate_cached` and :func:`represent_cached` wrap :func:`helpers.lm.generate` /
:func:`helpers.lm.represent` in a :class:`helpers.core.cache.Store`: the config (model fingerprint,
library versions and device class, decoding or reduction settings, a step version) names a
folder, each item is one file written atomically as its batch finishes, so a killed run
resumes where it stopped. The ``"step"`` names (``llm.generate``, ``llm.represent``) are part
of the cache keys and predate the ``lm`` package; they stay as they are so existing caches hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from helpers.core.cache import Store, map_cached, stable_hash
from helpers.core.paths import cache_root as default_cache_root
from helpers.core.runtime import LLM_PACKAGES, runtime_key
from helpers.lm.batching import model_devices
from helpers.lm.fused import generate_and_represent
from helpers.lm.generation import Decoding, _generate
from helpers.lm.loading import LLM, encode_prompts
from helpers.lm.representation import represent

#: Bump when a change to the generation code changes its results (invalidates cached generations).
#: 2: a batch's shared prompt prefix is computed once (one default generation of 900 differs, at a logit tie)
GENERATE_STEP_VERSION = 2
#: Bump when a change to the representation code changes its results.
REPRESENT_STEP_VERSION = 1
#: Bump when a change to the reduction during generation changes its results.
#: 2: the shared prompt prefix's states are summed once and added to each row's prompt mean
FUSED_STEP_VERSION = 2


def generate_cached(
    llm: LLM,
    prompts: list[str],
    decoding: Decoding,
    *,
    batch_size: int = 16,
    cache_root: str | Path | None = None,
    reduction: Reduction | None = None,
) -> list[dict[str, Any]]:
    """:func:`generate` with ``decoding``, stored per prompt under ``cache_root/generations/<config hash>/``.

    With ``reduction``, the prompts not yet generated are decoded by
    :func:`helpers.lm.generate_and_represent` (the same tokens) and their representations stored
    for :func:`represent_cached` with the same settings, so that it needs no second pass;
    generations already cached are not generated again (their representations are then
    computed by :func:`represent_cached`'s teacher-forced pass).

    Config: model fingerprint, library versions and device class (:func:`helpers.core.runtime.runtime_key`),
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

    fused = _fused_store(llm, reduction, cache_root) if reduction is not None else None

    def compute(batch: list[str]) -> list[dict[str, Any]]:
        if fused is None:
            return _generate(llm, batch, decoding, len(batch), False)
        out = generate_and_represent(
            llm,
            batch,
            decoding,
            batch_size=len(batch),
            show_progress=False,
            include_embeddings=reduction.include_embeddings,
            prefix_lengths=reduction.prefix_lengths,
        )
        for o in out:  # the representation first: a generation on disk is one whose representation is too
            fused.put(_representation_key(o["prompt_ids"], o["gen_ids"]), o.pop("representation"))
        return out

    got = map_cached(
        store,
        [keys[i] for i in order],
        [prompts[i] for i in order],
        compute,
        batch_size=batch_size,
        desc="generate",
        balanced=True,  # no small last batch that still decodes for max_new_tokens steps
    )
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    for i, r in zip(order, got):
        results[i] = r
    return results  # type: ignore[return-value]


@dataclass(frozen=True)
class Reduction:
    """What the representation pass reduces (the settings of :func:`represent_cached`): given to
    :func:`generate_cached`, fresh generations are represented while they are decoded
    (:func:`helpers.lm.generate_and_represent`) and :func:`represent_cached` with the same
    settings reads those representations instead of running its pass."""

    include_embeddings: bool = True
    prefix_lengths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix_lengths", tuple(int(t) for t in self.prefix_lengths))


def _representation_config(llm: LLM, reduction: Reduction) -> dict[str, Any]:
    return {
        "step": "llm.represent",
        "version": REPRESENT_STEP_VERSION,
        "model": llm.fingerprint,
        "runtime": runtime_key(LLM_PACKAGES, model_devices(llm)),
        "include_embeddings": bool(reduction.include_embeddings),
        "prefix_lengths": list(reduction.prefix_lengths),
    }


def _fused_store(llm: LLM, reduction: Reduction, cache_root: str | Path | None, *, create: bool = True) -> Store | None:
    """Representations computed during generation: the teacher-forced config with ``"method": "fused"``
    (the two agree to float tolerance, not bit for bit, so they are kept apart). With ``create=False``,
    None unless such a store exists already."""
    config = {**_representation_config(llm, reduction), "method": "fused", "fused_version": FUSED_STEP_VERSION}
    make = Store if create else Store.existing
    return make(cache_root or default_cache_root(), "representations", config, kind="npz")


def _representation_key(prompt_ids: Sequence[int], gen_ids: Sequence[int]) -> str:
    return stable_hash({"prompt_ids": list(map(int, prompt_ids)), "gen_ids": list(map(int, gen_ids))})


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
    ``REPRESENT_STEP_VERSION``. Item key: hash of ``prompt_ids`` + ``gen_ids``. An item that
    :func:`generate_cached` represented while generating it (``reduction`` with these settings)
    is read from there instead of computed.
    """
    reduction = Reduction(include_embeddings, tuple(prefix_lengths))
    config = {**_representation_config(llm, reduction), "on_empty": on_empty}
    store = Store(cache_root or default_cache_root(), "representations", config, kind="npz")
    pairs = [(list(map(int, g["prompt_ids"])), list(map(int, g["gen_ids"]))) for g in generations]
    if on_empty == "error" and (empty := [i for i, (_, q) in enumerate(pairs) if not q]):
        names = [_label(generations[i], i) for i in empty]
        raise ValueError(
            f"{len(empty)} generation(s) have no generated tokens, so no generative representation: "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}. The model ended its answer at once; "
            "drop these items from the run, or pass on_empty='nan' to keep them as NaN"
        )
    keys = [_representation_key(p, q) for p, q in pairs]
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
        store,
        [keys[i] for i in order],
        [pairs[i] for i in order],
        compute,
        batch_size=batch_size,
        desc="represent",
        also_from=[s for s in [_fused_store(llm, reduction, cache_root, create=False)] if s is not None],
    )
    results: list[dict[str, np.ndarray] | None] = [None] * len(pairs)
    for i, r in zip(order, got):
        results[i] = r
    return results  # type: ignore[return-value]


__all__ = [
    "FUSED_STEP_VERSION",
    "GENERATE_STEP_VERSION",
    "REPRESENT_STEP_VERSION",
    "Reduction",
    "generate_cached",
    "represent_cached",
]
