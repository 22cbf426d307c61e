"""GGUF models from PyPI packages: locating the file, assembling chunked ones, converting once.

The embedded LLMs ship as GGUF files inside Python distributions (never imported, only
located). Gemma's file is split over four chunk packages and concatenated once, checked
against its SHA-256. transformers dequantises a GGUF into a regular float32 checkpoint,
which is saved once under ``cache_root()/models`` (keyed on the GGUF hash and the versions
of the libraries that did the conversion) and loaded like any local model afterwards.
Both outputs are written atomically (:func:`helpers.core.cache.atomic_file` / ``atomic_dir``),
so a kill or a concurrent shard job never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.core.cache import atomic_dir, atomic_file, file_fingerprint, stable_hash
from helpers.core.paths import cache_root as default_cache_root
from helpers.core.progress import is_headless, progress
from helpers.core.runtime import package_versions
from helpers.lm.registry import EMBEDDED_DEFAULT, GEMMA_BASE, ModelSpec, spec_of

log = logging.getLogger(__name__)

#: The version of the four Gemma chunk packages (one release, published together).
_CHUNK_VERSION = "1.0.0"


def _dist_file(model: str, package: str, file: str, install: str) -> Path:
    """Path of ``file`` inside the installed distribution ``package`` (the package is never imported)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"model {model!r} needs the Python package {package!r}; install it with `pip install {install}`"
        ) from None
    candidates = [f for f in (dist.files or []) if str(f).replace("\\", "/") == file]
    path = Path(dist.locate_file(candidates[0] if candidates else file))
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed but {file} is missing ({path}); reinstall it")
    return path


def embedded_gguf_path(spec: ModelSpec | str = EMBEDDED_DEFAULT) -> Path:
    """Path of the GGUF file a ``gguf-package`` spec points to (the package is never imported)."""
    spec = spec_of(spec)
    assert spec.package and spec.package_file
    return _dist_file(spec.name, spec.package, spec.package_file, f"--no-deps {spec.package}")


def gguf_chunk_paths(spec: ModelSpec | str = GEMMA_BASE) -> list[Path]:
    """The installed chunk files of a ``gguf-chunks`` spec, in concatenation order."""
    spec = spec_of(spec)
    install = f"{spec.package}=={_CHUNK_VERSION}" if spec.package else " ".join(p for p, _ in spec.chunks)
    return [_dist_file(spec.name, pkg, f, install) for pkg, f in spec.chunks]


def assemble_gguf(spec: ModelSpec | str = GEMMA_BASE, models_dir: str | Path | None = None) -> Path:
    """Concatenate the chunks of a ``gguf-chunks`` spec once into ``models_dir/gguf/<name>.gguf``.

    The result is checked against ``spec.sha256`` (a mismatch raises and leaves nothing behind)
    and written atomically; later calls return the existing file after a size check.
    """
    spec = spec_of(spec)
    chunks = gguf_chunk_paths(spec)
    root = (Path(models_dir) if models_dir is not None else default_cache_root() / "models") / "gguf"
    target = root / f"{spec.name}-{(spec.sha256 or 'nosha')[:12]}.gguf"
    size = sum(c.stat().st_size for c in chunks)
    if target.is_file() and target.stat().st_size == size:
        return target
    digest = hashlib.sha256()
    with atomic_file(target) as out:
        for c in chunks:
            with c.open("rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
        if spec.sha256 and digest.hexdigest() != spec.sha256:
            raise ValueError(
                f"assembled {spec.name} GGUF has sha256 {digest.hexdigest()}, expected {spec.sha256}; "
                f"reinstall the chunk packages ({', '.join(p for p, _ in spec.chunks)})"
            )
    return target


@contextmanager
def _headless_conversion_bar() -> Iterator[None]:
    """Headless (papermill, CI), transformers' GGUF conversion bar is the package's plain-text one.

    transformers draws it with ``tqdm.auto`` whatever its progress-bar switch says, which in a notebook
    kernel is a widget: an executed notebook would hold widget state nobody can read in a log."""
    if not is_headless():
        yield
        return
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    drawn_with = gguf_utils.tqdm
    gguf_utils.tqdm = progress
    try:
        yield
    finally:
        gguf_utils.tqdm = drawn_with


def convert_gguf(spec: ModelSpec, gguf: Path, models_dir: Path, sha256: str | None = None) -> Path:
    """Dequantise ``gguf`` once into a regular HF checkpoint under ``models_dir`` (atomic) and return it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha256 = sha256 or file_fingerprint(gguf)
    # the dequantised weights depend on the gguf reader and transformers' GGUF mapping
    key = stable_hash({"gguf_sha256": sha256, **package_versions(("transformers", "gguf"))}, 12)
    target = models_dir / f"{spec.name}-{key}"
    if (target / "config.json").is_file():
        return target
    log.info("converting %s to a HF checkpoint in %s (once)", gguf.name, target)
    with atomic_dir(target, complete=lambda t: (t / "config.json").is_file()) as tmp:
        with _headless_conversion_bar():
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already dequantised to float32; drop the GGUF "quantizer" so that
        # save_pretrained writes an ordinary, loadable checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target


__all__ = ["assemble_gguf", "convert_gguf", "embedded_gguf_path", "gguf_chunk_paths"]
