# Two entry points for a fresh machine with Python 3 and make: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9

.PHONY: setup test lint typecheck pytest demo bench reliability lock clean interop interop-install

# Real gateways in front of the emulator (tests/interop), installed at pinned versions into .interop/.
INTEROP        := .interop
PORTKEY_DIR    := $(INTEROP)/portkey
PORTKEY_STAMP  := $(PORTKEY_DIR)/.installed-stamp
LITELLM_VENV   := $(INTEROP)/litellm
LITELLM_STAMP  := $(LITELLM_VENV)/.installed-stamp
LITELLM_VERSION := 1.108.7

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

# node and npm come from Debian's packages when missing; a failed install stops here.
$(PORTKEY_STAMP): tests/interop/portkey/package.json tests/interop/portkey/package-lock.json tests/interop/portkey/loopback.mjs
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "node/npm missing: installing them with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; }
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are required" >&2; exit 1; }
	mkdir -p $(PORTKEY_DIR)
	cp tests/interop/portkey/package.json tests/interop/portkey/package-lock.json tests/interop/portkey/loopback.mjs $(PORTKEY_DIR)/
	cd $(PORTKEY_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $(PORTKEY_STAMP)

$(LITELLM_STAMP): Makefile
	@test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(LITELLM_VENV)/bin/uv pip install -q --python $(LITELLM_VENV)/bin/python "litellm[proxy]==$(LITELLM_VERSION)"
	@touch $(LITELLM_STAMP)

interop-install: $(PORTKEY_STAMP) $(LITELLM_STAMP)

interop: setup interop-install
	$(BIN)/pytest -q -p no:cacheprovider -m interop tests/interop

test: lint typecheck pytest

demo: setup
	$(BIN)/airflow-files demo

bench: setup
	$(BIN)/python -m bench.perf

reliability: setup
	$(BIN)/python -m bench.reliability

# Re-pin the dev environment after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python $(BIN)/python -o requirements-dev.lock

clean:
	rm -rf $(VENV) $(INTEROP) .mypy_cache .pytest_cache .ruff_cache build dist
