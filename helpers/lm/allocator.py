"""Decoding with glibc's allocator told to keep freed memory: the same numbers, fewer page faults.

Each forward pass of the decoding loop allocates and frees tensors of megabytes (a batch-128
prefill's MLP activations are ≈ 37 MB each, every decode step's logits 25 MB). glibc serves
blocks that large with a fresh ``mmap`` and unmaps them when freed, so the next step's tensor
of the same size is new memory again: the kernel zero-fills it page by page on first touch.
Measured on the 2-core machine (SmolLM2-135M, 128 prompts, batch 128, T = 64, paired runs):
1.64–1.86 M minor page faults and 3.4–3.8 s of system time per generation; with the blocks
kept in the heap (:func:`keep_freed_memory`) 0.27 M and 0.8 s, and the generation 1.05–1.13×
faster with the same tokens. The prefill's element-wise operations (SiLU, products) ran at
≈ 2 GB/s, bound by those page faults, not by memory bandwidth.

Allocation changes where tensors live, never their values, so the tokens and hidden states are
bit for bit those of the default allocator. Inside the block glibc uses no ``mmap`` for new
blocks and keeps freed memory (the process's resident memory stays at its high-water mark until
the block ends); at the end the defaults come back and :c:func:`malloc_trim` returns what is
free to the system. Elsewhere (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
#: glibc's documented defaults, restored when the outermost block ends
DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_TOP_PAD: 128 * 1024, M_MMAP_MAX: 65536}
#: inside the block: no mmap for new blocks, never trim the heap's top, grow it 64 MB at a time
KEEP = {M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 64 * 2**20, M_MMAP_MAX: 0}

_lock = threading.Lock()
_depth = 0


def _libc() -> ctypes.CDLL | None:
    """glibc, or None where the C library is another (its ``mallopt`` would mean something else)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _set(libc: ctypes.CDLL, values: dict[int, int]) -> None:
    for param, value in values.items():
        libc.mallopt(ctypes.c_int(param), ctypes.c_int(value))


@contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Within the block, glibc keeps freed blocks for reuse instead of unmapping them.

    Yields whether the setting applies (False off glibc). Nested blocks (a fused generation
    inside a cached step) apply it once; the outermost restores glibc's defaults and trims.
    """
    global _depth
    libc = _libc()
    if libc is None:
        yield False
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _set(libc, KEEP)
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(libc, DEFAULTS)
                libc.malloc_trim(ctypes.c_size_t(0))


__all__ = ["keep_freed_memory"]
