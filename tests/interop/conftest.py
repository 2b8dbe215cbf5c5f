"""Fixtures of the interop tests: one emulator upstream, the Portkey gateway and the LiteLLM proxy
in front of it (started once per session, stopped by PID), and the operation x gateway table,
written to ``.interop/results.md`` and printed at the end."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle, run_emulator

from .support import INTEROP_DIR, UPSTREAM_KEY, GatewayProcess, InteropTable, run_litellm, run_portkey

_TABLE = InteropTable()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/interop/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.interop)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TABLE.rows:
        return
    text = _TABLE.markdown()
    INTEROP_DIR.mkdir(exist_ok=True)
    (INTEROP_DIR / "results.md").write_text(text)
    terminalreporter.write_sep("-", "operation x gateway (written to .interop/results.md)")
    terminalreporter.write(text)


@pytest.fixture(scope="session")
def interop_table() -> InteropTable:
    return _TABLE


@pytest.fixture(scope="session")
def interop_run_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="airflow-files-interop-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def upstream_session() -> Iterator[EmulatorHandle]:
    """The emulator both gateways forward to; it accepts only UPSTREAM_KEY."""
    with run_emulator(api_key=UPSTREAM_KEY) as handle:
        yield handle


@pytest.fixture
def upstream(upstream_session: EmulatorHandle) -> EmulatorHandle:
    upstream_session.clear_faults()
    upstream_session.reset()
    return upstream_session


@pytest.fixture(scope="session")
def portkey(interop_run_dir: Path) -> Iterator[GatewayProcess]:
    with run_portkey(interop_run_dir) as handle:
        yield handle


@pytest.fixture(scope="session")
def litellm(interop_run_dir: Path, upstream_session: EmulatorHandle) -> Iterator[GatewayProcess]:
    with run_litellm(interop_run_dir, upstream_session.base_url) as handle:
        yield handle


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """400 sample batch requests, ``requests.jsonl``."""
    return write_sample_requests(tmp_path / "requests.jsonl", 400)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB (SQLite in the session's AIRFLOW_HOME) for ``dag.test()``."""
    from airflow.utils.db import resetdb

    resetdb()
