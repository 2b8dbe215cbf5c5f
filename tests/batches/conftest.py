"""Fixtures of the batch tests: a client on the (reset) emulator, quick batches by default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_files.api import FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle

from .support import client_for


@pytest.fixture
def client(emulator: EmulatorHandle) -> Iterator[FilesClient]:
    emulator.configure(batch_duration_s=0.2)
    with client_for(emulator) as files_client:
        yield files_client
