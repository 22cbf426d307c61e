"""A KV cache for our decoding loop that is allocated once per batch instead of grown by concatenation.

transformers' ``DynamicCache`` appends each step's keys and values with ``torch.cat``, which copies
the whole cache of every layer at every step: O(T²) memory traffic over a generation (at
SmolLM2-135M, batch 64, 150 positions that is ≈ 0.4 GB copied per step). :func:`new_kv_cache`
returns a ``DynamicCache`` whose full-attention layers are :class:`PreallocatedLayer`: a buffer
of the batch's final length (prompt width + new tokens) written in place, of which the model
sees the filled part as a view. The stored values are the same tensors, so the attention and
the generated tokens are bit for bit those of the growing cache (``tests/test_kvcache.py``).
Sliding-window layers (Gemma-3) keep transformers' own class.
"""

from __future__ import annotations

from typing import Any

import torch


def _dynamic_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


def _make_layer_class() -> type:
    DynamicLayer = _dynamic_layer_class()

    class PreallocatedLayer(DynamicLayer):  # type: ignore[misc, valid-type]
        """A full-attention cache layer with room for ``capacity`` positions, filled in place.

        ``keys``/``values`` are views of the filled positions ``[:, :, :length]`` (what
        ``DynamicLayer`` exposes, so mask sizes and sequence lengths come out the same).
        """

        def __init__(self, capacity: int) -> None:
            super().__init__()
            self.capacity = int(capacity)
            self.length = 0
            self._k: torch.Tensor | None = None
            self._v: torch.Tensor | None = None

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            self.device = key_states.device
            b, h, _, d = key_states.shape
            self._k = key_states.new_empty((b, h, self.capacity, d))
            self._v = value_states.new_empty((b, value_states.shape[1], self.capacity, value_states.shape[-1]))
            self.length = 0
            self.is_initialized = True

        def _expose(self) -> None:
            self.keys = self._k[:, :, : self.length]
            self.values = self._v[:, :, : self.length]

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, s = self.length, key_states.shape[-2]
            if n + s > self.capacity:
                raise RuntimeError(
                    f"KV cache full: {n} + {s} positions exceed the capacity {self.capacity} allocated for this batch"
                )
            self._k[:, :, n : n + s] = key_states
            self._v[:, :, n : n + s] = value_states
            self.length = n + s
            self._expose()
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:
                self._k, self._v = self._k[indices], self._v[indices]
                self._expose()

        def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
            self.batch_select_indices(beam_idx.to(self.device))

        def crop(self, tokens_to_remove: int) -> None:
            raise NotImplementedError("PreallocatedLayer is for forward decoding only")

        def batch_repeat_interleave(self, repeats: int) -> None:
            """Repeat each row ``repeats`` times (a shared prompt prefix computed once becomes every row's)."""
            if self.is_initialized:
                n = self.length
                k = self._k.new_empty((self._k.shape[0] * repeats, *self._k.shape[1:]))
                v = self._v.new_empty((self._v.shape[0] * repeats, *self._v.shape[1:]))
                k[:, :, :n] = self._k[:, :, :n].repeat_interleave(repeats, dim=0)
                v[:, :, :n] = self._v[:, :, :n].repeat_interleave(repeats, dim=0)
                self._k, self._v = k, v
                self._expose()

        def reset(self) -> None:
            self._k = self._v = None
            self.length = 0
            super().reset()

    return PreallocatedLayer


_LAYER_CLASS: type | None = None


def preallocated_layer_class() -> type:
    """The :class:`PreallocatedLayer` class (built on first use, so importing this module does not import transformers)."""
    global _LAYER_CLASS
    if _LAYER_CLASS is None:
        _LAYER_CLASS = _make_layer_class()
    return _LAYER_CLASS


def new_kv_cache(model: Any, capacity: int | None = None) -> Any:
    """A ``DynamicCache`` for ``model``; with ``capacity`` its full-attention layers hold that many positions in place."""
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # older transformers
        return DynamicCache()
    layers = getattr(cache, "layers", None)
    if capacity is None or not layers:
        return cache
    DynamicLayer, Pre = _dynamic_layer_class(), preallocated_layer_class()
    cache.layers = [Pre(capacity) if type(layer) is DynamicLayer else layer for layer in layers]
    return cache


__all__ = ["new_kv_cache", "preallocated_layer_class"]
