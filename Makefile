PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint format stack-up stack-down bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## dev: start the local stack, seed the demo world, run the Dagster UI on :3000 (Ctrl-C stops all)
dev: $(STAMP)
	$(BIN)/etl-platform dev

## test: lint, format check and the whole test suite against the embedded stack
## (two pytest workers, a test file per worker at a time: each worker starts its own stack)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2 --dist loadfile

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stack-up: $(STAMP)
	$(BIN)/etl-platform stack up

stack-down: $(STAMP)
	$(BIN)/etl-platform stack down

# The peer dlt lives in a venv of its own (pyproject's `bench` extra): only its benchmark uses it.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet "dlt[postgres]>=1.31"
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m benchmarks.dynamo_transform
	$(BIN)/python -m benchmarks.warehouse_load
	$(BIN)/python -m benchmarks.lake_export
	$(BIN)/python -m benchmarks.dump_scrub --mb 1100 --rounds 3
	$(BIN)/python -m benchmarks.microbatch_merge --rounds 3 --dlt-python $(BENCH_VENV)/bin/python
	$(BIN)/python -m benchmarks.microbatch_e2e
	$(BIN)/python -m benchmarks.run_overhead

clean:
	-$(BIN)/etl-platform stack down
	rm -rf .local
