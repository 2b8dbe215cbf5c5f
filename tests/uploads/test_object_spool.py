"""An object fetched once into a spool (:class:`SpooledObject`) that the md5, the parts and the
single request read: on a filesystem that behaves like S3 and counts what it serves."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.api import FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.uploads import (
    ChunkedUploader,
    ObjectSource,
    SingleRequestUploader,
    SpooledObject,
    SpoolError,
)
from airflow_provider_files.uploads.sources import md5_of
from tests.support import RangeCountingFileSystem

from .support import MIB

PART = 256 * 1024
RANGE = 128 * 1024  # the spool's ranged reads in these tests: many of them per object
SIZE = 2 * MIB + 12_345  # 9 parts, the last one short
KEY = "bucket/data.jsonl"
FETCH_SLACK = 1.05  # the whole upload may fetch at most this much more than the object
WAIT_S = 10.0


class GatedFileSystem(RangeCountingFileSystem):
    """Serves bytes past ``gate_from`` only once ``gate`` is set, and counts the reads in flight."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = threading.Event()
        self.gate_from = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._flight_lock = threading.Lock()

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        with self._flight_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if (end or 0) > self.gate_from and not self.gate.wait(WAIT_S):
                raise TimeoutError("the test never opened the gate")
            return super().cat_file(path, start, end, **kwargs)
        finally:
            with self._flight_lock:
                self.in_flight -= 1


@pytest.fixture
def s3_like(make_file: Callable[..., Path]) -> tuple[GatedFileSystem, bytes]:
    fs = GatedFileSystem()
    fs.gate.set()
    data = make_file(SIZE).read_bytes()
    fs.pipe_file(KEY, data)
    return fs, data


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def _spool(fs: RangeCountingFileSystem, size: int, folder: Path, **kwargs: Any) -> SpooledObject:
    source = ObjectSource(fs, KEY, size, name="data.jsonl", fingerprint="etag-1", label=f"s3://{KEY}")
    return SpooledObject(source, folder, range_bytes=RANGE, **kwargs)


def _no_spool_threads() -> bool:
    return not any(thread.name.startswith("object-spool") for thread in threading.enumerate())


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    yield
    assert _no_spool_threads(), [thread.name for thread in threading.enumerate()]


def test_a_chunked_upload_fetches_the_object_once(
    emulator: EmulatorHandle, client: FilesClient, s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like

    with _spool(fs, len(data), spool_dir) as spooled:
        result = ChunkedUploader(client, part_size_bytes=PART, concurrency=4).upload(spooled, purpose="batch")
        assert spooled.path is not None and spooled.path.parent == spool_dir

    expected_md5 = hashlib.md5(data).hexdigest()
    assert result.md5 == expected_md5  # the md5 sent with complete, taken from the spool
    assert emulator.file_md5(result.file.id) == expected_md5
    assert fs.bytes_fetched <= FETCH_SLACK * len(data)
    assert list(spool_dir.iterdir()) == []


def test_a_single_request_upload_fetches_the_object_once(
    emulator: EmulatorHandle, client: FilesClient, s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like

    with _spool(fs, len(data), spool_dir) as spooled:
        md5 = md5_of(spooled)  # as validation would, before the upload
        result = SingleRequestUploader(client).upload(spooled, purpose="batch", expected_md5=md5)

    assert emulator.file_md5(result.file.id) == hashlib.md5(data).hexdigest() == md5
    assert fs.bytes_fetched <= FETCH_SLACK * len(data)
    assert list(spool_dir.iterdir()) == []


def test_parts_are_read_while_the_fetch_goes_on(
    s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like
    fs.gate.clear()
    fs.gate_from = PART  # only the first part's bytes can be fetched

    with _spool(fs, len(data), spool_dir) as spooled:
        first = b"".join(spooled.range(0, PART).chunks())
        assert first == data[:PART]
        assert spooled.bytes_spooled < len(data)
        fs.gate.set()
        assert b"".join(spooled.range(len(data) - PART, PART).chunks()) == data[-PART:]


def test_the_fetch_holds_only_the_ranges_in_flight(
    s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like

    with _spool(fs, len(data), spool_dir, fetches_in_flight=3) as spooled, spooled.open() as handle:
        assert handle.read() == data

    assert 1 <= fs.most_in_flight <= 3
    assert fs.requests == -(-len(data) // RANGE)


def test_a_fetch_error_fails_the_readers_past_it_naming_the_object_and_the_cause(
    s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like
    fs.fail_from_byte = len(data) // 2

    with _spool(fs, len(data), spool_dir) as spooled:
        assert b"".join(spooled.range(0, PART).chunks()) == data[:PART]
        with pytest.raises(SpoolError, match=r"fetching s3://bucket/data.jsonl failed .*connection reset"):
            b"".join(spooled.range(len(data) - PART, PART).chunks())
        with pytest.raises(SpoolError, match="connection reset"):
            md5_of(spooled)
    assert list(spool_dir.iterdir()) == []


def test_a_chunked_upload_whose_fetch_fails_completes_nothing(
    emulator: EmulatorHandle, client: FilesClient, s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like
    fs.fail_from_byte = len(data) // 2
    uploader = ChunkedUploader(client, part_size_bytes=PART, concurrency=4, cancel_on_failure=True)

    with _spool(fs, len(data), spool_dir) as spooled, pytest.raises(Exception, match="connection reset"):
        uploader.upload(spooled, purpose="batch")

    assert emulator.stats()["file_count"] == 0
    assert list(spool_dir.iterdir()) == []


def test_close_stops_the_fetch_and_wakes_the_readers(
    s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, data = s3_like
    fs.gate.clear()
    fs.gate_from = PART
    spooled = _spool(fs, len(data), spool_dir)
    failures: list[BaseException] = []

    def read_the_end() -> None:
        try:
            b"".join(spooled.range(len(data) - PART, PART).chunks())
        except SpoolError as error:
            failures.append(error)

    reader = threading.Thread(target=read_the_end)
    reader.start()
    spooled.wait_for(PART)
    closer = threading.Thread(target=spooled.close)
    closer.start()
    fs.gate.set()  # the reads in flight finish; nothing new starts
    closer.join(WAIT_S)
    reader.join(WAIT_S)

    assert not closer.is_alive() and not reader.is_alive()
    assert len(failures) == 1 and "closed" in str(failures[0])
    assert fs.bytes_fetched < len(data)
    assert list(spool_dir.iterdir()) == []
    with pytest.raises(SpoolError, match="closed"):
        spooled.start()


def test_too_little_free_space_fails_before_any_fetch_naming_folder_and_sizes(
    s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    fs, _ = s3_like
    huge = 2**60  # an exbibyte: no test machine has it free

    with (
        _spool(fs, huge, spool_dir, space_hint="choose another folder") as spooled,
        pytest.raises(SpoolError) as caught,
    ):
        spooled.start()

    message = str(caught.value)
    assert f"not enough free space in {spool_dir}" in message
    assert f"it needs 1073741824 GiB ({huge} bytes)" in message
    assert message.endswith("are free; choose another folder")
    assert fs.requests == 0
    assert list(spool_dir.iterdir()) == []


def test_an_empty_object(s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path) -> None:
    fs, _ = s3_like
    fs.pipe_file(KEY, b"")

    with _spool(fs, 0, spool_dir) as spooled:
        assert md5_of(spooled) == hashlib.md5(b"").hexdigest()
        assert b"".join(spooled.range(0, 0).chunks()) == b""
    assert fs.requests == 0


def test_a_spool_left_by_a_killed_process_is_removed_by_the_next_one(
    s3_like: tuple[GatedFileSystem, bytes], spool_dir: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from airflow_provider_files.uploads.spool import SPOOL_FILE_PREFIX, STALE_SPOOL_MIN_AGE_S

    fs, data = s3_like
    spool_dir.mkdir()
    old = time.time() - STALE_SPOOL_MIN_AGE_S - 5
    # A process that holds its spool's lock, killed with SIGKILL: its lock dies with it.
    dead = spool_dir / f"{SPOOL_FILE_PREFIX}killed"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; h = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(h, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(dead)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    young = spool_dir / f"{SPOOL_FILE_PREFIX}young"  # its owner may not have locked it yet
    young.write_bytes(b"x")
    other = spool_dir / "not-a-spool"
    other.write_bytes(b"x")
    for path in (dead, other):
        os.utime(path, (old, old))

    with _spool(fs, len(data), spool_dir) as live:
        live.wait_for(len(data))
        assert live.path is not None
        os.utime(live.path, (old, old))
        with _spool(fs, len(data), spool_dir) as second:
            second.wait_for(len(data))
            # the dead process's file is gone; the live spool, the young file and other files stay
            assert sorted(path.name for path in spool_dir.iterdir()) == sorted(
                [live.path.name, second.path.name if second.path else "", young.name, other.name]
            )
    assert sorted(path.name for path in spool_dir.iterdir()) == sorted([young.name, other.name])
