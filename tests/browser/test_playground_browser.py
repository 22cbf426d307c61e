"""The playground as a person uses it: JupyterLab in headless Chromium, Run All, click Generate.

Slow and needs the Debian ``chromium`` package and the ``playwright`` Python package (no
browser download: Playwright drives the system Chromium). Run it with ``make test-browser``
(installs both when missing), or ``PERCEIVE_BROWSER=1 .venv/bin/python -m pytest tests/browser -rs``.

Two runs, each in its own JupyterLab (free localhost port, token) opening a copy of
``notebooks/10_playground.ipynb`` whose parameters point at the run:

* ``toy``: a tiny finished run (random-weight LLM, generated images and tones, random encoder
  features; see ``tests/playground_run.py``) written to a temporary folder; always;
* ``real``: a finished run of the real pipeline, when ``PERCEIVE_BROWSER_OUTPUTS`` names its
  outputs folder (the run of profile ``PERCEIVE_BROWSER_PROFILE``, default ``tiny``; its
  parameters are the profile's), e.g. after
  ``PERCEIVE_OUTPUTS=/tmp/run/outputs python -m helpers.run.runner --profile tiny``:
  ``PERCEIVE_BROWSER_OUTPUTS=/tmp/run/outputs make test-browser``. Skipped otherwise.
  The run's cache (``PERCEIVE_CACHE``, default ``data/cache``) makes Generate a cache hit.

After Generate shows the run's own generation, the page is made as tall as the notebook's
scroll area, so the screenshots hold the whole notebook (``playground-<run>.png``) and the whole
widget (``playground-<run>-widget.png``), legends included, in ``outputs/browser-test/``
(``PERCEIVE_BROWSER_ARTIFACTS``).
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

from helpers.core.paths import PROJECT_ROOT, outputs_root

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
#: Tallest page the screenshot makes (px): Chromium's limit on one capture is 16384.
MAX_PAGE_HEIGHT = 16_000
#: Screenshot and JupyterLab log of the last browser test run (kept for a person to look at).
ARTIFACTS = Path(os.environ.get("PERCEIVE_BROWSER_ARTIFACTS", outputs_root() / "browser-test"))

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


def _toy_run(root: Path, env: dict[str, str]):
    """The toy run under ``root`` (its own cache): (run, notebook parameters)."""
    from playground_run import MAX_NEW_TOKENS, make_run
    from tiny_models import save_tiny_llm

    env.update(PERCEIVE_CACHE=str(root / "cache"), PERCEIVE_OUTPUTS=str(root / "outputs"))
    saved = dict(os.environ)
    os.environ["PERCEIVE_CACHE"] = env["PERCEIVE_CACHE"]
    try:
        model_dir = save_tiny_llm(root / "model", "qwen3", True)
        run = make_run(root / "outputs", model_dir)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return run, dict(
        run_name=run.name,
        llm=str(model_dir),
        vision_encoders=["toyvision"],
        audio_encoders=["toyaudio"],
        max_new_tokens=MAX_NEW_TOKENS,
        k=3,
        playground_items=12,
        gen_batch_size=5,
    )


def _real_run(env: dict[str, str]):
    """The finished run of profile ``PERCEIVE_BROWSER_PROFILE`` under ``PERCEIVE_BROWSER_OUTPUTS``: (run, parameters)."""
    from helpers.data.artifacts import RunPaths
    from helpers.run import runner

    outputs = os.environ.get("PERCEIVE_BROWSER_OUTPUTS")
    if not outputs:
        pytest.skip(
            "real run: set PERCEIVE_BROWSER_OUTPUTS to the outputs folder of a finished run (e.g. the tiny profile's)"
        )
    params = runner.load_profile(os.environ.get("PERCEIVE_BROWSER_PROFILE", "tiny"))
    run = RunPaths.of(params["run_name"], Path(outputs))
    if not run.generations.is_file():
        pytest.fail(f"{run.generations} not found: run the profile's notebooks 01-04 with PERCEIVE_OUTPUTS={outputs}")
    env["PERCEIVE_OUTPUTS"] = str(Path(outputs).resolve())
    declared = runner.notebook_parameters(PROJECT_ROOT / "notebooks" / "10_playground.ipynb")
    return run, {k: v for k, v in params.items() if k in declared}


@pytest.fixture(scope="module", params=["toy", "real"])
def lab(request, tmp_path_factory):
    """A finished run, the parameterised playground notebook and a JupyterLab server: (url, expected texts)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: `apt-get install -y chromium chromium-driver` (or `make test-browser`)")
    import papermill as pm

    from helpers.analyses.playground import run_cues
    from helpers.data.artifacts import load_table
    from helpers.data.manifest import load_manifest

    root = tmp_path_factory.mktemp(f"browser-{request.param}")
    env = {k: v for k, v in os.environ.items() if k not in ("PERCEIVE_HEADLESS", "CI")}  # live widgets, not the summary
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        JUPYTER_CONFIG_DIR=str(root / "jupyter_config"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter_runtime"),
        OMP_NUM_THREADS="1",
    )
    run, parameters = _toy_run(root, env) if request.param == "toy" else _real_run(env)
    nb_dir = root / "notebooks"
    nb_dir.mkdir()
    pm.execute_notebook(
        str(PROJECT_ROOT / "notebooks" / "10_playground.ipynb"),
        str(nb_dir / "10_playground.ipynb"),
        parameters=parameters,
        prepare_only=True,
        kernel_name="python3",
    )
    # what Generate shows at the start: the first item under the run's first cue, from the cache
    gens = load_table(run.generations)
    first_item = str(load_manifest(run.manifest)["id"].iloc[0])
    expected = gens[(gens["cue"] == next(iter(run_cues(gens)))) & (gens["id"] == first_item)]["text"].iloc[0]

    port, token = _free_port(), secrets.token_hex(16)
    log = root / "jupyter.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={nb_dir}",
        "--ServerApp.port_retries=0",
        f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])  # containers and CI often run as root
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=nb_dir)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        yield {
            "url": f"http://127.0.0.1:{port}/lab/tree/10_playground.ipynb?token={token}",
            "expected": expected,
            "root": root,
            "log": log,
            "name": request.param,
            "k": parameters["k"],
        }
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


def _fit_page_to_notebook(page) -> int:
    """Make the page as tall as the notebook's scroll area, so a screenshot holds every cell; the new height."""
    overflow = page.evaluate(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel');
            const scrollers = [panel, ...panel.querySelectorAll('*')].filter(
                e => e.scrollHeight > e.clientHeight + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY));
            return Math.max(0, ...scrollers.map(e => e.scrollHeight - e.clientHeight));
        }"""
    )
    size = page.viewport_size
    height = min(MAX_PAGE_HEIGHT, size["height"] + int(overflow) + 40)
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(1500)  # relayout; a windowed notebook renders the cells now in view
    return height


def _screenshots(page, name: str) -> list[Path]:
    """The whole notebook (top to last cell) and the whole playground widget, after fitting the page to the notebook."""
    _fit_page_to_notebook(page)
    page.evaluate("() => document.querySelectorAll('.jp-NotebookPanel *').forEach(e => { e.scrollTop = 0; })")
    page.wait_for_timeout(500)
    box = page.evaluate(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel').getBoundingClientRect();
            const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Cell')];
            const bottom = Math.max(...cells.map(c => c.getBoundingClientRect().bottom));
            return {x: panel.left, y: panel.top, width: panel.width, height: Math.min(bottom, panel.bottom) - panel.top + 16};
        }"""
    )
    shots = [ARTIFACTS / f"playground-{name}.png", ARTIFACTS / f"playground-{name}-widget.png"]
    page.screenshot(path=str(shots[0]), clip=box)
    widget = page.locator(".jp-OutputArea-output", has=page.locator(".pg-media")).first
    if widget.count():
        widget.screenshot(path=str(shots[1]))
    return [s for s in shots if s.is_file()]


def test_generate_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"playground-{lab['name']}*.png"):
        old.unlink()
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
            # the legend of the neighbour table, on screen, and short model names in the dropdown
            legend = page.locator(".pg-nn-legend").first
            expect(legend).to_be_visible()
            expect(legend).to_contain_text("outlined in green")
            expect(legend).to_contain_text("cosine similarity")
            expect(legend).to_contain_text(f"k={lab['k']}")
            labels = page.locator(".widget-dropdown select").filter(has=page.locator("option", has_text="Gemma-3-270M"))
            expect(labels.first).to_be_attached()
            assert not labels.first.locator("option", has_text="/").count(), labels.first.inner_text()
            generate.click()
            generation = page.locator(".pg-generation").first
            expect(generation).to_have_text(lab["expected"], timeout=TIMEOUT_MS)
            shots = _screenshots(page, lab["name"])
            assert len(shots) == 2, shots
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"playground-{lab['name']}-failed.png"), full_page=True)
            raise
        finally:
            browser.close()
            shutil.copy(lab["log"], ARTIFACTS / f"jupyter-{lab['name']}.log")
    print(
        f"{lab['name']}: screenshots {[str(s) for s in shots]}; jupyter log {ARTIFACTS / ('jupyter-' + lab['name'] + '.log')}"
    )
    print(f"generation shown in JupyterLab after {time.perf_counter() - t0:.0f} s in the browser: {lab['expected']!r}")
