# The two set-up commands of the README: `make demo` and `make test`. Both build .venv from nothing,
# and are quick when it is already up to date (the stamp file tracks pyproject.toml and constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA ?= ../shared/data
export MARSVISION_SHARED_DATA ?= $(abspath $(SHARED_DATA))

.PHONY: install system-deps demo test lint typecheck pytest bench bench-accuracy clean

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

# Accuracy against peer pipelines on the real data in ../shared/data (hours on 2 cores; resumes where it stopped):
# benchmarks/results/accuracy.{json,md}. ACCURACY_ARGS="--quick" is a minutes-long smoke run into a temp folder.
ACCURACY_ARGS ?=
bench-accuracy: $(STAMP)
	$(BIN)/python -m benchmarks.accuracy.run $(ACCURACY_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# The GPU check (benchmarks/README.md, "The GPU check"). gpu-check-prepare runs here, on a machine that reaches PyPI
# and ../shared: the wheels the GPU machine lacks (the versions installed in .venv) into .whl/, the real 256-px
# AI4Mars folder into .gpu-data/ (both git-ignored; name both in the device call's carry). gpu-check runs ON the
# GPU machine with its own python3 (no .venv, no registry there): installs the wheels, then runs the check.
GPU_WHEELS := segmentation-models-pytorch lightly
GPU_PYTHON ?= python3
GPU_CHECK_ARGS ?=
GPU_DATA_SOURCE := $(MARSVISION_SHARED_DATA)/ai4mars-msl-256-train
.PHONY: gpu-check-prepare gpu-check

gpu-check-prepare: $(STAMP)
	rm -rf .whl .gpu-data && mkdir -p .whl .gpu-data/ai4mars-msl-256-train
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
	  --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl $$($(BIN)/python -c 'import sys, importlib.metadata as m; \
	  print(" ".join(f"{p}=={m.version(p)}" for p in sys.argv[1:]))' $(GPU_WHEELS))
	cp -r "$(GPU_DATA_SOURCE)/images" "$(GPU_DATA_SOURCE)/labels" .gpu-data/ai4mars-msl-256-train/
	@git check-ignore -q .whl && git check-ignore -q .gpu-data || { echo ".whl/.gpu-data not git-ignored" >&2; exit 1; }
	@ls .whl && du -sh .whl .gpu-data

gpu-check:
	$(GPU_PYTHON) benchmarks/gpu_check.py --wheels .whl $(if $(OUT),--copy-to "$(OUT)") $(GPU_CHECK_ARGS)
