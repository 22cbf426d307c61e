"""Loading a causal LM by registry name, local folder or Hugging Face id into an :class:`LLM`.

Apart from the model code (generation, representation), as TransformerLens keeps
``loading_from_pretrained`` apart from its model: :func:`load_llm` resolves where the
weights are (:func:`_resolve_source`), loads them with transformers, and records a
``fingerprint`` (file hashes or hub revision, plus the dtype) that every cache key carries.
:func:`format_prompt` and :func:`encode_prompts` turn user text into the exact token ids
the model reads.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from helpers.core.cache import file_fingerprint, quarantine, stable_hash
from helpers.core.paths import cache_root as default_cache_root
from helpers.core.progress import is_headless
from helpers.core.runtime import dtype_name, resolve_dtype
from helpers.core.settings import LMSettings
from helpers.lm.gguf import assemble_gguf, convert_gguf, embedded_gguf_path
from helpers.lm.registry import MODEL_REGISTRY, ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def decoder_parts(model: Any) -> tuple[Any, Sequence[Any], Any]:
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
        return len(decoder_parts(self.model)[1])

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


@dataclass
class _Source:
    """Where a model's weights come from: what ``from_pretrained`` gets, and what identifies them.

    ``reconvert`` is set for our own converted GGUF checkpoints: it converts again (after the
    damaged copy was quarantined) and returns the new folder.
    """

    location: str
    fingerprint: dict[str, Any]
    chat_kwargs: dict[str, Any] = field(default_factory=dict)
    reconvert: Callable[[], Path] | None = None


def _gguf_source(spec: ModelSpec, models_dir: str | Path | None) -> _Source:
    """A registry model shipped as GGUF: locate (or assemble) the file, convert it once."""
    root = Path(models_dir) if models_dir is not None else default_cache_root() / "models"
    if spec.source == "gguf-package":
        gguf = embedded_gguf_path(spec)
        package = f"{spec.package}=={importlib.metadata.version(spec.package or '')}"
        sha = file_fingerprint(gguf)
    else:
        gguf = assemble_gguf(spec, root)
        package = ",".join(f"{p}=={importlib.metadata.version(p)}" for p, _ in spec.chunks)
        sha = spec.sha256 or file_fingerprint(gguf)
    fingerprint = {
        "name": spec.name,
        "source": spec.source,
        "package": package,
        "gguf_file": gguf.name,
        "gguf_sha256": sha,
    }

    def reconvert() -> Path:
        return convert_gguf(spec, gguf, root, sha)

    return _Source(str(reconvert()), fingerprint, reconvert=reconvert)


def _resolve_source(name: str, *, enable_thinking: bool, models_dir: str | Path | None) -> _Source:
    """Turn a registry name, Hugging Face id or local folder into a :class:`_Source`."""
    spec = MODEL_REGISTRY.get(name)
    if spec is not None and spec.source in ("gguf-package", "gguf-chunks"):
        return _gguf_source(spec, models_dir)
    if spec is not None or (_HF_ID.match(name) and not Path(name).exists()):
        hf_id = spec.hf_id if spec is not None and spec.hf_id else name
        chat_kwargs = {"enable_thinking": bool(enable_thinking)} if spec is not None and spec.supports_thinking else {}
        return _Source(hf_id, {"name": name, "source": "hf", "hf_id": hf_id}, chat_kwargs)
    if Path(name).is_dir():
        path = Path(name).resolve()
        if not (path / "config.json").is_file():
            raise ValueError(f"{name!r} is a directory but holds no config.json (not a saved HF model)")
        return _Source(str(path), {"source": "local", "files_sha256": _dir_fingerprint(path)})
    raise ValueError(
        f"unknown model {name!r}. Known names: {', '.join(MODEL_REGISTRY)}. "
        "A local directory with a saved Hugging Face model, or a Hugging Face id "
        "('org/model', needs the weights cached locally or network access), is also accepted."
    )


def _from_pretrained(src: _Source, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(tokenizer, model) from ``src``; a damaged converted checkpoint is quarantined and rebuilt once."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    revision = {"revision": load_kwargs["revision"]} if "revision" in load_kwargs else {}
    try:
        return AutoTokenizer.from_pretrained(src.location, **revision), AutoModelForCausalLM.from_pretrained(
            src.location, **load_kwargs
        )
    except Exception as e:
        if src.reconvert is not None:
            # our own converted checkpoint is damaged (a truncated copy, a full disk): move it aside, convert again
            quarantine(src.location, f"{type(e).__name__}: {str(e)[:200]}")
            src.location = str(src.reconvert())
            return AutoTokenizer.from_pretrained(src.location), AutoModelForCausalLM.from_pretrained(
                src.location, **load_kwargs
            )
        if src.fingerprint["source"] == "hf" and isinstance(e, OSError):
            raise OSError(
                f"could not load {src.location!r} from Hugging Face: the weights are not in the local cache and "
                f"the hub is unreachable or disabled (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')!r}). "
                f"Original error: {e}"
            ) from e
        raise


def _pin_revision(src: _Source, model: Any, requested: str | None = None) -> None:
    """Record the hub commit of a Hugging Face model in its fingerprint (refuse to go on without one).

    With a ``requested`` revision the commit is the one ``from_pretrained`` loaded (a branch or tag
    resolves to its commit); a requested full commit hash that was not what loaded is an error."""
    loaded = getattr(model.config, "_commit_hash", None)
    if requested is not None:
        commit = requested if re.fullmatch(r"[0-9a-f]{40}", requested) else None  # not a branch or tag
        if commit and loaded and loaded != commit:
            raise RuntimeError(f"asked for {src.location!r} at commit {commit} but loaded {loaded}")
        revision = loaded or commit
    else:
        revision = _hub_revision(src.location) or loaded
    if not revision:  # never key results on "whatever the hub had": they could not be told apart later
        raise RuntimeError(
            f"loaded {src.location!r} but could not resolve which hub commit its weights are; save the model "
            "to a local folder (model.save_pretrained) and pass that folder as the model name"
        )
    src.fingerprint["revision"] = revision


def load_llm(
    name: str,
    device: str = "cpu",
    dtype: str | None = None,
    *,
    enable_thinking: bool = False,
    models_dir: str | Path | None = None,
    revision: str | None = None,
) -> LLM:
    """Load a causal LM by registry name, local directory or Hugging Face id.

    ``device``: ``"cpu"``, ``"cuda"``/``"cuda:1"``, or ``"auto"`` (``device_map="auto"``:
    the layers are spread over every visible GPU, spilling to CPU if needed; CPU alone
    when there is no GPU). ``dtype`` defaults to float32 on CPU and bfloat16 elsewhere.
    ``enable_thinking`` is passed to the chat template of models that support it (Qwen3;
    it changes the exact prompt string, see :func:`format_prompt`). ``models_dir`` is where
    assembled/converted GGUF checkpoints are cached (default ``cache_root()/models``).
    ``revision``: the hub commit (or branch or tag) of a Hugging Face model to load; None loads the
    cached snapshot. Either way the commit loaded is recorded in ``fingerprint["revision"]`` (and so
    in every cache key; notebook 02 prints it, :func:`revision_note`). A model that is not from the hub takes none.
    """
    if is_headless():  # transformers' own conversion/loading bars are noise in logs and executed notebooks
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    torch_dtype = resolve_dtype(dtype, device)
    load_kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if not str(device).startswith("cpu"):
        load_kwargs["device_map"] = device  # load straight onto the accelerator(s); "auto" shards
    src = _resolve_source(name, enable_thinking=enable_thinking, models_dir=models_dir)
    if revision is not None:
        if src.fingerprint["source"] != "hf":
            raise ValueError(
                f"llm_revision={revision!r} names a hub commit, but {name!r} does not come from the hub "
                f"({src.fingerprint['source']}): set llm_revision to null"
            )
        load_kwargs["revision"] = revision
    tokenizer, model = _from_pretrained(src, load_kwargs)
    if src.fingerprint["source"] == "hf":
        _pin_revision(src, model, revision)
    src.fingerprint["dtype"] = dtype_name(torch_dtype)
    if str(device).startswith("cpu"):
        model.to(device)
    template = str(getattr(tokenizer, "chat_template", None) or "")
    if "enable_thinking" in template:
        src.chat_kwargs["enable_thinking"] = bool(enable_thinking)  # any Qwen3-style template, local copies too
    spec = MODEL_REGISTRY.get(name)
    use_chat = bool(template) and (spec is None or spec.chat_template is None or spec.chat_template)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    tokenizer.padding_side = "left"
    return LLM(
        model=model,
        tokenizer=tokenizer,
        name=name,
        use_chat_template=use_chat,
        fingerprint=src.fingerprint,
        eos_token_ids=_eos_ids(model, tokenizer),
        chat_template_kwargs=src.chat_kwargs,
    )


def load_configured(settings: LMSettings, name: str | None = None) -> LLM:
    """:func:`load_llm` with a run's :class:`~helpers.core.settings.LMSettings` (``name`` instead of
    ``settings.llm`` for the other models 09 and 12 load; the revision applies to ``settings.llm`` only)."""
    return load_llm(
        name or settings.llm,
        settings.device,
        settings.dtype,
        enable_thinking=settings.enable_thinking,
        revision=settings.revision if name in (None, settings.llm) else None,
    )


def revision_note(llm: LLM) -> str:
    """Which weights were loaded, in one line: a hub model's commit (and how to pin a rerun to it),
    an embedded model's package and GGUF hash, or a local folder's content hash."""
    fp = llm.fingerprint
    if fp.get("source") == "hf":
        rev = fp.get("revision", "?")
        return f"weights: {fp.get('hf_id', llm.name)} at hub commit {rev} (a rerun pins it with --param llm_revision={rev})"
    if "gguf_sha256" in fp:
        return f"weights: {fp.get('gguf_file')} from {fp.get('package')} (SHA-256 {str(fp['gguf_sha256'])[:12]}…)"
    return f"weights: local folder {llm.name} (content hash {str(fp.get('files_sha256', '?'))[:12]}…)"


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """Every id that ends a generation: the generation config's EOS ids and the tokenizer's."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in (gen_eos, getattr(tokenizer, "eos_token_id", None)):
        if v is None:
            continue
        ids.extend([v] if isinstance(v, int) else list(v))
    return tuple(sorted(set(int(i) for i in ids)))


def format_prompt(llm: LLM, user_text: str, system: str | None = None) -> str:
    """The exact string fed to the model for ``user_text``.

    With a chat template: one user message and the assistant generation prompt
    (``add_generation_prompt=True``, plus ``llm.chat_template_kwargs``); with ``system`` (``""``
    included) an explicit system message before it, in place of any the template adds on its own
    (:func:`template_system_prompt`). Without a chat template: the text itself (``system`` ignored).
    """
    if not llm.use_chat_template:
        return user_text
    messages = [{"role": "user", "content": user_text}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return llm.tokenizer.apply_chat_template(
        messages,
        tokenize=False,
        add_generation_prompt=True,
        **llm.chat_template_kwargs,
    )


_USER_MARK, _SYSTEM_MARK = "\x00user-text\x00", "\x00system-text\x00"


def template_system_prompt(tokenizer: Any, **chat_template_kwargs: Any) -> str | None:
    """The system message a chat template adds on its own when the messages have none, else None.

    Read off the formatted prompt: a user message alone is formatted once as is and once behind
    an explicit system message; where the first has, in the place of that system message's text,
    some other text, that text is what the template injects (SmolLM2: "You are a helpful AI
    assistant named SmolLM, trained by Hugging Face"). None when the template adds nothing there
    (Qwen3), has no such place (templates that reject or merge a system message), or is absent.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None

    def render(messages: list[dict[str, str]]) -> str:
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False, **chat_template_kwargs
        )
        return text[: text.index(_USER_MARK)] if _USER_MARK in text else ""

    user = {"role": "user", "content": _USER_MARK}
    try:
        plain, explicit = render([user]), render([{"role": "system", "content": _SYSTEM_MARK}, user])
    except Exception:  # a template that refuses a system message has no default one to report either
        return None
    if _SYSTEM_MARK not in explicit:
        return None
    before, after = explicit.split(_SYSTEM_MARK, 1)
    if len(plain) <= len(before) + len(after) or not (plain.startswith(before) and plain.endswith(after)):
        return None
    injected = plain[len(before) : len(plain) - len(after)].strip()
    return injected or None


def system_prompt_note(llm: LLM) -> str:
    """One line for notebook 02: which system message every prompt of ``llm`` carries, and from where."""
    if not llm.use_chat_template:
        return f"{llm.name}: no chat template, the prompt is the cue text itself (no system prompt)"
    injected = template_system_prompt(llm.tokenizer, **llm.chat_template_kwargs)
    if injected is None:
        return f"{llm.name}: the chat template adds no system prompt"
    return f"{llm.name}: the chat template injects the system prompt {injected!r} into every prompt (none is given)"


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


__all__ = [
    "LLM",
    "decoder_parts",
    "encode_prompts",
    "format_prompt",
    "free_llm",
    "load_llm",
    "system_prompt_note",
    "template_system_prompt",
]
