"""The code's style is checked, not hoped for: ruff's lint and format over everything the project writes in Python."""

from __future__ import annotations

import subprocess
import sys

from helpers.core.paths import PROJECT_ROOT

PATHS = ["helpers", "tests", "benchmarks", "notebooks", "scripts"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS], capture_output=True, text=True, cwd=PROJECT_ROOT
    )


def test_ruff_lint_passes():
    proc = _ruff("check", "--output-format", "concise")
    assert proc.returncode == 0, f"ruff check found problems (fix with `ruff check --fix`):\n{proc.stdout}{proc.stderr}"


def test_ruff_format_leaves_every_file_as_it_is():
    proc = _ruff("format", "--check")
    assert proc.returncode == 0, f"files ruff would reformat (run `ruff format`):\n{proc.stdout}{proc.stderr}"
