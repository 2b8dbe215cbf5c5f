"""Root test configuration.

Airflow reads its configuration when first imported, so the environment for the
whole session (a private AIRFLOW_HOME with a SQLite metadata DB, the example DAGs
folder, no example DAGs of Airflow's own) is set here, before any test module
imports Airflow.

Under pytest-xdist (``make test`` runs ``-n 3``) each worker is its own process, so each gets
its own AIRFLOW_HOME and SQLite DB (``dag.test()`` runs see only their worker's), and its own
emulator on a free port. Time limits
(pytest-timeout's) are stretched by the machine's load (``tests.support.load_factor``): they
stop hangs, they do not measure speed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support import FilesConnection

REPO_ROOT = Path(__file__).resolve().parent.parent

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-files-tests-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "example_dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"

pytest_plugins = ["airflow_provider_files.emulator.pytest_plugin"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test's time limit grows with the machine's load."""
    from .support import load_factor

    factor = load_factor()
    default_timeout_s = float(config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        timeout_s = float(marker.args[0]) if marker is not None and marker.args else default_timeout_s
        if timeout_s > 0 and factor > 1:
            item.add_marker(pytest.mark.timeout(timeout_s * factor), append=False)


@pytest.fixture
def files_connection(monkeypatch: pytest.MonkeyPatch) -> FilesConnection:
    """``files_connection(host_or_emulator, conn_id=..., password=..., **extra) -> conn_id``: an
    ``openai_files`` connection for this test, through its ``AIRFLOW_CONN_*`` variable."""
    from .support import FilesConnection  # imported here: Airflow's environment is set above first

    return FilesConnection(monkeypatch)
