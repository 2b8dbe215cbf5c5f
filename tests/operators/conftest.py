"""Fixtures of the operator tests: a connection to the emulator, sample files, memory:// and s3://
storage (a local S3 server)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from bench.perf.object_storage import CountingS3Server
from tests.support import FilesConnection, RangeCountingFileSystem

from .support import S3Bucket


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


@pytest.fixture(scope="module")
def s3_server() -> Iterator[CountingS3Server]:
    """A local S3 server (moto) that counts the bytes it sends, for the module's tests."""
    with CountingS3Server() as server:
        yield server


@pytest.fixture
def s3_storage(s3_server: CountingS3Server, request: pytest.FixtureRequest) -> Iterator[S3Bucket]:
    """``s3://`` served by the local S3 server through s3fs (as the Amazon provider does, without
    an aws connection), with a fresh bucket; Airflow's own ``s3`` registration is put back after."""
    from airflow.sdk.io import fs as airflow_fs
    from airflow.sdk.io.store import _STORE_CACHE

    schemes = airflow_fs._register_filesystems()
    previous = schemes.get("s3")
    s3 = s3_server.filesystem()
    bucket = "test-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    s3.mkdir(bucket)
    schemes["s3"] = lambda conn_id, options=None: s3  # type: ignore[index]
    _STORE_CACHE.pop("s3", None)
    yield S3Bucket(s3_server, s3, bucket)
    _STORE_CACHE.pop("s3", None)
    if previous is None:
        schemes.pop("s3", None)  # type: ignore[attr-defined]
    else:
        schemes["s3"] = previous  # type: ignore[index]


@pytest.fixture
def counting_storage() -> Iterator[RangeCountingFileSystem]:
    """``countingrange://``: an in-memory filesystem that serves ranged reads like S3, counts them
    and can fail them from a given byte (``fail_from_byte``), registered with Airflow for the test."""
    from airflow.sdk.io import fs as airflow_fs
    from airflow.sdk.io.store import _STORE_CACHE

    fsspec.register_implementation(RangeCountingFileSystem.protocol, RangeCountingFileSystem, clobber=True)
    schemes = airflow_fs._register_filesystems()
    counting = RangeCountingFileSystem()
    schemes[RangeCountingFileSystem.protocol] = lambda conn_id, options=None: counting  # type: ignore[index]
    _STORE_CACHE.pop(RangeCountingFileSystem.protocol, None)
    yield counting
    _STORE_CACHE.pop(RangeCountingFileSystem.protocol, None)
    schemes.pop(RangeCountingFileSystem.protocol, None)  # type: ignore[attr-defined]
