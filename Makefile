# The two set-up commands of the README. Both create .venv when missing and install the
# project into it (re-installing only when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: sweep test lint bench clean

sweep: $(STAMP)  ## the main job: a Ray Tune sweep on the embedded default (quick space, digits)
	$(VENV)/bin/resnetx sweep

test: $(STAMP)  ## the whole test suite (unit, integration with real Ray/MLflow, end-to-end CLI)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff, the import contracts (import-linter) and mypy on resnetx/ and sweep/training/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) resnetx-runs .pytest_cache
