"""The package as a wheel: what `pip install .` (not editable) gets must hold every module of the source tree."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile

from helpers.core.paths import PROJECT_ROOT


def test_the_wheel_holds_every_module_and_profile(tmp_path):
    # built from a copy: setuptools reuses a checkout's build/ folder, which would hide a missing package
    src = tmp_path / "src"
    shutil.copytree(PROJECT_ROOT / "helpers", src / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, src / name)
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "--quiet", "-w", str(tmp_path), str(src)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("perceive_repro-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        p.relative_to(PROJECT_ROOT).as_posix()
        for p in (PROJECT_ROOT / "helpers").rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts
    }
    assert any(name.startswith("helpers/lm/") for name in source)
    missing = sorted(source - names)
    assert not missing, f"the wheel lacks {len(missing)} files of helpers/, e.g. {missing[:5]}"


def test_download_hints_name_the_command_the_pinned_hub_client_installs():
    """huggingface_hub ≥ 1.0 installs `hf` only; a hint naming `huggingface-cli` ends in "command not found"."""
    texts = [PROJECT_ROOT / "README.md", *(PROJECT_ROOT / "helpers").rglob("*.py")]
    stale = [p.relative_to(PROJECT_ROOT).as_posix() for p in texts if "huggingface-cli" in p.read_text()]
    assert not stale, f"these still tell users to run huggingface-cli (use `hf download`): {stale}"
