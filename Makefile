# The two set-up commands: `make demo` (install + a real training run) and `make test` (install + the suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU build that installs from local disk; never let pip resolve a CUDA build.
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test install install-dev lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .

install-dev: $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

demo: install
	$(BIN)/trainwell train examples/breast_cancer_lightgbm.yaml

test: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -n 2 -q

lint: install-dev
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) runs .pytest_cache
