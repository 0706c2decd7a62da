# Two entry points (see README): `make quickstart` runs the main job, `make test` runs the tests.
# Both create .venv and install the package with its pinned dependencies on first use.
PYTHON ?= python3
VENV   ?= .venv
DATA   ?= data/synth
BIN     = $(VENV)/bin

.PHONY: quickstart test test-fast lint bench bench-gpu clean browser

# uv resolves, downloads and installs in parallel, much faster than pip on a fresh machine. It must compile
# bytecode itself (pip does by default, uv not; with PYTHONDONTWRITEBYTECODE set, as here, nothing would,
# and every Ray worker process would compile torch and ray from source: imports 2.2x slower, the quickstart
# 1.6x slower). pip stays the fallback (same pins) wherever uv cannot reach an index.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[test]" || \
	  $(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

STUDY  ?= studies-runs/quickstart

quickstart: $(BIN)/.installed
	@# (re)generate when missing or written by an older schema (version 2: ROI semantics per domain)
	@grep -qs '"schema_version": 2' $(DATA)/manifest.json || $(BIN)/pixelcam data synth --out $(DATA) --overwrite
	$(BIN)/pixelcam data preview $(DATA) --out data/preview.png
	@if [ -f $(STUDY)/state.json ]; then $(BIN)/pixelcam study resume $(STUDY); \
	else $(BIN)/pixelcam study run studies/quickstart.yaml; fi

# The dashboard test renders in headless Chromium: Debian's chromium + chromium-driver (root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver >/dev/null; }

test: $(BIN)/.installed browser
	$(BIN)/ruff check pixelcam tests benchmarks cluster
	$(BIN)/python -m pytest

# Quick loop: everything but the end-to-end tests on real Ray/MLflow (those run in `make test` and CI).
test-fast: $(BIN)/.installed
	$(BIN)/ruff check pixelcam tests benchmarks cluster
	$(BIN)/python -m pytest -m "not e2e"

bench: $(BIN)/.installed
	@for b in benchmarks/*.py; do [ $$b = benchmarks/gpu_check.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The prepared GPU check (refuses without a GPU; `--smoke` runs its paths on the CPU).
bench-gpu: $(BIN)/.installed
	$(BIN)/python benchmarks/gpu_check.py --out gpu_check.json

clean:
	rm -rf $(VENV) data .pytest_cache studies-runs runs mlflow.db mlartifacts
