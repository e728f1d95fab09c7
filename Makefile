# The two commands: `make demo` runs the main job on a small real default,
# `make test` runs the test suite.  Both create .venv and install pinned deps first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev

.PHONY: demo test test-slow lint bench venv clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/pain-jax demo --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check pain_jax tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --nbmake tests notebooks

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

lint: $(STAMP)
	$(BIN)/ruff check pain_jax tests benchmarks
	$(BIN)/ruff format --check pain_jax tests benchmarks

bench: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) runs
