SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# One-machine defaults; anything already in the environment (or in .env) wins.
-include .env
export $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' .env 2>/dev/null)
# Dagster insists on an absolute DAGSTER_HOME.
export DAGSTER_HOME := $(abspath $(or $(DAGSTER_HOME),dagster_home))
# Absolute paths, so every process of the stack (and each run worker) finds the same folders
# whatever directory it starts in.
export RAG_DATA_DIR := $(abspath $(or $(RAG_DATA_DIR),data))
export RAG_BACKUP_DIR := $(abspath $(or $(RAG_BACKUP_DIR),backups))

# Test processes for `make test` (pytest-xdist). One by default: two workers on two cores took
# as long (1,595 s against 1,575 s), the suite being bound by processor more than by waiting.
TEST_WORKERS ?= 1

.PHONY: setup run test test-fast lint bench eval docs clean

# OCR needs Debian's Tesseract (scripts/ocr-packages.txt), which pip cannot install: setup says
# what is missing and how to install it; everything else works without it.
setup: $(STAMP)
	@bash scripts/check-ocr.sh || echo "make setup: done, but scans and images need the OCR packages above"

# torch is installed first and pinned, so pip takes the CPU build on local disk and never
# resolves a CUDA build; the project's own pin keeps it there.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The Python client, its own distribution, with both retrievers (tests/clients).
	$(BIN)/python -m pip install --quiet -e 'clients/python[langchain,llama-index]'
	touch $(STAMP)

run: setup
	bash scripts/run-stack.sh

# The complete suite, every tier (what CI runs). The MCP Inspector (a second MCP client, from
# npm) is installed into .venv/inspector first.
test: setup
	bash scripts/install-inspector.sh $(VENV)/inspector
	$(BIN)/python -m pytest $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup) \
		--durations=30 $(PYTEST_ARGS)

# The inner loop: unit tests and the API's tests through TestClient, but not the ones marked
# slow (corpus-wide sweeps, timing bounds, second processes), on two xdist workers: most of
# these tests wait on a server or a bound rather than on the processor (docs/testing.md).
test-fast: setup
	$(BIN)/python -m pytest -n 2 -m "(unit or (api and not e2e)) and not slow" --durations=10 \
		$(PYTEST_ARGS)

# The full reliability suite: every corpus file, 500 uploads from 16 clients, four kinds of
# kill -9, hostile input and schemathesis, with the real model; writes
# bench/results/reliability.json. `make test` runs its short version.
reliability: setup
	RELIABILITY=full $(BIN)/python -m pytest tests/reliability -m reliability \
		--timeout=5400 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff format --check rag_pipeline rag_api clients tests bench
	$(BIN)/ruff check rag_pipeline rag_api clients tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m bench

eval: setup
	$(BIN)/python -m bench eval $(EVAL_ARGS)

# The two generated pages: the settings table (from the Settings class) and the benchmark figures
# (from bench/results/*.json). Tests fail while either is stale.
docs: setup
	$(BIN)/python -m rag_pipeline.settings --update docs/configuration.md
	$(BIN)/python -m bench report

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
