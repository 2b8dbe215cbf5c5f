# Two entry points for a fresh machine with Python 3 and make: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9

.PHONY: setup test lint typecheck pytest demo docs bench reliability lock clean

$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

test: lint typecheck pytest

demo: setup
	$(BIN)/airflow-files demo

# Regenerate docs/reference.md (the operators' and sensors' parameters) from the code.
docs: setup
	$(BIN)/python -m airflow_provider_files._docs

bench: setup
	$(BIN)/python -m bench.perf

reliability: setup
	$(BIN)/python -m bench.reliability

# Re-pin the dev environment after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python $(BIN)/python -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
