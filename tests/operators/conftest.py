"""Fixtures of the operator tests: a connection to the emulator, sample files, memory:// storage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.support import FilesConnection


@pytest.fixture
def files_conn(emulator: EmulatorHandle, files_connection: FilesConnection) -> EmulatorHandle:
    """The default connection points at the (reset) emulator; returns the emulator handle."""
    files_connection(emulator)
    return emulator


@pytest.fixture
def batch_file(tmp_path: Path) -> Callable[..., Path]:
    def make(count: int = 200, name: str = "requests.jsonl") -> Path:
        return write_sample_requests(tmp_path / "src" / name, count)

    return make


@pytest.fixture
def memory_storage() -> Iterator[MemoryFileSystem]:
    """Registers the ``memory://`` scheme with Airflow's ObjectStoragePath (it is not built in),
    so the object-storage code paths (streamed reads, non-local checkpoints) run without a cloud."""
    from airflow.sdk.io import fs as airflow_fs

    schemes = airflow_fs._register_filesystems()
    memory = MemoryFileSystem()
    memory.store.clear()
    memory.pseudo_dirs.clear()
    memory.pseudo_dirs.append("")
    added = "memory" not in schemes
    schemes["memory"] = lambda conn_id, options=None: memory  # type: ignore[index]
    yield memory
    memory.store.clear()
    if added:
        schemes.pop("memory", None)  # type: ignore[attr-defined]
