# The README's two commands: `make demo` (main job on the embedded model) and `make test` (default test suite).
# Both create .venv, install torch 2.13.0 (CPU wheel) first, then this package with its dev and nnsight extras
# (TransformerLens 4.x; the nnsight engine's tests run in the default suite).
PYTHON ?= python3
VENV ?= .venv
# Extra requirements pinned at set-up (test-tl3 pins TransformerLens 3.9 in a venv of its own).
PIN ?=
PY := $(VENV)/bin/python
# glibc allocator thresholds: CPU training/inference page-faults far less (measured ~2x throughput).
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 100000000000
export MALLOC_TOP_PAD_ ?= 1000000000

.PHONY: setup demo test test-tl3 test-all test-unit test-equivalence test-acceptance test-benchmark lint train figures png-deps bench bench-nnsight bench-profile lab

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,nnsight]" $(PIN)
	touch $@

demo: setup
	$(VENV)/bin/interp demo

test: setup
	$(PY) -m pytest -q

# TransformerLens 3.9 (HookedTransformer), still supported: the same default suite in .venv-tl3 (CI runs both).
test-tl3:
	$(MAKE) test VENV=.venv-tl3 PIN="transformer-lens==3.9.0"

test-all: setup
	$(PY) -m pytest -q -m ""

# The suite by kind, each runnable alone: unit (one module at a time), equivalence (every engine against the
# reference method and Hugging Face), acceptance (the command line, figures, docs, notebooks as a user meets them),
# benchmark (the committed measurements; with -m "" also a quick benchmark run).
test-unit test-equivalence test-acceptance test-benchmark: test-%: setup
	$(PY) -m pytest -q tests/$*

lint: setup
	$(VENV)/bin/ruff check interp tests experiments benchmarks
	$(VENV)/bin/ruff format --check interp tests experiments benchmarks

train: setup
	$(VENV)/bin/interp train --config experiments/configs/embedded.json --out runs/embedded

figures: setup
	$(VENV)/bin/interp figures

# Jupyter: the notebooks under experiments/notebooks and interp.explore (JupyterLab is not a dependency of the package).
lab: setup
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab experiments/notebooks

# Static PNG export needs a Chromium for kaleido (Debian package; root). Without it figures are HTML + JSON only.
png-deps:
	apt-get update -qq && apt-get install -y -qq chromium

bench: setup
	OMP_NUM_THREADS=2 $(PY) benchmarks/run.py --threads 2

# The nnsight engine against a per-prompt nnsight loop, a hand-batched trace and the fastest engine (issue 38); one
# thread, so that a busy shared machine's OpenMP waits do not swamp the per-trace costs compared.
bench-nnsight: setup
	OMP_NUM_THREADS=1 $(PY) benchmarks/run.py --threads 1 --only nnsight --out benchmarks/results_nnsight.json

# Where the time goes in the cases whose speed-up target is not met (torch profiler; writes benchmarks/profile.json).
bench-profile: setup
	OMP_NUM_THREADS=2 $(PY) benchmarks/where_time_goes.py --threads 2
