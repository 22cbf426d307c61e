"""helpers.lm.allocator: inside the block freed memory is reused (no new page faults), outside it is not;
nesting applies the setting once and the outermost block restores glibc's defaults."""

from __future__ import annotations

import ctypes
import platform
import resource

import pytest
import torch

from helpers.lm import allocator as A

pytestmark = pytest.mark.skipif(A._libc() is None, reason="glibc only (elsewhere the block does nothing)")



class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap_free_bytes() -> int:
    """Free bytes inside glibc's heap (``mallinfo2().fordblks``): a block up to that size may be served from it."""
    libc = A._libc()
    libc.mallinfo2.restype = _Mallinfo2
    return int(libc.mallinfo2().fordblks)


def _n_floats() -> int:
    """A tensor size no free chunk of the heap can hold (other tests leave some), at least 64 MB: above glibc's
    largest dynamic mmap threshold (32 MB), so by default it gets its own mmap and loses it when freed."""
    return max(16 * 2**20, (_heap_free_bytes() + 2**26) // 4)


def _faults_per_round(n_floats: int, rounds: int = 4) -> float:
    """Minor page faults per allocate-touch-free round of a 64 MB tensor, after two warm-up rounds (the heap
    grows in the first rounds) (torch's
    CPU allocator goes through malloc; numpy would not do: it asks for huge pages, so few faults anyway)."""
    for _ in range(2):
        torch.ones(n_floats)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        a = torch.ones(n_floats)
        del a
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds


def test_freed_blocks_are_reused_inside_and_unmapped_outside() -> None:
    n = _n_floats()
    pages = n * 4 // resource.getpagesize()
    outside = _faults_per_round(n)
    with A.keep_freed_memory() as applied:
        assert applied
        inside = _faults_per_round(n)
    n = _n_floats()  # the block's heap was trimmed at its end, but may hold more free chunks now
    after = _faults_per_round(n)
    # outside, every round touches fresh pages (one fault per page, or fewer with fault-around)
    assert outside > pages / 4, (outside, pages)
    assert after > n * 4 // resource.getpagesize() / 4, (after, n)
    # inside, the freed block is handed back: almost no new faults
    assert inside < pages / 20, (inside, pages)


def test_nested_blocks_restore_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[int, int]] = []
    real_set = A._set
    monkeypatch.setattr(A, "_set", lambda libc, values: (calls.append(dict(values)), real_set(libc, values)))
    with A.keep_freed_memory():
        with A.keep_freed_memory():
            assert calls == [A.KEEP]
        assert calls == [A.KEEP]  # the inner block leaves the setting on
    assert calls == [A.KEEP, A.DEFAULTS]
    assert A._depth == 0


def test_restores_when_the_block_raises() -> None:
    with pytest.raises(ValueError), A.keep_freed_memory():
        raise ValueError("boom")
    assert A._depth == 0
    n = _n_floats()
    assert _faults_per_round(n) > n * 4 // resource.getpagesize() / 4


def test_does_nothing_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    with A.keep_freed_memory() as applied:
        assert applied is False
    assert A._depth == 0
