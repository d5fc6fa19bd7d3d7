# The two commands of the README. Each creates .venv if missing and installs what it needs.
# TORCH pins the CPU wheel that lies on this machine's disk; an unpinned torch would pull a
# multi-GB CUDA build. Override on other machines: make test TORCH='torch>=2.4'.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test static lint typecheck unit docs reference smoke clean

# The story needs an empty home: it starts over in .dnnops-demo/ each time.
demo: $(VENV)/.installed
	rm -rf .dnnops-demo
	$(BIN)/dnnops quickstart --home .dnnops-demo

# The static checks (mypy alone takes a minute on one core) run beside the tests, which
# leave a core idle while their servers start and wait; either failing fails the target.
test: $(VENV)/.installed-dev
	$(MAKE) --no-print-directory -j2 static unit

static: $(VENV)/.installed-dev
	$(MAKE) --no-print-directory lint typecheck docs

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The documentation site (docs/, the API reference from docstrings); warnings are errors.
# docs/reference/ is generated from the code (make reference); a stale page fails.
docs: $(VENV)/.installed-dev
	$(BIN)/python -m dnnops.cli.reference --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

reference: $(VENV)/.installed-dev
	$(BIN)/python -m dnnops.cli.reference

# Benchmarks that cannot rot: mypy over them (benchmarks/mypy.ini: every call into dnnops
# checked), then each at tiny sizes (benchmarks/smoke.py). About 10 minutes here, which
# make test cannot spare, so CI runs it after make test (.ci/run).
smoke: $(VENV)/.installed-dev
	$(BIN)/mypy --config-file benchmarks/mypy.ini
	$(BIN)/python benchmarks/smoke.py

# Two workers, a file each at a time (module fixtures stay whole), one compute thread
# each: the suite is half waiting on the servers and subprocesses it starts, and a second
# torch or OpenMP thread per worker only spins against the other. Measured on the 2-core
# machine: 7:46-9:35 with two (five runs), 12:11 in one; three were no faster (8:33,
# 9:15) and pushed a 10 s explanation past its timeout.
unit: $(VENV)/.installed-dev
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/pytest -n 2 --dist loadfile

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: $(VENV)/bin/python
	$(BIN)/pip install --quiet "$(TORCH)"
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .dnnops .mypy_cache .ruff_cache .pytest_cache
