"""What a cached result depends on beyond its inputs (library versions, the device class), and
where a model runs and in what precision (device and dtype resolution, one place for LLMs and encoders).

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

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


# --------------------------------------------------------------------------------------
# Where a model runs and in what precision (LLMs and encoders alike)
# --------------------------------------------------------------------------------------

#: accepted spellings of the precisions a model can run in
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def runs_on_cpu(device: str) -> bool:
    """Whether ``device`` puts the whole model on the CPU (``"auto"`` does when no GPU is visible)."""
    import torch

    if str(device) == "auto":
        return not torch.cuda.is_available()
    return str(device).startswith("cpu")


def resolve_device(device: str) -> str:
    """One device for a model that lives on one device: ``"auto"`` is CUDA when there is a GPU, else CPU."""
    import torch

    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: str = "cpu") -> torch.dtype:
    """The torch dtype for ``dtype`` (a name of :data:`DTYPE_NAMES`, a torch dtype, or None:
    float32 on CPU, bfloat16 on an accelerator)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float32 if runs_on_cpu(device) else torch.bfloat16
    try:
        return getattr(torch, DTYPE_NAMES[str(dtype).lower()])
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPE_NAMES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` → ``"bfloat16"`` (as cache keys spell it)."""
    return str(dtype).removeprefix("torch.")


__all__ = [
    "DTYPE_NAMES",
    "ENCODER_PACKAGES",
    "LLM_PACKAGES",
    "device_class",
    "dtype_name",
    "package_versions",
    "resolve_device",
    "resolve_dtype",
    "runs_on_cpu",
    "runtime_key",
]
