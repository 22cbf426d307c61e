"""Caching: hits, misses, invalidation, atomic writes and resuming after an interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.core.cache import (
    Store,
    atomic_dir,
    atomic_file,
    atomic_write_bytes,
    counting_cache,
    file_fingerprint,
    map_cached,
    stable_hash,
)


def test_stable_hash_ignores_key_order_and_sees_values():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    assert stable_hash({"t": "Imagine {caption}."}) != stable_hash({"t": "Imagine {caption}!"})
    with pytest.raises(TypeError, match="cannot hash"):
        stable_hash({"x": object()})


def test_file_fingerprint_follows_content(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    first = file_fingerprint(p)
    q = tmp_path / "renamed.bin"
    q.write_bytes(b"abc")
    assert file_fingerprint(q) == first
    p.write_bytes(b"abcd")
    assert file_fingerprint(p) != first


class Counter:
    def __init__(self, fail_after: int | None = None):
        self.calls: list[list[int]] = []
        self.fail_after = fail_after

    def __call__(self, batch: list[int]) -> list[dict]:
        if self.fail_after is not None and sum(map(len, self.calls)) >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append(batch)
        return [{"square": x * x} for x in batch]


def test_hit_miss_and_invalidation(tmp_path):
    keys = [str(i) for i in range(10)]
    first = Counter()
    store = Store(tmp_path, "squares", {"version": 1})
    out = map_cached(store, keys, list(range(10)), first, batch_size=4)
    assert [o["square"] for o in out] == [i * i for i in range(10)]
    assert sum(map(len, first.calls)) == 10
    again = Counter()
    assert map_cached(Store(tmp_path, "squares", {"version": 1}), keys, list(range(10)), again, batch_size=4) == out
    assert again.calls == []  # all hits
    changed = Counter()
    map_cached(Store(tmp_path, "squares", {"version": 2}), keys, list(range(10)), changed, batch_size=4)
    assert sum(map(len, changed.calls)) == 10  # a config change misses everything
    assert json.loads((Store(tmp_path, "squares", {"version": 2}).dir / "config.json").read_text()) == {"version": 2}


def test_counting_cache_counts_hits_and_computed_items_of_every_call_inside(tmp_path):
    store = Store(tmp_path, "counted", {})
    with counting_cache() as outer:
        map_cached(store, ["a", "b"], [1, 2], Counter(), batch_size=2)  # both computed
        with counting_cache() as inner:
            map_cached(store, ["a", "b", "c", "c"], [1, 2, 3, 3], Counter(), batch_size=2)  # a, b hits; c once
    assert (inner.cached, inner.computed) == (2, 1)
    assert (outer.cached, outer.computed) == (2, 3)
    map_cached(store, ["d"], [4], Counter())  # outside every block: counted nowhere
    assert (outer.cached, outer.computed) == (2, 3)


def test_duplicate_keys_are_computed_once(tmp_path):
    c = Counter()
    out = map_cached(Store(tmp_path, "d", {}), ["a", "b", "a"], [1, 2, 1], c, batch_size=8)
    assert c.calls == [[1, 2]] and [o["square"] for o in out] == [1, 4, 1]


def test_balanced_batches_leave_no_small_last_batch(tmp_path):
    c = Counter()
    out = map_cached(
        Store(tmp_path, "b", {}), [str(i) for i in range(10)], list(range(10)), c, batch_size=4, balanced=True
    )
    assert c.calls == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]  # three batches as at 4, sizes 4/3/3 instead of 4/4/2
    assert [o["square"] for o in out] == [i * i for i in range(10)]
    plain = Counter()
    map_cached(Store(tmp_path, "p", {}), [str(i) for i in range(10)], list(range(10)), plain, batch_size=4)
    assert [len(b) for b in plain.calls] == [4, 4, 2]


def test_interrupted_run_resumes_without_redoing_finished_items(tmp_path):
    keys = [str(i) for i in range(10)]
    interrupted = Counter(fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        map_cached(Store(tmp_path, "r", {}), keys, list(range(10)), interrupted, batch_size=2)
    store = Store(tmp_path, "r", {})
    assert store.keys() == sorted(keys[:4])  # two finished batches, nothing half-written
    assert not list(store.dir.glob(".*.tmp"))
    resumed = Counter()
    out = map_cached(store, keys, list(range(10)), resumed, batch_size=2)
    assert sorted(x for b in resumed.calls for x in b) == list(range(4, 10))
    assert [o["square"] for o in out] == [i * i for i in range(10)]


def test_npz_items_round_trip(tmp_path):
    store = Store(tmp_path, "arr", {"m": "x"}, kind="npz")
    value = {"gen_mean": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3)}
    store.put("k", value)
    got = store.get("k")
    np.testing.assert_array_equal(got["gen_mean"], value["gen_mean"])
    assert got["gen_mean"].dtype == np.float32
    with pytest.raises(KeyError):
        store.get("missing")


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_bytes(p, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(p, object())  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [q.name for q in tmp_path.iterdir()] == ["x.json"]


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "model.gguf"
    with atomic_file(target) as fh:
        fh.write(b"first")
    assert target.read_bytes() == b"first" and (target.stat().st_mode & 0o777) == 0o644
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_file(target) as fh:
            fh.write(b"half of the sec")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf"]  # no temporary file left


def test_atomic_dir_appears_complete_or_not_at_all(tmp_path):
    def complete(d):
        return (d / "weights.bin").is_file()

    target = tmp_path / "models" / "converted"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target, complete) as tmp:
            (tmp / "config.json").write_text("{}")
            raise KeyboardInterrupt  # a kill half-way through the conversion
    assert not target.exists() and list(target.parent.iterdir()) == []
    with atomic_dir(target, complete) as tmp:
        (tmp / "weights.bin").write_bytes(b"ours")
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "weights.bin"]
    assert (target.stat().st_mode & 0o777) == 0o755
    # another process got there first with a complete folder: ours is dropped, theirs stays
    with atomic_dir(target, complete) as tmp:
        (tmp / "weights.bin").write_bytes(b"late copy")
    assert (target / "weights.bin").read_bytes() == b"ours" and len(list(target.parent.iterdir())) == 1
    # a non-empty folder in the way that is not complete is a real error, not a race to ignore
    blocked = tmp_path / "models" / "blocked"
    blocked.mkdir()
    (blocked / "stray.txt").write_text("x")
    with pytest.raises(OSError):
        with atomic_dir(blocked, complete) as tmp:
            (tmp / "weights.bin").write_bytes(b"w")
    assert sorted(p.name for p in blocked.iterdir()) == ["stray.txt"]


def test_dtype_and_device_resolution_is_shared():
    import torch

    from helpers.core import runtime

    assert runtime.resolve_dtype("bf16") is torch.bfloat16 and runtime.resolve_dtype("FP32") is torch.float32
    assert (
        runtime.resolve_dtype(None, "cpu") is torch.float32 and runtime.resolve_dtype(None, "cuda:0") is torch.bfloat16
    )
    assert runtime.resolve_dtype(torch.float16) is torch.float16
    assert runtime.dtype_name(torch.bfloat16) == "bfloat16"
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        runtime.resolve_dtype("float8")
    assert runtime.resolve_device("cpu") == "cpu" and runtime.runs_on_cpu("cpu:0") and not runtime.runs_on_cpu("cuda")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.resolve_device("auto") == expected and runtime.runs_on_cpu("auto") == (expected == "cpu")


def test_existing_store_is_not_created_by_looking(tmp_path):
    assert Store.existing(tmp_path, "ns", {"a": 1}) is None and not (tmp_path / "ns").exists()
    made = Store(tmp_path, "ns", {"a": 1})
    made.put("k", {"v": 2})
    found = Store.existing(tmp_path, "ns", {"a": 1})
    assert found is not None and found.dir == made.dir and found.get("k") == {"v": 2}
    assert Store.existing(tmp_path, "ns", {"a": 2}) is None
