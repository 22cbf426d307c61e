"""The LM head of the decoding loop computed in vocabulary chunks on the CPU: same numbers, less time.

Each decoding step multiplies the batch's last hidden states by the whole output embedding
(SmolLM2-135M: 49,152 × 576; Gemma-3-270M: 262,144 × 640, most of that model's arithmetic). On
the 2-core CPU one ``F.linear`` of that size runs at about 100 GFLOP/s against ≈ 150 for the
model's other products: the ``[rows, vocab]`` output does not stay in cache. The same product
done 2,048 vocabulary rows at a time (:class:`ChunkedHead`) writes each output block while it is
hot. Every logit is still the dot product of the same row and column in the same order, so the
values are bit for bit those of the single product (``tests/test_head.py`` checks it on both
models' head shapes), and so are the greedy tokens. Measured with MKL on this machine at batch
113–128: SmolLM2's head 65–69 → 45–55 ms per step, Gemma's 470–480 → 330–370 ms; at batch 64 and
below it makes no difference either way.

:func:`chunked_head` swaps it in for the duration of a decoding batch on the CPU only (on a GPU
one product is the fast way); outside it the model is transformers' own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

#: Vocabulary rows per product: 2,048 × 576 floats = 4.7 MB of weights per chunk (SmolLM2).
CHUNK_ROWS = 2048


class ChunkedHead(torch.nn.Module):
    """``linear(x) == ChunkedHead(linear)(x)`` bit for bit, computed ``chunk`` output rows at a time."""

    def __init__(self, linear: torch.nn.Linear, chunk: int) -> None:
        super().__init__()
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.linear, self.chunk = linear, int(chunk)

    @property
    def weight(self) -> torch.Tensor:  # what code reading ``lm_head.weight`` expects
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.linear.weight.split(self.chunk)
        b = self.linear.bias
        biases = b.split(self.chunk) if b is not None else [None] * len(weights)
        return torch.cat([F.linear(x, w, bias) for w, bias in zip(weights, biases)], dim=-1)


def _worth_chunking(head: Any, chunk: int) -> bool:
    return (
        type(head) is torch.nn.Linear
        and head.weight.device.type == "cpu"
        and head.weight.dtype == torch.float32
        and head.weight.shape[0] > 2 * chunk
    )


@contextmanager
def chunked_head(model: Any, chunk: int | None = None) -> Iterator[None]:
    """Within the block, ``model``'s output embedding is a :class:`ChunkedHead` of ``chunk``
    (default :data:`CHUNK_ROWS`) rows (CPU float32 only).

    Anything else (a GPU, bfloat16, a head that is not a plain ``Linear``, a small vocabulary)
    leaves the model as it is.
    """
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    chunk = CHUNK_ROWS if chunk is None else int(chunk)
    if head is None or not _worth_chunking(head, chunk):
        yield
        return
    model.set_output_embeddings(ChunkedHead(head, chunk))
    try:
        yield
    finally:
        model.set_output_embeddings(head)


__all__ = ["CHUNK_ROWS", "ChunkedHead", "chunked_head"]
