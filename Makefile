# `make bench` runs the suite, writes a result file and renders reports/index.html; `make test` runs opbench's own
# tests and a smoke run of every case. Both create .venv on first use, with the versions pinned in constraints.txt.
# `make test` also installs Debian's chromium and chromium-driver when missing (the report's browser test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest options for the suite, e.g. make bench ARGS="--opbench-grid full --opbench-threads 2"
ARGS ?=
# Options for `opbench report`, e.g. make bench REPORT_ARGS="--backend ort-cpu"
REPORT_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# glibc's malloc raises its mmap and trim thresholds to the largest block a process has freed, so without a fixed
# setting a case's latency depends on what ran before it in the process (opbench/measure/allocator.py says why these values).
# Fixed for every target here; opbench records them in the result file and warns when a timed run lacks them.
# Change them on the command line: make bench MALLOC_MMAP_THRESHOLD_=33554432
export MALLOC_MMAP_THRESHOLD_ ?= 67108864
export MALLOC_TRIM_THRESHOLD_ ?= 134217728

.PHONY: bench report screenshot test browser fidelity allocator-check drift-check lint clean

# Optional backends' extras install one by one: an extra that does not install on this machine leaves its
# backend unavailable (with its reason in the run's result file) and the rest working.
EXTRAS ?= openvino executorch litert mnn ncnn
# LiteRT's converter, without its declared dependencies (the [litert] extra installs the ones it uses; it also declares
# xdsl, which conflicts with the pinned typing_extensions and is never imported by the conversion)
LITERT_CONVERTER := litert-torch litert-converter ai-edge-quantizer

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,coreml]"
	for extra in $(EXTRAS); do \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$$extra]" \
	    || echo "opbench: extra [$$extra] does not install here; its backends will be unavailable"; \
	done
	case " $(EXTRAS) " in *" litert "*) $(BIN)/python -m pip install --quiet -c constraints.txt --no-deps \
	  $(LITERT_CONVERTER) || echo "opbench: LiteRT's converter does not install here; litert backends unavailable";; esac
	touch $@

# the report is rendered even when a case failed; the benchmarks' exit status is kept
bench: $(STAMP)
	$(BIN)/python -m pytest --benchmark-only cases/ $(ARGS); status=$$?; \
	$(BIN)/opbench report $(REPORT_ARGS) && exit $$status

report: $(STAMP)
	$(BIN)/opbench report $(REPORT_ARGS)

# the top of reports/index.html (the summary matrix) as reports/summary.png, in headless Chromium
screenshot: browser
	profile=$$(mktemp -d) && chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-sync \
	  --disable-background-networking --disable-component-update --user-data-dir=$$profile \
	  --window-size=1400,1000 --screenshot=$(CURDIR)/reports/summary.png file://$(CURDIR)/reports/index.html; \
	  status=$$?; rm -rf $$profile; exit $$status

# headless Chromium for tests/test_report_browser.py; without it (no root, no sudo) that test is skipped, and fails in CI
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; } || \
	echo "warning: could not install chromium and chromium-driver; the browser test will be skipped"

# The smoke run checks every case on the backends that come with opbench itself; compiling every case on the
# optional compilers too would take longer than CI allows on 2 cores (tests/ checks each of them on a few cases,
# `make bench` on all). Widen it with make test SMOKE_BACKENDS=all.
SMOKE_BACKENDS ?= torch-eager,ort-cpu,ort-cpu-noopt
# Both halves run on every core (pytest-xdist; at most 4 workers, each imports torch): nothing is timed in either.
# One process: make test WORKERS=0
WORKERS ?= auto --maxprocesses=4

test: $(STAMP) browser
	$(BIN)/python -m pytest tests/ -n $(WORKERS)
	$(BIN)/python -m pytest cases/ --benchmark-disable -q -n $(WORKERS) --opbench-backends $(SMOKE_BACKENDS) $(ARGS)

fidelity: $(STAMP)
	$(BIN)/python scripts/fidelity.py

# six cases alone in a fresh process, inside a larger selection, and under blocked_autorange (opbench/measure/allocator.py)
allocator-check: $(STAMP)
	$(BIN)/python scripts/allocator_check.py

# how much this machine's speed wanders between tenths of a second, and what that does to a comparison's ratio
drift-check: $(STAMP)
	$(BIN)/python scripts/drift_check.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .opbench_cache .benchmarks
