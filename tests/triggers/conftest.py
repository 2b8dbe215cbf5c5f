"""Fixtures of the trigger tests: a connection to a mocked base URL and a fast client retry policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from airflow_provider_files.api import RetryPolicy
from airflow_provider_files.triggers import files as trigger_module
from tests.support import FilesConnection

BASE_URL = "http://127.0.0.1:9/v1"  # never reached: respx answers every request
CONN_ID = "files_unit"


@pytest.fixture
def files_conn(files_connection: FilesConnection, monkeypatch: pytest.MonkeyPatch) -> str:
    files_connection(BASE_URL, conn_id=CONN_ID, password="sk-unit-secret")
    # One quick retry inside the client, so the trigger's own error handling is what is tested.
    monkeypatch.setattr(
        trigger_module, "TRIGGER_RETRY_POLICY", RetryPolicy(max_attempts=2, initial_delay_s=0.01, jitter=0)
    )
    return CONN_ID


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router
