"""Fixtures of the sensor tests: a connection to a mocked base URL, without client retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from tests.support import FilesConnection

BASE_URL = "http://127.0.0.1:9/v1"  # never reached: respx answers every request
CONN_ID = "files_sensor_unit"


@pytest.fixture
def files_conn(files_connection: FilesConnection) -> str:
    return files_connection(BASE_URL, conn_id=CONN_ID, password="sk-unit-secret", max_retries=0)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router
