"""The validation pass also takes the file's md5, from the same read (one read for both)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from airflow_provider_files.jsonl import BatchLimits, validate_batch_file
from airflow_provider_files.jsonl._hashing import HashingReader
from tests.support import chat_requests


class CountingStream(io.BytesIO):
    """Counts the bytes handed out by ``read``."""

    bytes_handed = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.bytes_handed += len(chunk)
        return chunk


def test_the_report_carries_the_md5_of_the_bytes_it_read_once(tmp_path: Path) -> None:
    data = chat_requests(5000)  # several read chunks
    path = tmp_path / "requests.jsonl"
    path.write_bytes(data)
    stream = CountingStream(data)

    from_path = validate_batch_file(path)
    from_stream = validate_batch_file(stream)

    expected = hashlib.md5(data).hexdigest()
    assert from_path.valid and from_path.md5 == expected
    assert from_stream.md5 == expected and stream.bytes_handed == len(data)  # read once
    assert from_path.to_dict()["md5"] == expected


def test_no_md5_when_reading_stopped_at_a_limit() -> None:
    data = chat_requests(50)
    report = validate_batch_file(io.BytesIO(data), limits=BatchLimits(max_bytes=len(data) // 2))
    assert not report.valid and not report.read_whole and report.md5 is None


def test_the_hashing_reader_hashes_everything_read_through_it() -> None:
    data = bytes(range(256)) * 10_000
    with HashingReader(io.BytesIO(data)) as reader:
        while reader.read(65_536):
            pass
        assert reader.hexdigest() == hashlib.md5(data).hexdigest()
