"""Fixtures for the upload engine tests: a client on the emulator with fast retries, source files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_files.api import FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle

from .support import client_for, write_random


@pytest.fixture
def client(emulator: EmulatorHandle) -> Iterator[FilesClient]:
    with client_for(emulator) as files_client:
        yield files_client


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """``make_file(size, name=..., seed=...)`` writes pseudo-random bytes and returns the path."""

    def make(size: int, name: str = "requests.jsonl", seed: int = 1) -> Path:
        return write_random(tmp_path / name, size, seed)

    return make
