"""Fixtures of the sensor tests: a connection to a mocked base URL, without client retries."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import respx

BASE_URL = "http://127.0.0.1:9/v1"  # never reached: respx answers every request
CONN_ID = "files_sensor_unit"


@pytest.fixture
def files_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    connection = {
        "conn_type": "openai_files",
        "host": BASE_URL,
        "password": "sk-unit-secret",
        "extra": {"max_retries": 0},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    return CONN_ID


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router
