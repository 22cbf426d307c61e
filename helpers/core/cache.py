"""Content-addressed, atomic, resumable on-disk cache.

Layout: ``<root>/<namespace>/<config-hash>/`` holds ``config.json`` (everything that
determines the results, human readable) and one file per item, named by a hash of
the item's own inputs. Because every item is written atomically (temporary file +
``os.replace``) as soon as it is computed, an interrupted run leaves only finished
items behind and the next run computes exactly the missing ones.

Anything that changes a result must be in the config or in the item key: model
fingerprint, template text, decoding parameters, T, file hashes and the version of
the step's code (``STEP_VERSION`` constants in the modules that use the cache).
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from helpers.core.progress import progress

Kind = Literal["json", "npz"]
_SUFFIX: dict[str, str] = {"json": ".json", "npz": ".npz"}


def _canonical(obj: Any) -> Any:
    """Turn ``obj`` into plain JSON types with a deterministic layout."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot hash object of type {type(obj).__name__} in a cache key: {obj!r}")


def stable_hash(obj: Any, length: int = 20) -> str:
    """A short, stable hex digest of a JSON-able object (dict key order does not matter)."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of a file's bytes, memoised per (path, size, mtime) within the process."""
    p = Path(path)
    st = p.stat()
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _FINGERPRINTS:
        h = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _FINGERPRINTS[memo_key] = h.hexdigest()
    return _FINGERPRINTS[memo_key]


@contextmanager
def atomic_file(path: str | Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file beside it, renamed into place when the block ends
    without an error: readers see the old file or the whole new one, never a part. On an error
    (or a kill) the temporary file is removed and ``path`` is untouched."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it private
        os.replace(tmp, p)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: str | Path, complete: Callable[[Path], bool]) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``target``, renamed into place when the block
    ends without an error: the folder appears complete or not at all (a model assembled or
    converted once, then shared by every run and shard job).

    When another process renamed its own copy into place first, ours is discarded if
    ``complete(target)`` holds; otherwise the rename error is real and raised.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        try:
            os.replace(tmp, target)
        except OSError:
            if not complete(target):  # not a concurrent winner: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    with atomic_file(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _encode(value: Any, kind: Kind) -> bytes:
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, indent=None).encode("utf-8")
    import io

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in value.items()})
    return buf.getvalue()


def _decode(path: Path, kind: Kind) -> Any:
    if kind == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class CorruptCacheFile(RuntimeError):
    """A cache file exists but cannot be read (truncated, zero bytes, not the expected format)."""


#: errors that reading a damaged ``.json`` / ``.npz`` raises (zipfile.BadZipFile, EOFError,
#: json.JSONDecodeError and UnicodeDecodeError are subclasses of these)
_READ_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile)


def quarantine(path: str | Path, reason: str) -> Path:
    """Move a damaged cache file or folder aside as ``<name>.corrupt-<n>`` (kept for inspection,
    never read again) and warn naming it; return the new path."""
    p = Path(path)
    for n in range(1, 10_000):
        target = p.with_name(f"{p.name}.corrupt-{n}")
        if not target.exists():
            break
    try:
        os.replace(p, target)
    except FileNotFoundError:  # another process moved it first
        return target
    warnings.warn(
        f"cache file {p} is unreadable ({reason}); moved it to {target.name} and recomputing it",
        RuntimeWarning,
        stacklevel=3,
    )
    return target


class Store:
    """One cache namespace for one configuration, holding one file per item key.

    ``Store(root, "generations", {"model": ..., "max_new_tokens": 128})`` keeps its
    items in ``root/generations/<hash of config>/``.
    """

    def __init__(self, root: str | Path, namespace: str, config: Mapping[str, Any], kind: Kind = "json"):
        self.config = dict(config)
        self.kind: Kind = kind
        self.dir = Path(root) / namespace / stable_hash(self.config)
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg_path = self.dir / "config.json"
        if not cfg_path.exists():
            atomic_write_text(cfg_path, json.dumps(_canonical(self.config), indent=2, ensure_ascii=False))

    @classmethod
    def existing(cls, root: str | Path, namespace: str, config: Mapping[str, Any], kind: Kind = "json") -> Store | None:
        """The store of ``config`` when something already made its folder, else None (nothing is created)."""
        if not (Path(root) / namespace / stable_hash(dict(config))).is_dir():
            return None
        return cls(root, namespace, config, kind)

    def path(self, key: str) -> Path:
        """File that holds item ``key``."""
        if key == "config" or "/" in key or key.startswith("."):
            raise ValueError(f"invalid cache item key {key!r}")
        return self.dir / f"{key}{_SUFFIX[self.kind]}"

    def has(self, key: str) -> bool:
        """Whether item ``key`` is stored (a damaged file counts as stored until :meth:`load` reads it)."""
        return self.path(key).exists()

    def get(self, key: str) -> Any:
        """Load item ``key``; ``KeyError`` when it is not cached, :class:`CorruptCacheFile`
        (naming the file) when its file cannot be read."""
        p = self.path(key)
        if not p.exists():
            raise KeyError(key)
        try:
            return _decode(p, self.kind)
        except _READ_ERRORS as exc:
            raise CorruptCacheFile(
                f"cache file {p} is unreadable ({type(exc).__name__}: {exc}); delete it, or let "
                "Store.load / map_cached move it aside and recompute it"
            ) from exc

    def load(self, key: str) -> Any | None:
        """Item ``key``, or None when it is missing or damaged (a damaged file is moved aside by
        :func:`quarantine`, with a warning naming it, so that it is recomputed)."""
        p = self.path(key)
        try:
            return _decode(p, self.kind)
        except FileNotFoundError:
            return None
        except _READ_ERRORS as exc:
            quarantine(p, f"{type(exc).__name__}: {exc}")
            return None

    def put(self, key: str, value: Any) -> None:
        atomic_write_bytes(self.path(key), _encode(value, self.kind))

    def keys(self) -> list[str]:
        suffix = _SUFFIX[self.kind]
        names = (p.name for p in self.dir.glob(f"*{suffix}") if not p.name.startswith("."))
        return sorted(n[: -len(suffix)] for n in names if n != "config.json")


def _batches(items: list[Any], batch_size: int, balanced: bool) -> list[list[Any]]:
    """Consecutive batches of at most ``batch_size``; with ``balanced`` as few as that allows, sizes within one."""
    if not balanced or not items:
        return [items[s : s + batch_size] for s in range(0, len(items), batch_size)]
    n = -(-len(items) // batch_size)  # ceil
    size, extra = divmod(len(items), n)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(n)])
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass
class CacheCounts:
    """Items :func:`map_cached` found in a cache (``cached``) and computed (``computed``)."""

    cached: int = 0
    computed: int = 0


_COUNTERS: contextvars.ContextVar[tuple[CacheCounts, ...]] = contextvars.ContextVar("cache_counters", default=())


@contextmanager
def counting_cache() -> Iterator[CacheCounts]:
    """Count what every :func:`map_cached` call inside the block found and computed (nested blocks each count)::

    with counting_cache() as counts:
        evaluate_template(...)
    counts.cached, counts.computed
    """
    counts = CacheCounts()
    token = _COUNTERS.set(_COUNTERS.get() + (counts,))
    try:
        yield counts
    finally:
        _COUNTERS.reset(token)


def map_cached(
    store: Store,
    keys: Sequence[str],
    inputs: Sequence[Any],
    compute_batch: Callable[[list[Any]], Iterable[Any]],
    batch_size: int = 1,
    desc: str | None = None,
    also_from: Sequence[Store] = (),
    balanced: bool = False,
) -> list[Any]:
    """Return ``compute(inputs[i])`` for every ``i``, computing only the items not yet in ``store``.

    ``compute_batch`` takes a list of inputs and returns one result per input, in order.
    Each result is written atomically as soon as its batch finishes, so an interrupted
    call resumes where it stopped. Duplicate keys are computed once. An item missing from
    ``store`` but present in one of ``also_from`` (stores of the same result computed another
    way, e.g. representations reduced during generation) is read from there, not computed.
    With ``balanced``, the items to compute are split into as few batches as ``batch_size``
    allows, of sizes that differ by at most one (900 items at 128: eight of 113 and 112, not
    seven of 128 and one of 4): a batched decoder pays each batch's full length whatever its size.
    The counts of items found and computed are printed and added to every enclosing :func:`counting_cache`.
    """
    if len(keys) != len(inputs):
        raise ValueError(f"{len(keys)} keys but {len(inputs)} inputs")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    found: dict[str, Any] = {}
    todo: dict[str, Any] = {}
    for k, x in zip(keys, inputs):
        k = str(k)
        if k in found or k in todo:
            continue
        value = store.load(k)  # None when missing or damaged (moved aside): computed again
        for other in also_from:
            if value is not None:
                break
            value = other.load(k)
        if value is None:
            todo[k] = x
        else:
            found[k] = value
    for counts in _COUNTERS.get():
        counts.cached += len(found)
        counts.computed += len(todo)
    # printed, not logged: the count belongs in the notebook's narrative and the run log
    print(f"{desc or store.dir.parent.name}: {len(found)} cached, {len(todo)} to compute", flush=True)
    pending = list(todo.items())
    with progress(total=len(pending), desc=desc or "compute", unit="item") as bar:
        for chunk in _batches(pending, int(batch_size), balanced):
            results = list(compute_batch([x for _, x in chunk]))
            if len(results) != len(chunk):
                raise RuntimeError(f"compute_batch returned {len(results)} results for {len(chunk)} inputs")
            for (k, _), r in zip(chunk, results):
                store.put(k, r)
                # read back what was written: the caller gets exactly what a cache hit would give
                found[k] = store.get(k)
            bar.update(len(chunk))
    out, seen = [], set()
    for k in map(str, keys):  # a repeated key gets its own copy, so callers may mutate results
        out.append(copy.deepcopy(found[k]) if k in seen else found[k])
        seen.add(k)
    return out
