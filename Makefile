# Two entry points for a fresh machine with Python 3 and make: `make demo` and `make test`.
PYTHON ?= python3
# Another interpreter gets its own virtualenv:
#   make test PYTHON=/root/.pyenv/versions/3.10.13/bin/python VENV=.venv-3.10
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   ?= requirements-dev.lock
UV_VERSION := 0.13.9

.PHONY: setup test lint typecheck pytest demo docs bench reliability lock clean interop interop-install
.PHONY: browser browser-install
.PHONY: test-py pytest-subset test-airflow-floor lock-airflow-floor

# Real gateways in front of the emulator (tests/interop), installed at pinned versions into .interop/.
INTEROP        := .interop
PORTKEY_DIR    := $(INTEROP)/portkey
PORTKEY_STAMP  := $(PORTKEY_DIR)/.installed-stamp
LITELLM_VENV   := $(INTEROP)/litellm
LITELLM_STAMP  := $(LITELLM_VENV)/.installed-stamp
LITELLM_VERSION := 1.108.7

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
	$(BIN)/pytest -q -n 3

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

# Airflow's UI in headless Chromium (tests/browser): Debian's chromium and chromedriver, and the
# pinned selenium of tests/browser/requirements.txt in .browser/site (not in the dev lock).
BROWSER       := .browser
BROWSER_STAMP := $(BROWSER)/.installed-stamp

$(BROWSER_STAMP): tests/browser/requirements.txt $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "chromium/chromedriver missing: installing them with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { echo "chromium and chromedriver are required" >&2; exit 1; }
	rm -rf $(BROWSER)/site
	$(BIN)/uv pip install -q --python $(BIN)/python --target $(BROWSER)/site --no-deps -r tests/browser/requirements.txt
	@touch $(BROWSER_STAMP)

browser-install: $(BROWSER_STAMP)

browser: setup browser-install
	chromedriver --version
	PYTHONPATH=$(BROWSER)/site $(BIN)/pytest -q -p no:cacheprovider -m browser tests/browser

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

# The lowest and the highest Python the package claims, each in its own virtualenv (.venv-3.10, ...):
#   make test-py PY=3.10
# The interpreter is pyenv's newest $(PY).x, else python$(PY) on the PATH. It runs every test except
# the slow ones (SLOW_TESTS: reliability, benchmark drivers, the 1 GiB upload), DAG-level tests included,
# after mypy checks the code against that Python's standard library.
PYENV_ROOT ?= $(HOME)/.pyenv
PY_PYTHON = $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/$(PY).*/bin/python))),python$(PY))
SLOW_TESTS := --ignore=tests/reliability --ignore=tests/bench --ignore=tests/emulator/test_emulator_large.py

test-py:
	@test -n "$(PY)" || { echo "usage: make test-py PY=3.10" >&2; exit 2; }
	$(MAKE) pytest-subset PYTHON=$(PY_PYTHON) VENV=.venv-$(PY)

pytest-subset: setup
	$(BIN)/python --version
	$(BIN)/mypy --python-version "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
	$(BIN)/pytest -q -n 3 -p no:cacheprovider $(SLOW_TESTS)

# The lowest Airflow the package claims (requirements-airflow-floor.in) in its own virtualenv:
# the DAG-level tests, plus the provider registration and the connection settings. Left out
# (FLOOR_SKIP): the tests that assert a sensor polled more than once or deferred, which fail there only
# because Airflow 3.1's dag.test() takes 10-20 s to start each task, so the emulator has finished
# processing before the first poke (the runs themselves succeed), and the test of
# ProvidersManager.iter_connection_type_hook_ui_metadata, an API Airflow 3.1 does not have.
FLOOR_VENV := .venv-airflow-floor
FLOOR_TESTS := tests/dags tests/test_provider_info.py tests/hooks/test_connection_settings.py
FLOOR_SKIP := test_upload_jsonl_dag_uploads_waits_and_hands_off or test_sensor_waits_until_the_batch_completes \
	or test_deferrable_sensor_waits_until_processed or test_deferrable_sensor_fails_on_error_file \
	or test_providers_manager_exposes_hook_and_form

test-airflow-floor:
	$(MAKE) setup VENV=$(FLOOR_VENV) LOCK=requirements-airflow-floor.lock
	$(FLOOR_VENV)/bin/python -c "import airflow; print('Airflow', airflow.__version__)"
	$(FLOOR_VENV)/bin/pytest -q -p no:cacheprovider $(FLOOR_TESTS) -k "not ($(FLOOR_SKIP))"

lock-airflow-floor: setup
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --override requirements-airflow-floor.in \
		--universal --python-version 3.10 -o requirements-airflow-floor.lock

# Re-pin the dev environment after changing dependencies in pyproject.toml.
# One universal lock (environment markers) that resolves on every Python the package claims, 3.10 up.
lock: setup
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --universal --python-version 3.10 \
		-o requirements-dev.lock

clean:
	rm -rf $(VENV) .venv-3.* $(FLOOR_VENV) $(INTEROP) $(BROWSER) .mypy_cache .pytest_cache .ruff_cache build dist
