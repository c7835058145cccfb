# Two commands for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment .venv and install bayesmeta into it first.
# `make demo` fits the school model by REML and by NUTS and prints both, side by side.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/school.py

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_reml.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
