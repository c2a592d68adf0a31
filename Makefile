# `make bench` runs the suite and writes a result file; `make test` runs opbench's own tests and a smoke
# run of every case. Both create .venv on first use, with the versions pinned in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest options for the suite, e.g. make bench ARGS="--opbench-grid full --opbench-threads 2"
ARGS ?=

.PHONY: bench test fidelity lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,coreml]"
	touch $@

bench: $(STAMP)
	$(BIN)/python -m pytest --benchmark-only cases/ $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest tests/
	$(BIN)/python -m pytest cases/ --benchmark-disable -q $(ARGS)

fidelity: $(STAMP)
	$(BIN)/python scripts/fidelity.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .opbench_cache .benchmarks
