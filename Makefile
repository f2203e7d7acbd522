# robohost: two commands set everything up on a fresh machine.
#   make demo   - create .venv, install robohost, paper-trade the example robot offline
#   make test   - create .venv, install everything (system packages too, as root), run every check and test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
DEMO_HOME ?= demo-home

.PHONY: demo test lint check bench bench-live clean system-packages

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

demo: $(STAMP)
	rm -rf $(DEMO_HOME)
	$(VENV)/bin/robohost init $(DEMO_HOME) --example sma-cross
	$(VENV)/bin/robohost --home $(DEMO_HOME) run --speed max
	$(VENV)/bin/robohost --home $(DEMO_HOME) status
	$(VENV)/bin/robohost --home $(DEMO_HOME) report pnl

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

system-packages:
	tools/install-system-packages

test: $(DEVSTAMP) system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(DEVSTAMP)
	$(PY) bench/replay_throughput.py

bench-live: $(DEVSTAMP)
	$(PY) bench/live_latency.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .ruff_cache .mypy_cache
