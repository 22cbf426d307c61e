"""Checking a run's parameters before any notebook starts: names, types, values and paths.

A profile, a ``--params-file`` and ``--param key=value`` overrides are merged by
:mod:`helpers.run.runner`; this module then makes the merged set safe to hand to papermill:

- **names**: every key must be declared by the ``parameters`` cell of some numbered
  notebook; a typo (``n_item``) is an error naming the key and the closest declared names,
  never a silently ignored override;
- **None**: YAML ``null``, ``~``, an empty value and the strings ``None``/``none``/``null``
  all mean Python ``None`` (the README's "None takes all" works on the command line);
- **types and values**: a value must have the type of the notebooks' default (an ``int``
  parameter takes no ``10.0`` and no ``True``), and parameters with a meaning beyond their
  type are checked against it (``n_items`` >= 1 or None, ``k`` >= 1, ``quantile`` in (0, 1],
  batch sizes a positive int or ``"auto"``, every cue template with one ``{caption}``, ...);
- **paths**: relative paths the user typed are resolved against the directory the command
  was run from, not ``notebooks/`` (papermill's working directory).

Each problem is a :class:`ParameterError` naming the parameter, the value and the fix.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: strings that mean None wherever a parameter value is read (YAML's own null forms are None already)
NONE_STRINGS = frozenset({"None", "none", "null", "Null", "NULL", "~", ""})

#: parameters holding a local file or folder: relative values are resolved against the caller's cwd
PATH_PARAMS = frozenset({"stamps_dir", "dataset_csv", "dataset_dir", "visual_lexicon", "auditory_lexicon"})
#: parameters that name a model: a registry name, a hub id, or a local folder (resolved only if it exists)
MODEL_PARAMS = frozenset({"llm"})
MODEL_LIST_PARAMS = frozenset({"size_llms"})

BATCH_PARAMS = frozenset({"gen_batch_size", "rep_batch_size", "enc_batch_size"})
POSITIVE_INT = frozenset(
    {"k", "max_new_tokens", "n_perm", "n_shards", "random_T", "random_k", "random_n", "size_T", "playground_items"}
)
NON_NEGATIVE_INT = frozenset({"seed", "first_layer", "gallery_size", "n_players", "n_examples"})
OPTIONAL_POSITIVE_INT = frozenset({"n_items"})
CHOICES: dict[str, tuple[str, ...]] = {"on_bad_item": ("raise", "skip")}
#: parameters whose value may be None although the notebooks' default is not
NULLABLE = frozenset({"llm_dtype", "interactive", "show_item", "shard", "audio_max_seconds"})


class ParameterError(ValueError):
    """A run parameter is unknown, of the wrong type or out of range (the message says the fix)."""


def normalize_none(value: Any) -> Any:
    """``None`` for the spellings of None (see :data:`NONE_STRINGS`), recursively in lists and dicts."""
    if isinstance(value, str) and value.strip() in NONE_STRINGS:
        return None
    if isinstance(value, list):
        return [normalize_none(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize_none(v) for k, v in value.items()}
    return value


def declared_defaults(notebooks: list[Path]) -> dict[str, Any]:
    """Every parameter the notebooks' ``parameters`` cells declare, with its default value
    (the first notebook's where several declare it; ``...`` where the default is not a literal)."""
    import papermill as pm

    out: dict[str, Any] = {}
    for nb in notebooks:
        for name, info in pm.inspect_notebook(str(nb)).items():
            if name in out:
                continue
            try:
                out[name] = ast.literal_eval(info["default"])
            except (ValueError, SyntaxError):
                out[name] = ...
    return out


def check_names(params: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
    """Raise naming each key no notebook declares, with the closest declared names."""
    unknown = [k for k in params if k not in declared]
    if not unknown:
        return
    lines = []
    for key in unknown:
        close = difflib.get_close_matches(key, list(declared), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "no declared parameter is close"
        lines.append(f"{key!r} ({hint})")
    raise ParameterError(
        f"unknown parameter(s): {'; '.join(lines)}. No notebook declares them, so they would be ignored; "
        "fix the name (declared parameters are listed by `python -m helpers.run.runner --list-params`)"
    )


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int_list(value: Any, *, non_empty: bool = False) -> bool:
    return isinstance(value, list) and (bool(value) or not non_empty) and all(_is_int(t) and t >= 1 for t in value)


#: ``(names, test, what is expected)``: parameters whose value means more than its type, checked first to last
_VALUE_RULES: tuple[tuple[frozenset[str], Callable[[Any], bool], str], ...] = (
    (
        OPTIONAL_POSITIVE_INT,
        lambda v: v is None or (_is_int(v) and v >= 1),
        "a positive integer, or None (null) to take all items",
    ),
    (POSITIVE_INT, lambda v: _is_int(v) and v >= 1, "a positive integer"),
    (NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    (
        BATCH_PARAMS,
        lambda v: (_is_int(v) and v >= 1) or (isinstance(v, str) and v.strip().lower() == "auto"),
        "a positive integer, or 'auto' (from free accelerator memory)",
    ),
    (
        frozenset({"quantile"}),
        lambda v: _is_number(v) and 0 < v <= 1,
        "a number in (0, 1] (the clamp quantile of |x|; the PRH reference uses 0.95)",
    ),
    (frozenset({"temperature"}), lambda v: _is_number(v) and v > 0, "a number > 0"),
    (frozenset({"top_p"}), lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    (frozenset({"prefix_lengths"}), _is_int_list, "a list of positive integers (token counts)"),
    (frozenset({"robustness_ks"}), lambda v: _is_int_list(v, non_empty=True), "a non-empty list of positive integers"),
    (
        frozenset({"vision_encoders", "audio_encoders", "size_llms", "robustness_metric"}),
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "a list of names",
    ),
)

#: ``(type test, what is expected)`` for a parameter with no rule of its own, by the type of its default
_LIKE_DEFAULT: tuple[tuple[Callable[[Any], bool], Callable[[Any], bool], str], ...] = (
    (lambda d: isinstance(d, bool), lambda v: isinstance(v, bool), "true or false"),
    (_is_int, _is_int, "an integer like the default {default!r}"),
    (lambda d: isinstance(d, float), _is_number, "a number like the default {default!r}"),
    (lambda d: isinstance(d, str), lambda v: isinstance(v, str), "text like the default {default!r}"),
    (
        lambda d: isinstance(d, (list, tuple)),
        lambda v: isinstance(v, (list, tuple)),
        "a list like the default {default!r}",
    ),
    (lambda d: isinstance(d, dict), lambda v: isinstance(v, dict), "a mapping like the default {default!r}"),
)


def _check_cues(value: Any, fail: Callable[[str], None]) -> None:
    """``cues``: a non-empty mapping of cue name to a text template with one ``{caption}``."""
    from helpers.data.prompts import check_template

    if not isinstance(value, dict) or not value:
        fail("a non-empty mapping of cue name: template with one {caption}")
    for cue, template in value.items():
        if not isinstance(template, str):
            raise ParameterError(f"parameter cues: the template of cue {cue!r} must be text, got {template!r}")
        try:
            check_template(str(cue), template)
        except ValueError as exc:
            raise ParameterError(f"parameter cues: {exc}") from None


def check_value(name: str, value: Any, default: Any = ...) -> None:
    """Raise :class:`ParameterError` when ``value`` is not a valid value of parameter ``name``.

    Parameters with a meaning beyond their type follow their rule (:data:`_VALUE_RULES`,
    :data:`CHOICES`, the cue templates); every other one must have the type of the notebooks'
    ``default`` (None only where the default is None or the name is :data:`NULLABLE`).
    """

    def fail(expected: str) -> None:
        raise ParameterError(f"parameter {name}={value!r} ({_type_name(value)}): expected {expected}")

    for names, ok, expected in _VALUE_RULES:
        if name in names:
            if not ok(value):
                fail(expected)
            return
    if name in CHOICES:
        if value not in CHOICES[name]:
            fail(f"one of {', '.join(repr(c) for c in CHOICES[name])}")
        return
    if name == "cues":
        _check_cues(value, fail)
        return
    if value is None:
        if default is None or default is ... or name in NULLABLE:
            return
        fail(f"a {_type_name(default)} like the default {default!r}")
    if default is None or default is ...:
        return
    for is_kind, ok, expected in _LIKE_DEFAULT:
        if is_kind(default):
            if not ok(value):
                fail(expected.format(default=default))
            return


def check_shard(params: Mapping[str, Any]) -> None:
    shard, n = params.get("shard"), params.get("n_shards", 1)
    if shard is not None and _is_int(n) and not (_is_int(shard) and 0 <= shard < n):
        raise ParameterError(f"parameter shard={shard!r}: expected an integer in 0..{n - 1} (n_shards={n}) or None")


def resolve_paths(params: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """A copy of ``params`` with relative local paths made absolute against ``base`` (the caller's cwd).

    Data and lexicon paths (:data:`PATH_PARAMS`) are always resolved; model names (``llm``,
    ``size_llms``, encoder ``checkpoint`` options) only when ``base / value`` exists, since they
    may also be registry names or hub ids (``Qwen/Qwen3-0.6B``).
    """

    def local(value: Any, must_exist: bool) -> Any:
        if not isinstance(value, str) or not value or value.startswith("~"):
            return str(Path(value).expanduser()) if isinstance(value, str) and value.startswith("~") else value
        p = Path(value)
        if p.is_absolute():
            return value
        candidate = (base / p).resolve()
        if must_exist and not candidate.exists():
            return value
        return str(candidate)

    out = dict(params)
    for key in PATH_PARAMS & out.keys():
        out[key] = local(out[key], must_exist=False)
    for key in MODEL_PARAMS & out.keys():
        out[key] = local(out[key], must_exist=True)
    for key in MODEL_LIST_PARAMS & out.keys():
        if isinstance(out[key], list):
            out[key] = [local(v, must_exist=True) for v in out[key]]
    options = out.get("encoder_options")
    if isinstance(options, dict):
        out["encoder_options"] = {
            enc: (
                {**opts, "checkpoint": local(opts["checkpoint"], must_exist=True)}
                if isinstance(opts, dict) and "checkpoint" in opts
                else opts
            )
            for enc, opts in options.items()
        }
    return out


def prepare(params: Mapping[str, Any], declared: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Normalise None spellings, check names, types and values, and resolve paths; the result
    is what the notebooks receive."""
    values = {k: normalize_none(v) for k, v in params.items()}
    check_names(values, declared)
    for name, value in values.items():
        check_value(name, value, declared.get(name, ...))
    check_shard(values)
    return resolve_paths(values, base)


__all__ = [
    "NONE_STRINGS",
    "PATH_PARAMS",
    "ParameterError",
    "check_names",
    "check_value",
    "declared_defaults",
    "normalize_none",
    "prepare",
    "resolve_paths",
]
