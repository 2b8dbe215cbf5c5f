"""pytest fixtures that run the Files/Uploads API emulator.

Enable it in a ``conftest.py``::

    pytest_plugins = ["airflow_provider_files.emulator.pytest_plugin"]

Fixtures:

``emulator_session``
    one emulator process for the whole session (any non-empty key accepted).
``emulator``
    the session's process, with its state reset and faults cleared before the test, and its
    runtime settings (latency, processing delay, ...) restored afterwards. Point a client at
    ``emulator.base_url`` with ``emulator.api_key``.
``emulator_factory``
    ``emulator_factory(**options)`` starts a dedicated process with options such as
    ``max_part_bytes=1024``, ``latency_ms=20``, ``validate_batch=True``, ``api_key="sk-x"``
    (see :func:`~airflow_provider_files.emulator.testing.run_emulator`); stopped after the test.

Example, in a DAG test::

    def test_upload_dag(emulator, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_OPENAI_FILES", f"openai-files://:{emulator.api_key}@?base_url={emulator.base_url}")
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle, run_emulator


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[EmulatorHandle]:
    with run_emulator() as handle:
        yield handle


@pytest.fixture
def emulator(emulator_session: EmulatorHandle) -> Iterator[EmulatorHandle]:
    emulator_session.clear_faults()
    emulator_session.restore_settings()
    emulator_session.reset()
    yield emulator_session
    emulator_session.clear_faults()
    emulator_session.restore_settings()


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorHandle]]:
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> EmulatorHandle:
            return stack.enter_context(run_emulator(**options))

        yield start
