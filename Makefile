# The two set-up commands of the README. Both create .venv when missing and install the
# project into it (re-installing only when pyproject.toml changes); `make test` first installs
# the Debian packages its tests use when they are missing (.ci/system-deps.sh: chromium,
# dataset-fashion-mnist), or stops with one line naming the command to run.
# Every path is the Makefile's own folder's, so a fresh clone uses its own .venv and scripts
# wherever make is started from (tests/test_fresh_clone.py checks this).
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
VENV ?= $(ROOT).venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: sweep test system-deps lint bench bench-record bench-record-2 bench-strategies bench-validate clean

sweep: $(STAMP)  ## the main job: a Ray Tune sweep on the embedded default (quick space, digits)
	cd $(ROOT) && $(VENV)/bin/resnetx sweep

test: system-deps $(STAMP)  ## the whole test suite (unit, integration with real Ray/MLflow/Chromium, end-to-end CLI)
	cd $(ROOT) && $(PY) -m pytest $(PYTEST_ARGS)

system-deps:  ## Debian packages the tests use (chromium, dataset-fashion-mnist): installed when missing
	@sh $(ROOT).ci/system-deps.sh

lint: $(STAMP)  ## ruff, the import contracts (import-linter) and mypy on resnetx/ and sweep/training/
	cd $(ROOT) && $(VENV)/bin/ruff check .
	cd $(ROOT) && $(VENV)/bin/lint-imports
	cd $(ROOT) && $(VENV)/bin/mypy

RECORD_RUNS ?= $(ROOT)runs/bench-record
RECORD_OBJECTIVES := val_acc:max,params:min,latency_ms:min
bench-record: system-deps $(STAMP)  ## train all 224 networks of fmnist-bench (+32 at a second seed; ~1 h on 2 cores), write the record
	cd $(ROOT) && $(VENV)/bin/resnetx sweep --space fmnist-bench --search grid --num-samples 224 \
	    --objectives $(RECORD_OBJECTIVES) --runs-dir $(RECORD_RUNS) --experiment fmnist-bench --no-report
	cd $(ROOT) && $(VENV)/bin/resnetx sweep --space fmnist-bench --search random --seed 1 --num-samples 32 \
	    --objectives $(RECORD_OBJECTIVES) --runs-dir $(RECORD_RUNS) --experiment fmnist-bench --no-report
	cd $(ROOT) && $(VENV)/bin/resnetx record --space fmnist-bench --runs-dir $(RECORD_RUNS) --experiment fmnist-bench \
	    --out bench/records/fmnist-bench.csv

RECORD2_RUNS ?= $(ROOT)runs/bench-record-2
bench-record-2: system-deps $(STAMP)  ## fmnist-bench-2: all 352 networks, 48 of them at 2 more seeds (hours on 2 cores; resumable: run it again), then the record
	cd $(ROOT) && RESNETX=$(VENV)/bin/resnetx RUNS=$(RECORD2_RUNS) sh bench/record2.sh

bench-strategies: $(STAMP)  ## the search strategies x 30 seeds replayed on the committed record (docs/benchmarks.md)
	cd $(ROOT) && $(PY) bench/search_strategies.py

bench-validate: system-deps $(STAMP)  ## the record against reality: 3 of its networks retrained (minutes), and the replay's speed-up
	cd $(ROOT) && $(PY) bench/validate_record.py
	cd $(ROOT) && $(PY) bench/replay_speed.py

$(STAMP): $(ROOT)pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '$(ROOT).[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(ROOT)resnetx-runs $(ROOT).pytest_cache
