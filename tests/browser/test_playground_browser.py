"""The playground as a person uses it: JupyterLab in headless Chromium, Run All, click Generate.

Slow and needs the Debian ``chromium`` package and the ``playwright`` Python package (no
browser download: Playwright drives the system Chromium). Run it with ``make test-browser``
(installs both when missing), or ``PERCEIVE_BROWSER=1 .venv/bin/python -m pytest tests/browser -rs``.

A tiny finished run (random-weight LLM, generated images and tones, random encoder
features; see ``tests/playground_run.py``) is written to a temporary folder; JupyterLab
starts on a free localhost port with a token and opens a copy of
``notebooks/10_playground.ipynb`` whose parameters point at that run.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.paths import PROJECT_ROOT

CHROMIUM = os.environ.get("PERCEIVE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 180_000
#: Screenshot and JupyterLab log of the last browser test run (kept for a person to look at).
ARTIFACTS = Path(os.environ.get("PERCEIVE_BROWSER_ARTIFACTS", PROJECT_ROOT / "outputs" / "browser-test"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("PERCEIVE_BROWSER") != "1",
        reason="browser test: set PERCEIVE_BROWSER=1 (or run `make test-browser`); needs chromium and playwright",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A tiny run, the parameterised playground notebook and a JupyterLab server: (url, expected texts)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: `apt-get install -y chromium chromium-driver` (or `make test-browser`)")
    import papermill as pm

    from helpers.artifacts import load_table
    from playground_run import MAX_NEW_TOKENS, make_run
    from tiny_models import save_tiny_llm

    root = tmp_path_factory.mktemp("browser")
    env = {k: v for k, v in os.environ.items() if k not in ("PERCEIVE_HEADLESS", "CI")}  # live widgets, not the summary
    env.update(
        PERCEIVE_CACHE=str(root / "cache"),
        PERCEIVE_OUTPUTS=str(root / "outputs"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        JUPYTER_CONFIG_DIR=str(root / "jupyter_config"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter_runtime"),
        OMP_NUM_THREADS="1",
    )
    saved = dict(os.environ)
    os.environ["PERCEIVE_CACHE"] = env["PERCEIVE_CACHE"]
    try:
        model_dir = save_tiny_llm(root / "model", "qwen3", True)
        run = make_run(root / "outputs", model_dir)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    nb_dir = root / "notebooks"
    nb_dir.mkdir()
    pm.execute_notebook(
        str(PROJECT_ROOT / "notebooks" / "10_playground.ipynb"),
        str(nb_dir / "10_playground.ipynb"),
        parameters=dict(
            run_name=run.name, llm=str(model_dir), vision_encoders=["toyvision"], audio_encoders=["toyaudio"],
            max_new_tokens=MAX_NEW_TOKENS, k=3, n_boot=50, playground_items=12, gen_batch_size=5,
        ),
        prepare_only=True,
        kernel_name="python3",
    )
    gens = load_table(run.generations)
    expected = gens[(gens["cue"] == "SEE")].sort_values("id")["text"].iloc[0]

    port, token = _free_port(), secrets.token_hex(16)
    log = root / "jupyter.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nb_dir}", "--ServerApp.port_retries=0",
        f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])  # containers and CI often run as root
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=nb_dir)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/10_playground.ipynb?token={token}", "expected": expected,
               "root": root, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root / "jupyter_runtime", ignore_errors=True)


def _dismiss(page, name: str) -> None:
    """Click button ``name`` if it is on screen (JupyterLab's news toast, a kernel dialog)."""
    button = page.get_by_role("button", name=name, exact=True)
    if button.count() and button.first.is_visible():
        button.first.click()


def test_generate_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "playground.png"
    t0 = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(lab["url"])
            page.locator(".jp-Notebook").first.wait_for(state="visible")
            # wait for the notebook's kernel before running (a run with no kernel asks for one)
            expect(page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle"))).to_be_visible(timeout=TIMEOUT_MS)
            _dismiss(page, "No")  # "get notified about official Jupyter news?"
            # Run > Run All Cells, as a person would
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
            _dismiss(page, "Select")  # a kernel dialog, should one appear: take the preferred kernel
            generate = page.get_by_role("button", name="Generate")
            expect(generate).to_be_visible(timeout=TIMEOUT_MS)
            expect(page.locator(".pg-media img").first).to_be_visible()  # the item's image
            expect(page.locator(".pg-neighbours").first).to_be_visible()  # neighbours beside the encoders'
            generate.click()
            generation = page.locator(".pg-generation").first
            expect(generation).to_have_text(lab["expected"], timeout=TIMEOUT_MS)
            page.screenshot(path=str(shot), full_page=True)
        except Exception:
            page.screenshot(path=str(shot), full_page=True)
            raise
        finally:
            browser.close()
            shutil.copy(lab["log"], ARTIFACTS / "jupyter.log")
            print(f"screenshot: {shot}; jupyter log: {ARTIFACTS / 'jupyter.log'}")
    print(f"generation shown in JupyterLab after {time.perf_counter() - t0:.0f} s in the browser: {lab['expected']!r}")
