"""The encoder interface and registry, below every encoder module.

:class:`Encoder` is what notebook 04 and :func:`helpers.encoders.embedded.embed_cached` call;
:func:`register_encoder` adds a factory under a name. The embedded encoders
(:mod:`helpers.encoders.embedded`) and the paper's (:mod:`helpers.encoders.paper`) both register
here, so neither module needs the other; :mod:`helpers.encoders.embedded` imports both and is the
one users import.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Version of the embedding code (every encoder's fingerprint holds it); bump it when a change alters any output.
STEP_VERSION = 1

MODALITIES = ("vision", "audio")


# --------------------------------------------------------------------------- interface


class Encoder:
    """Base class of all encoders.

    Subclasses set ``name``, ``modality`` ("vision" | "audio") and ``dim``, provide a
    ``fingerprint`` dict (everything that determines the outputs) and implement
    :meth:`_embed_batch`. Model weights are loaded lazily on the first :meth:`embed`
    call, so building an encoder (and a fully cached :func:`embed_cached`) is cheap.
    """

    name: str = ""
    modality: str = ""
    dim: int = 0

    def __init__(self, batch_size: int = 16):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        #: how many items this encoder has run through its model (tests check caching with it)
        self.items_encoded = 0

    @property
    def fingerprint(self) -> dict[str, Any]:
        raise NotImplementedError

    def _embed_batch(self, paths: list[Path]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Embed every file in ``paths``; returns float32 ``[len(paths), dim]``, in order."""
        paths = [Path(p) for p in paths]
        out = np.zeros((len(paths), self.dim), dtype=np.float32)
        for start in range(0, len(paths), self.batch_size):
            chunk = paths[start : start + self.batch_size]
            emb = np.asarray(self._embed_batch(chunk), dtype=np.float32)
            if emb.shape != (len(chunk), self.dim):
                raise RuntimeError(f"{self.name}: batch gave shape {emb.shape}, expected {(len(chunk), self.dim)}")
            out[start : start + len(chunk)] = emb
            self.items_encoded += len(chunk)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, modality={self.modality!r}, dim={self.dim})"


@dataclass(frozen=True)
class EncoderSpec:
    """A registry entry: how to build encoder ``name``."""

    name: str
    modality: str
    factory: Callable[..., Encoder]
    description: str = ""


#: name -> spec. Extend with :func:`register_encoder`.
ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(name: str, modality: str, description: str = ""):
    """Decorator registering a class/factory ``f(**options) -> Encoder`` under ``name``."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")

    def deco(factory: Callable[..., Encoder]):
        ENCODERS[name] = EncoderSpec(name=name, modality=modality, factory=factory, description=description)
        return factory

    return deco


def encoder_names(modality: str | None = None) -> list[str]:
    """Registered encoder names, optionally only those of one modality ("vision"/"audio")."""
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES} or None, got {modality!r}")
    return sorted(n for n, s in ENCODERS.items() if modality is None or s.modality == modality)


def load_encoder(name: str, **options: Any) -> Encoder:
    """Build the encoder registered as ``name`` (weights load lazily on first use).

    ``options`` go to the encoder's constructor (e.g. ``batch_size``, ``max_seconds``).
    Unknown names raise ``ValueError`` listing the known ones.
    """
    spec = ENCODERS.get(name)
    if spec is None:
        raise ValueError(f"Unknown encoder {name!r}; known encoders: {', '.join(encoder_names())}")
    return spec.factory(**options)


def accepted_options(name: str) -> set[str]:
    """Keyword options the encoder registered as ``name`` accepts."""
    spec = ENCODERS.get(name)
    if spec is None:
        raise ValueError(f"Unknown encoder {name!r}; known encoders: {', '.join(encoder_names())}")
    params = inspect.signature(spec.factory).parameters.values()
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}


def encoder_from_options(
    name: str, defaults: dict[str, Any] | None = None, options: dict[str, dict[str, Any]] | None = None
) -> Encoder:
    """Build encoder ``name`` from notebook-wide ``defaults`` and per-encoder ``options``.

    ``defaults`` (e.g. ``{"device": "cuda", "max_seconds": 10}``) are passed only to encoders
    that accept them; ``options[name]`` (e.g. ``{"pooling": "mean"}``) is passed as given, and an
    option the encoder does not know raises ``ValueError`` listing the ones it does.
    """
    accepted = accepted_options(name)
    kwargs = {k: v for k, v in (defaults or {}).items() if k in accepted}
    own = dict((options or {}).get(name) or {})
    unknown = sorted(set(own) - accepted)
    if unknown:
        raise ValueError(f"encoder {name!r} has no option(s) {unknown}; it accepts {sorted(accepted)}")
    kwargs.update(own)
    return load_encoder(name, **kwargs)


# --------------------------------------------------------------------------- shared pieces


@contextlib.contextmanager
def quiet_init():
    """Model constructors draw random initial weights: keep the caller's torch RNG untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        yield
