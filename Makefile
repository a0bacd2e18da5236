# The README's commands. Each target sets itself up: it creates .venv and installs
# the package with what that target needs, and is quick when that is already done.
SHELL := /bin/bash
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt
# One stamp per set of extras; it is rebuilt when the dependency files change.
STAMP_DEV := $(VENV)/.stamp-dev
STAMP_LAB := $(VENV)/.stamp-lab
STAMP_APP := $(VENV)/.stamp-app

.PHONY: lab demo test test-shifted bench faults app binder-check lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip

$(STAMP_DEV): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev,lab,app,warehouse,bench]'
	touch $@

# The dev install's extras are a superset of lab's and app's: when its stamp is newer than
# both dependency files (make demo or make test ran since they changed), there is nothing
# to install, so make lab / make app after make demo start at once.
DEV_IS_CURRENT = [ $(STAMP_DEV) -nt pyproject.toml ] && [ $(STAMP_DEV) -nt constraints.txt ]

$(STAMP_LAB): pyproject.toml constraints.txt | $(BIN)/python
	@if $(DEV_IS_CURRENT); then echo "lab: the dev install is current and includes it"; \
	else echo "$(PIP) -e '.[lab]'"; $(PIP) -e '.[lab]'; fi
	touch $@

$(STAMP_APP): pyproject.toml constraints.txt | $(BIN)/python
	@if $(DEV_IS_CURRENT); then echo "app: the dev install is current and includes it"; \
	else echo "$(PIP) -e '.[lab,app]'"; $(PIP) -e '.[lab,app]'; fi
	touch $@

## make lab: JupyterLab on notebooks/, on the sandbox unless you are logged in to Membrane
lab: $(STAMP_LAB)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

## make demo: the same job headless, every curated notebook executed against the sandbox
demo: $(STAMP_DEV)
	MIXMAX_NB_BACKEND=sandbox $(BIN)/python scripts/demo.py --out build

## make test: ruff, mypy (strict on the package), the import layers, pytest (on TEST_WORKERS
## processes), the shifted-clock run, the browser tests
TEST_WORKERS ?= 2
test: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n $(TEST_WORKERS)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "integration and not slow"
	$(MAKE) --no-print-directory test-shifted
	$(BIN)/python -m pytest -m "browser and not slow" tests/browser

## make test-shifted: the fast suite again under another calendar and zone (libfaketime):
## a DST-change day of another year, in a zone with a half-hour offset. Nothing may depend
## on the day, the zone or the machine (tests/conftest.py pins the sandbox's calendar).
SHIFTED_NOW := 2027-03-14 05:30:00
SHIFTED_TZ := America/St_Johns
test-shifted: $(STAMP_DEV)
	@if command -v faketime >/dev/null 2>&1; then \
	  echo "== fast suite at $(SHIFTED_NOW) $(SHIFTED_TZ) (faketime)"; \
	  TZ=$(SHIFTED_TZ) faketime '$(SHIFTED_NOW)' $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m "not slow and not browser"; \
	elif [ -n "$${CI:-}" ]; then \
	  echo "test-shifted: faketime is missing on CI (apt-get install faketime)"; exit 1; \
	else \
	  echo "test-shifted: SKIPPED, faketime is not installed (apt-get install faketime)"; \
	fi

## make bench: every benchmark under benchmarks/, each printing its figures and PASS/FAIL;
## all run, then it exits non-zero if any failed. The output is kept in build/bench.log:
## `python benchmarks/readme_table.py build/bench.log` writes the README's table from it
bench: $(STAMP_DEV)
	@mkdir -p build; : > build/bench.log; rm -f build/bench.failed; \
	for b in benchmarks/bench_*.py; do echo "== $$b" | tee -a build/bench.log; \
	  { TQDM_DISABLE=1 PYTHONUNBUFFERED=1 $(BIN)/python $$b 2>&1 || echo " $$b" >> build/bench.failed; } \
	    | tee -a build/bench.log; done; \
	if [ -s build/bench.failed ]; then echo "make bench: FAIL in$$(tr -d '\n' < build/bench.failed)" | tee -a build/bench.log; exit 1; fi; \
	echo "make bench: all PASS" | tee -a build/bench.log

## make app: the Voila apps under apps/ (dashboard, enrollment, connect) on the sandbox
## (with the apps' template, apps/.jupyter/voila/templates/mixmax: Voila's "lab" without
## its Font Awesome CDN links, so the apps load nothing from the network)
app: $(STAMP_APP)
	MIXMAX_NB_BACKEND=sandbox JUPYTER_PATH=$(CURDIR)/apps/.jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH} \
	  $(BIN)/voila apps/ --template=mixmax --no-browser --port=$${APP_PORT:-8866}

## make binder-check: a fresh venv from binder/ only executes every notebook (slow)
binder-check: $(STAMP_DEV)
	$(BIN)/python -m pytest -m slow -p no:cacheprovider tests/test_binder.py

## make faults: the fault matrix (printed: fault x workflow -> outcome), then the slow tests
faults: $(STAMP_DEV)
	$(BIN)/python benchmarks/fault_matrix.py
	$(BIN)/python -m pytest -m slow -p no:cacheprovider --ignore=tests/faults

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
