"""What a cached result depends on beyond its inputs: library versions and the device class.

Two runs with the same model, data and settings can still differ in the last bits when
torch, transformers or the audio/image decoders change, or when the same model runs on a
GPU instead of the CPU (other kernels, bf16). Cache keys therefore carry
:func:`runtime_key`, so an upgrade or a move to another device recomputes instead of
mixing results from two numerical setups. (Shard jobs of one cluster run share a cache
only when they run the same environment on the same device class, which is what a
reproducible run needs anyway.)
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

#: packages whose versions change LLM numerics (GGUF dequantisation included)
LLM_PACKAGES = ("torch", "transformers", "gguf")
#: packages whose versions change encoder features (decoding, resampling, the networks)
ENCODER_PACKAGES = ("torch", "numpy", "pillow", "soundfile", "librosa", "soxr", "samplerate", "ctranslate2")


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """``{package: installed version}``; None for a package that is not installed."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_class(devices: Iterable[Any]) -> str:
    """``"cpu"``, ``"cuda"``, ``"mps"`` ... for the devices a model runs on, joined with ``+``
    when it is spread over several kinds (``device_map="auto"`` spilling to CPU: ``"cpu+cuda"``)."""
    kinds = sorted({str(getattr(d, "type", d)).split(":")[0] for d in devices})
    return "+".join(kinds) or "cpu"


def runtime_key(packages: Iterable[str], devices: Iterable[Any]) -> dict[str, Any]:
    """The part of a cache key the environment determines: versions and device class."""
    return {"versions": package_versions(packages), "device": device_class(devices)}


__all__ = ["ENCODER_PACKAGES", "LLM_PACKAGES", "device_class", "package_versions", "runtime_key"]
