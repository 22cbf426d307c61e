"""Profiles and headless execution of the numbered notebooks with papermill.

A *profile* is a parameter set (``helpers/run/profiles/<name>.yaml``) layered on top of
``default.yaml``; a ``--params-file`` (YAML of overrides, e.g. the cues the playground
saved) comes next, and command-line ``--param key=value`` overrides come last. Each
notebook receives only the parameters its ``parameters`` cell declares.

    python -m helpers.run.runner --profile tiny
    python -m helpers.run.runner --profile default --param n_items=200 --only 05
    python -m helpers.run.runner --params-file outputs/params/default.yaml
    perceive-run --profile tiny          (the same command, as installed by the package)

Before any notebook starts, :func:`helpers.run.params.prepare` checks the merged parameters:
a name no notebook declares, a value of the wrong type or out of range is an error (exit
code 2); ``None``/``null``/``~`` mean None; relative paths are resolved against the
directory the command runs in. Executed notebooks go to ``outputs/notebooks/<run>/`` (see
:mod:`helpers.core.paths` for where ``outputs/`` is in a checkout and when installed). A
failing notebook stops the run with the notebook, the cell number and the error on one
line (exit code 1).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from helpers.core import paths
from helpers.data import prompts
from helpers.data.artifacts import RunPaths
from helpers.run.params import declared_defaults, normalize_none, prepare

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
NOTEBOOKS_DIR = paths.resource_dir("notebooks")
BASE_PROFILE = "default"


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(
    name: str, overrides: Mapping[str, Any] | None = None, params_file: str | Path | None = None
) -> dict[str, Any]:
    """The parameters of profile ``name``.

    Layers, each replacing whole values of the one before: ``default.yaml``, the profiles
    ``<name>.yaml`` extends (``extends: <parent>``), ``<name>.yaml``, the YAML mapping in
    ``params_file`` (if given), then ``overrides``. ``run_name`` defaults to the profile name.
    """
    params = yaml.safe_load((PROFILES_DIR / f"{BASE_PROFILE}.yaml").read_text()) or {}
    for layer in _profile_chain(name):
        params.update(layer)
    params["run_name"] = params.get("run_name") if name == BASE_PROFILE else _profile_layers(name).get("run_name", name)
    if params_file is not None:
        params.update(load_params_file(params_file))
    params.update(overrides or {})
    return {k: normalize_none(v) for k, v in params.items()}


def _profile_layers(name: str) -> dict[str, Any]:
    """The YAML mapping of one profile file (``extends`` included)."""
    if name not in profile_names():
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(profile_names())}")
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text()) or {}


def _profile_chain(name: str) -> list[dict[str, Any]]:
    """The layers of profile ``name`` after ``default.yaml``, outermost parent first.

    A profile may start from another with ``extends: <profile>`` (``paper-tiny`` is ``paper``
    made small), so a setting lives in one file only.
    """
    chain: list[dict[str, Any]] = []
    seen: list[str] = []
    while name != BASE_PROFILE:
        if name in seen:
            raise ValueError(f"profiles extend each other in a cycle: {' -> '.join([*seen, name])}")
        seen.append(name)
        layer = dict(_profile_layers(name))
        parent = layer.pop("extends", BASE_PROFILE)
        chain.insert(0, layer)
        name = str(parent)
    return chain


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of parameter overrides (what the playground's Save button writes).

    ``cues``, when present, must map names to templates with one ``{caption}`` field.
    """
    from helpers.data.prompts import check_template

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} not found (the playground writes outputs/params/<run>.yaml)")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"params file {path} is not valid YAML: {exc}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"params file {path} must hold a mapping of parameter: value, got {type(values).__name__}")
    cues = values.get("cues")
    if cues is not None:
        if not isinstance(cues, dict) or not cues:
            raise ValueError(f"params file {path}: cues must be a non-empty mapping of name: template")
        for cue, template in cues.items():
            check_template(str(cue), str(template))
    return values


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (numbers, booleans, lists, null; ``None`` is None too)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--param expects key=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ValueError(f"--param {key.strip()}: {value!r} is not a valid YAML value ({exc})") from None
    return key.strip(), normalize_none(parsed)


def numbered_notebooks(directory: Path = NOTEBOOKS_DIR) -> list[Path]:
    """``NN_name.ipynb`` files in run order."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(path: Path) -> set[str]:
    """Names declared in the notebook's ``parameters`` cell (exactly one such cell is required)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    import papermill as pm

    return set(pm.inspect_notebook(str(path)).keys())


def select(notebooks: Sequence[Path], only: Sequence[str] = ()) -> list[Path]:
    """Keep notebooks whose number or name starts with one of ``only`` (all when empty)."""
    if not only:
        return list(notebooks)
    chosen = [nb for nb in notebooks if any(nb.name.startswith(o) for o in only)]
    if not chosen:
        raise ValueError(f"--only {list(only)} matches none of {[n.name for n in notebooks]}")
    return chosen


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook and the cell."""


def run_notebooks(
    params: Mapping[str, Any],
    notebooks: Sequence[Path] | None = None,
    outputs: Path | None = None,
    log_output: bool = True,
) -> list[Path]:
    """Execute ``notebooks`` in order with papermill; return the executed copies' paths.

    ``params`` are checked and their relative paths resolved against the current directory
    first (:func:`helpers.run.params.prepare`); a bad one raises :class:`ParameterError` before
    any notebook runs.
    """
    notebooks = list(notebooks) if notebooks is not None else numbered_notebooks()
    params = check_params(params, notebooks)
    run = RunPaths.of(str(params["run_name"]), outputs)
    run.notebooks.mkdir(parents=True, exist_ok=True)
    # inherited by the kernels (started in the notebooks' folder): text progress bars, the roots as resolved here
    kernel_env = {"PERCEIVE_HEADLESS": "1", **paths.root_environment()}
    if outputs is not None:
        kernel_env["PERCEIVE_OUTPUTS"] = str(Path(outputs).resolve())
    executed = []
    with _environ(kernel_env):
        for nb in notebooks:
            executed.append(_run_one(nb, params, run, log_output))
    return executed


def check_params(params: Mapping[str, Any], notebooks: Sequence[Path] = ()) -> dict[str, Any]:
    """``params`` checked against what the numbered notebooks (and ``notebooks``) declare, with
    None spellings normalised and relative paths resolved against the current directory."""
    declared = declared_defaults(list(dict.fromkeys([*numbered_notebooks(), *notebooks])))
    return prepare(params, declared, Path.cwd())


@contextlib.contextmanager
def _environ(values: Mapping[str, str]):
    """Set environment variables for the kernels started inside the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_one(nb: Path, params: Mapping[str, Any], run: RunPaths, log_output: bool) -> Path:
    """Execute one notebook; a failure raises :class:`NotebookFailed` naming it and the cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    declared = notebook_parameters(nb)
    nb_params = {k: v for k, v in params.items() if k in declared}
    out = run.notebooks / nb.name
    print(f"[runner] {nb.name}: {nb_params}", flush=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters=nb_params,
            cwd=str(nb.parent),
            progress_bar=False,
            log_output=log_output,
            kernel_name="python3",
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{nb.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}. Executed copy with the traceback: {out}"
        ) from None
    print(f"[runner] {nb.name} done in {time.perf_counter() - t0:.1f} s -> {out}", flush=True)
    return out


# --------------------------------------------------------------------------------------
# Params files written by the playground
# --------------------------------------------------------------------------------------


def params_path(run: RunPaths) -> Path:
    """Where the playground saves parameter overrides for ``run``: ``<outputs>/params/<run>.yaml``."""
    return run.root / "params" / f"{run.name}.yaml"


def save_template_to_params(path: Path, name: str, template: str, base_cues: Mapping[str, str] | None = None) -> Path:
    """Add cue ``name`` = ``template`` to the ``cues`` of the params file at ``path`` (created if absent).

    The runner replaces a parameter as a whole, so the file keeps the *full* cue set: the cues
    already in the file, else ``base_cues`` (the run's, so SEE/HEAR/NONE stay), plus this one.
    Other keys of the file are kept. Returns ``path``.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name or ""):
        raise ValueError(f"cue name must be a word of letters, digits and _ starting with a letter, got {name!r}")
    prompts.check_template(name, template)
    path = Path(path)
    existing: dict[str, Any] = {}
    if path.is_file():
        existing = yaml.safe_load(path.read_text()) or {}
        if not isinstance(existing, dict):
            raise ValueError(f"{path} does not hold a YAML mapping of parameters; move it aside and save again")
    cues = dict(existing.get("cues") or base_cues or prompts.DEFAULT_CUES)
    cues[name] = template
    existing["cues"] = cues
    from helpers.core.cache import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path,
        "# written by the playground (notebooks/10_playground.ipynb)\n"
        + yaml.safe_dump(existing, sort_keys=False, allow_unicode=True),
    )
    return path


def rerun_command(path: Path, profile: str = "default") -> str:
    """The command that reruns the main notebooks with the saved parameters: ``make reproduce`` (run from
    the project root) in a checkout, the ``perceive-run`` console script when the package is installed."""
    path = Path(path).resolve()
    if paths.INSTALLED:
        return f"perceive-run --profile {profile} --params-file {path}"
    shown = path.relative_to(paths.PROJECT_ROOT) if path.is_relative_to(paths.PROJECT_ROOT) else path
    return f'make reproduce PROFILE={profile} PARAMS="--params-file {shown}"'


def main(argv: Sequence[str] | None = None) -> int:
    """The ``perceive-run`` command (also ``python -m helpers.run.runner``); returns the exit status."""
    prog = "perceive-run" if Path(sys.argv[0]).name == "perceive-run" else "python -m helpers.run.runner"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=BASE_PROFILE, help=f"one of: {', '.join(profile_names())}")
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="YAML of parameter overrides applied after the profile, before --param (e.g. outputs/params/default.yaml)",
    )
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    parser.add_argument("--only", nargs="*", default=[], metavar="NN", help="run only these notebooks (e.g. 04 05)")
    parser.add_argument(
        "--outputs", type=Path, default=None, help="outputs folder (default: $PERCEIVE_OUTPUTS or outputs/)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not echo notebook output to the log")
    parser.add_argument(
        "--list-params", action="store_true", help="print every declared parameter and its default, then exit"
    )
    args = parser.parse_args(argv)
    if args.list_params:
        for name, default in sorted(declared_defaults(numbered_notebooks()).items()):
            print(f"{name} = {default!r}")
        return 0
    if not args.quiet:  # papermill echoes the notebooks' output through its logger
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    try:
        params = load_profile(args.profile, dict(parse_override(p) for p in args.param), args.params_file)
        chosen = select(numbered_notebooks(), args.only)
        check_params(params, chosen)
    except (FileNotFoundError, ValueError) as exc:  # ParameterError is a ValueError
        print(f"[runner] {exc}", file=sys.stderr, flush=True)
        return 2
    t0 = time.perf_counter()
    try:
        run_notebooks(params, chosen, args.outputs, log_output=not args.quiet)
    except NotebookFailed as exc:
        print(f"[runner] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"[runner] profile {args.profile!r} finished in {time.perf_counter() - t0:.1f} s", flush=True)
    if not (args.only or args.param or args.params_file):
        _check_reference(str(params["run_name"]), args.outputs)
    return 0


def _check_reference(run_name: str, outputs: Path | None) -> None:
    """After a whole run of a profile as shipped, its comparison with ``reference/<run>/`` (if there is one)."""
    from helpers.run import reference

    ref = reference.REFERENCE_ROOT / run_name
    if not ref.is_dir():
        return
    run = RunPaths.of(run_name, outputs)
    gens = reference.load_generations(run)
    print("[runner] compared with the reference (make check-reference):", flush=True)
    print(reference.compare_run(run.results, ref, gens).format(), flush=True)


if __name__ == "__main__":
    sys.exit(main())
