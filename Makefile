# `make reproduce` and `make test` set everything up themselves: they create .venv with the
# Python 3.11+ on PATH (override with `make PYTHON=python3.12 ...`) and install the package into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test test-slow reproduce reproduce-quick siglip-studies bench clean venv

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

reproduce: $(STAMP)
	$(BIN)/python -m experiments run report --out results

reproduce-quick: $(STAMP)
	$(BIN)/python -m experiments run report --out results --quick

# The SigLIP paper's own studies at lab scale (about 90 min on 2 cores, measured; siglit alone 85 min): results/SIGLIP_STUDIES.md.
siglip-studies: $(STAMP)
	$(BIN)/python -m experiments run studies --out results

# Plant one bug at a time in the core and run the tests that should see it (tens of minutes; not in `make test`).
.PHONY: mutation
mutation: $(STAMP)
	$(BIN)/python -m experiments.mutation

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
