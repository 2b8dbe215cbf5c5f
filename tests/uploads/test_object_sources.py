"""Uploads from object storage (:class:`ObjectSource`): ranged reads on a filesystem that behaves
like S3 and counts what it serves, and on fsspec's ``memory://``, whose one shared handle per
object broke parallel part reads."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_files.api import FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.uploads import ChunkedUploader, ObjectSource, OpenFileSource
from airflow_provider_files.uploads.sources import LINE_BUFFER_BYTES, md5_of
from tests.support import RangeCountingFileSystem

from .support import MIB

PART = 256 * 1024
SIZE = 2 * MIB + 12_345  # 9 parts, the last one short
FETCH_SLACK = 1.05  # a pass over the object may fetch at most this much more than its size


@pytest.fixture
def s3_like(make_file: Callable[..., Path]) -> tuple[RangeCountingFileSystem, bytes]:
    fs = RangeCountingFileSystem()
    data = make_file(SIZE).read_bytes()
    fs.pipe_file("bucket/data.jsonl", data)
    return fs, data


def _source(fs: RangeCountingFileSystem | MemoryFileSystem, path: str, size: int) -> ObjectSource:
    return ObjectSource(fs, path, size, name="data.jsonl", fingerprint="etag-1", label=f"s3://{path}")


def test_each_pass_over_an_s3_like_object_fetches_its_size_once(
    s3_like: tuple[RangeCountingFileSystem, bytes],
) -> None:
    fs, data = s3_like
    source = _source(fs, "bucket/data.jsonl", len(data))

    assert md5_of(source) == hashlib.md5(data).hexdigest()
    md5_pass = fs.bytes_fetched
    fs.reset_counts()
    parts = [
        b"".join(source.range(offset, min(PART, len(data) - offset)).chunks())
        for offset in range(0, len(data), PART)
    ]
    parts_pass = fs.bytes_fetched

    assert b"".join(parts) == data
    assert md5_pass <= FETCH_SLACK * len(data)
    assert parts_pass <= FETCH_SLACK * len(data)


def test_reading_parts_through_read_ahead_handles_fetches_several_times_the_object(
    s3_like: tuple[RangeCountingFileSystem, bytes],
) -> None:
    """The counter sees what the old reader cost: a handle per part, reading ahead to the end."""
    fs, data = s3_like
    source = OpenFileSource(lambda: fs.open("bucket/data.jsonl", "rb"), len(data), "data.jsonl", "v1")

    for offset in range(0, len(data), PART):
        b"".join(source.range(offset, min(PART, len(data) - offset)).chunks())

    assert fs.bytes_fetched > 4 * len(data)


def test_chunked_upload_from_an_s3_like_object(
    emulator: EmulatorHandle, client: FilesClient, s3_like: tuple[RangeCountingFileSystem, bytes]
) -> None:
    fs, data = s3_like
    source = _source(fs, "bucket/data.jsonl", len(data))

    result = ChunkedUploader(client, part_size_bytes=PART, concurrency=4).upload(source, purpose="batch")

    assert emulator.file_md5(result.file.id) == hashlib.md5(data).hexdigest()
    assert result.file.filename == "data.jsonl"
    # one pass for the md5, one for the parts
    assert fs.bytes_fetched <= 2 * FETCH_SLACK * len(data)
    assert fs.requests <= 2 * (len(data) // PART + 1) * (PART // MIB + 1)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_chunked_upload_from_memory_storage(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], concurrency: int
) -> None:
    """memory:// hands every ``open`` the same file object: parts read by range do not share it."""
    memory = MemoryFileSystem()
    data = make_file(SIZE).read_bytes()
    memory.pipe_file("/objstore-test/data.jsonl", data)
    try:
        source = _source(memory, "/objstore-test/data.jsonl", len(data))
        uploader = ChunkedUploader(client, part_size_bytes=PART, concurrency=concurrency)

        result = uploader.upload(source, purpose="batch")

        assert emulator.file_md5(result.file.id) == hashlib.md5(data).hexdigest()
    finally:
        memory.rm("/objstore-test/data.jsonl")


def test_parts_read_in_parallel_threads_get_their_own_bytes(
    s3_like: tuple[RangeCountingFileSystem, bytes],
) -> None:
    fs, data = s3_like
    source = _source(fs, "bucket/data.jsonl", len(data))
    offsets = list(range(0, len(data), PART))
    read: dict[int, bytes] = {}

    def read_part(offset: int) -> None:
        read[offset] = b"".join(source.range(offset, min(PART, len(data) - offset)).chunks())

    threads = [threading.Thread(target=read_part, args=(offset,)) for offset in offsets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(read[offset] == data[offset : offset + PART] for offset in offsets)


def test_an_object_truncated_while_read_fails_naming_it(
    s3_like: tuple[RangeCountingFileSystem, bytes],
) -> None:
    fs, data = s3_like
    source = _source(fs, "bucket/data.jsonl", len(data))
    fs.pipe_file("bucket/data.jsonl", data[: len(data) - 10])

    with pytest.raises(OSError, match=r"s3://bucket/data.jsonl returned .* replaced or truncated"):
        b"".join(source.range(len(data) - PART, PART).chunks())
    with pytest.raises(OSError, match="replaced or truncated"):
        md5_of(source)


def test_reading_the_first_line_fetches_little(s3_like: tuple[RangeCountingFileSystem, bytes]) -> None:
    fs, data = s3_like
    source = _source(fs, "bucket/data.jsonl", len(data))

    with source.open("rb") as handle:
        first = handle.readline()

    assert first == data[: len(first)]
    assert fs.bytes_fetched <= max(LINE_BUFFER_BYTES, len(first) + LINE_BUFFER_BYTES)


def test_open_reads_to_the_end_and_seeks(s3_like: tuple[RangeCountingFileSystem, bytes]) -> None:
    fs, data = s3_like
    source = _source(fs, "bucket/data.jsonl", len(data))

    with source.open() as handle:
        handle.seek(len(data) - 100)
        assert handle.read() == data[-100:]
        assert handle.read(10) == b""
    with pytest.raises(ValueError, match="mode 'rb'"):
        source.open("wb")
    assert (
        "etag" not in repr(source) and repr(source) == f"ObjectSource('s3://bucket/data.jsonl', size={SIZE})"
    )


def test_parts_of_a_memory_object_read_interleaved_do_not_move_each_other() -> None:
    """Two parts read chunk by chunk, in turn: each gets its own bytes although memory:// gives
    every ``open`` the same file object (the reads share no position)."""
    memory = MemoryFileSystem()
    data = bytes(range(256)) * (4 * MIB // 256)
    memory.pipe_file("/objstore-test/interleaved.bin", data)
    try:
        source = _source(memory, "/objstore-test/interleaved.bin", len(data))
        half = len(data) // 2
        first, second = source.range(0, half).chunks(), source.range(half, half).chunks()
        read_first: list[bytes] = []
        read_second: list[bytes] = []
        for chunk_first, chunk_second in zip(first, second, strict=True):
            read_first.append(chunk_first)
            read_second.append(chunk_second)

        assert b"".join(read_first) == data[:half]
        assert b"".join(read_second) == data[half:]
    finally:
        memory.rm("/objstore-test/interleaved.bin")
