# Two entry points for a fresh machine with Python 3 and make: `make demo` and `make test`.
PYTHON ?= python3
# Another interpreter gets its own virtualenv:
#   make test PYTHON=/root/.pyenv/versions/3.10.13/bin/python VENV=.venv-3.10
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   ?= requirements-dev.lock
UV_VERSION := 0.13.9

.PHONY: setup test lint typecheck pytest demo bench reliability lock clean

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r $(LOCK)
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

bench: setup
	$(BIN)/python -m bench.perf

reliability: setup
	$(BIN)/python -m bench.reliability

# Re-pin the dev environment after changing dependencies in pyproject.toml.
# One universal lock (environment markers) that resolves on every Python the package claims, 3.10 up.
lock: setup
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --universal --python-version 3.10 \
		-o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist
