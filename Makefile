# `make bench` runs the suite and writes a result file; `make test` runs opbench's own tests and a smoke
# run of every case. Both create .venv on first use, with the versions pinned in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest options for the suite, e.g. make bench ARGS="--opbench-grid full --opbench-threads 2"
ARGS ?=

.PHONY: bench test fidelity lint clean

# Optional backends' extras install one by one: an extra that does not install on this machine leaves its
# backend unavailable (with its reason in the run's result file) and the rest working.
EXTRAS ?= openvino executorch

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,coreml]"
	for extra in $(EXTRAS); do \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$$extra]" \
	    || echo "opbench: extra [$$extra] does not install here; its backends will be unavailable"; \
	done
	touch $@

bench: $(STAMP)
	$(BIN)/python -m pytest --benchmark-only cases/ $(ARGS)

# The smoke run checks every case on the backends that come with opbench itself; compiling every case on the
# optional compilers too would take longer than CI allows on 2 cores (tests/ checks each of them on a few cases,
# `make bench` on all). Widen it with make test SMOKE_BACKENDS=all.
SMOKE_BACKENDS ?= torch-eager,ort-cpu,ort-cpu-noopt

test: $(STAMP)
	$(BIN)/python -m pytest tests/
	$(BIN)/python -m pytest cases/ --benchmark-disable -q --opbench-backends $(SMOKE_BACKENDS) $(ARGS)

fidelity: $(STAMP)
	$(BIN)/python scripts/fidelity.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .opbench_cache .benchmarks
