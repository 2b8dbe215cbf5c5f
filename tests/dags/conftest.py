"""Fixtures of the DAG-level tests: a migrated SQLite metadata DB, the example DAGs, the emulator
as the ``openai_files_default`` connection.

The root conftest points AIRFLOW_HOME at a temporary folder and the dags folder at
``example_dags/``; ``dag.test()`` runs a DAG file only from the configured dags folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.support import FilesConnection

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
CONN_ID = "openai_files_default"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs whole Airflow processes (tens of seconds)")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB (SQLite in the session's AIRFLOW_HOME), created once per session."""
    from airflow.utils.db import resetdb

    resetdb()


@pytest.fixture
def load_example_dag(airflow_db: None) -> Callable[[str], ModuleType]:
    """Import ``example_dags/<name>.py`` afresh and return the module (its DAG is ``.dag``)."""

    def load(name: str) -> ModuleType:
        path = EXAMPLE_DAGS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"example_dags_under_test.{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def use_emulator(
    files_connection: FilesConnection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., None]:
    """``use_emulator(emulator, **extra)``: the connection points at ``emulator``; upload
    checkpoints go to the test's tmp_path so runs do not see each other's."""

    def use(emulator: EmulatorHandle, conn_id: str = CONN_ID, **extra: Any) -> None:
        files_connection(emulator, conn_id=conn_id, **extra)
        monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER", str(tmp_path / "checkpoints"))

    return use


@pytest.fixture
def dag_conn(emulator: EmulatorHandle, use_emulator: Callable[..., None]) -> EmulatorHandle:
    """The (reset) emulator, already set as ``openai_files_default``."""
    use_emulator(emulator)
    return emulator
