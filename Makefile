# The two set-up commands of the README: `make demo` and `make test`. Both build .venv from nothing,
# and are quick when it is already up to date (the stamp file tracks pyproject.toml and constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA ?= ../shared/data
export MARSVISION_SHARED_DATA ?= $(abspath $(SHARED_DATA))

.PHONY: install system-deps demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt torch torchvision
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium renders the HTML report in a test. Installed from Debian when we may (root + apt-get);
# otherwise that one test skips with the reason (and fails under CI=true).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian) for the report rendering test"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and cannot be installed here: the report rendering test will skip"; fi; }

demo: $(STAMP)
	$(BIN)/marsvision demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest -q -ra

test: lint typecheck pytest

# Performance figures (benchmarks/README.md): JSON on stdout, benchmarks/results/<machine>.json and .md.
# Options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--size gpu" or BENCH_ARGS="--only membank".
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
