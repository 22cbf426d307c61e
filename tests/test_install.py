"""The package installed from its wheel, away from the checkout.

A fresh virtual environment gets ``helpers`` only from the wheel; the heavy dependencies (torch,
transformers, the packages that carry the embedded models) come from this environment's
site-packages through a ``.pth`` line, which puts them on the path without running this
environment's own ``.pth`` files (so the editable install of the checkout stays out). Then every
module imports, the resources resolve inside the installed package, the cache and outputs default to
the current directory, and the console scripts run the ``tiny`` profile in an empty directory: the
outputs land there, nothing in site-packages.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_packaging import build_wheel

import helpers
from helpers.core.paths import PROJECT_ROOT, cache_root, raw_data_root
from helpers.run.runner import numbered_notebooks

pytestmark = pytest.mark.slow

#: run inside the installed environment: where helpers and its resources come from, and what imports
PROBE = """
import importlib, json, pkgutil, sys
import helpers
from helpers.core import paths
from helpers.data import lexicon
from helpers.run import reference, runner
from jupyter_client.kernelspec import KernelSpecManager

modules = [m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "helpers": helpers.__file__,
    "installed": paths.INSTALLED,
    "modules": modules,
    "notebooks": [str(p) for p in runner.numbered_notebooks()],
    "lexicon": str(lexicon.default_path("visual")),
    "reference": str(reference.REFERENCE_ROOT / "default" / reference.GENERATIONS),
    "cache": str(paths.cache_root()),
    "outputs": str(paths.outputs_root()),
    "kernel": KernelSpecManager().get_kernel_spec("python3").argv[0],
    "executable": sys.executable,
}))
"""


@dataclass(frozen=True)
class Installed:
    """A virtual environment with the wheel installed."""

    python: Path
    bin: Path
    site_packages: Path
    env: dict[str, str]  # for commands run in it: its bin first, no path or root overrides from this process


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def _clean_env(bin_dir: Path) -> dict[str, str]:
    """This process's environment without what would lead the installed package back to the checkout."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "PERCEIVE_CACHE", "PERCEIVE_OUTPUTS", "PERCEIVE_SHARED")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    wheel = build_wheel(tmp_path_factory.mktemp("wheel"))
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = _clean_env(venv / "bin")
    # installed before the .pth line exists, so pip sees no other perceive-repro
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet"]
    subprocess.run([*pip, str(wheel)], check=True, env=env)
    site = _site_packages(python)
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "dependencies_from_the_test_environment.pth").write_text("".join(f"{p}\n" for p in ours))
    return Installed(python, venv / "bin", site, env)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if "__pycache__" not in p.parts}


def test_helpers_come_only_from_the_wheel_and_every_module_imports(installed, tmp_path):
    out = subprocess.run(
        [str(installed.python), "-c", PROBE], cwd=tmp_path, env=installed.env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    package = installed.site_packages / "helpers"
    assert Path(probe["helpers"]).parent == package and probe["installed"]
    assert PROJECT_ROOT not in Path(probe["helpers"]).parents
    source = {m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.")}
    assert set(probe["modules"]) == source
    assert [Path(p).name for p in probe["notebooks"]] == [p.name for p in numbered_notebooks()]
    for key in ("notebooks", "lexicon", "reference"):
        paths = probe[key] if isinstance(probe[key], list) else [probe[key]]
        assert all(Path(p).is_file() and package in Path(p).parents for p in paths), (key, paths)
    assert probe["cache"] == str(tmp_path / "data" / "cache") and probe["outputs"] == str(tmp_path / "outputs")
    assert probe["kernel"] in ("python", probe["executable"])  # jupyter_client runs "python" as sys.executable


def test_perceive_run_runs_the_tiny_profile_in_an_empty_directory(installed, tmp_path):
    """The outputs default to the directory the command runs in. The cache (converted models, generations,
    features) and the fetched Tux Paint data are the checkout's, as for the chain test of the checkout
    (tests/test_notebooks.py): a fresh cache would recompute the whole chain, which that test covers."""
    work = tmp_path / "work"
    work.mkdir()
    env = {**installed.env, "PERCEIVE_CACHE": str(cache_root()), "PERCEIVE_RAW": str(raw_data_root())}
    before = _files(installed.site_packages)
    run = subprocess.run(
        ["perceive-run", "--profile", "tiny", "--quiet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert "profile 'tiny' finished" in run.stdout
    outputs = work / "outputs"
    executed = sorted(p.name for p in (outputs / "notebooks" / "tiny").glob("*.ipynb"))
    assert executed == [p.name for p in numbered_notebooks()]
    shown = ("results/tiny/alignment.csv", "results/tiny/sensory_words.csv", "figures/tiny/05_alignment_bars.png")
    for path in (*shown, "runs/tiny/generations.parquet"):
        assert (outputs / path).stat().st_size > 0, path
    assert sorted(p.name for p in work.iterdir()) == ["outputs"]
    assert _files(installed.site_packages) == before, "the run wrote into site-packages"


def test_check_reference_command(installed, tmp_path):
    out = subprocess.run(
        ["perceive-check-reference", "--help"], cwd=tmp_path, env=installed.env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("usage: perceive-check-reference") and "--reference" in out.stdout
    write = subprocess.run(
        ["perceive-check-reference", "--write", "--run", "tiny"],
        cwd=tmp_path,
        env=installed.env,
        capture_output=True,
        text=True,
    )
    assert write.returncode == 2 and "--reference" in write.stderr  # the shipped reference is read-only
