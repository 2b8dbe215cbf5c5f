"""The validator's reading is bounded (issue 12 item 12): it stops at the first byte past the size
limit and at the first line past the line cap, so endless inputs end and a long line costs at most
the cap in memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from airflow_provider_files.jsonl import BatchLimits, validate_batch_file
from airflow_provider_files.jsonl._reading import LineChunks, TruncatedLine
from airflow_provider_files.jsonl.report import DEFAULT_MAX_LINE_BYTES

from .support import line, lines

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = REPO_ROOT / ".venv" / "bin" / "airflow-files"
ENDLESS_INPUT_TIMEOUT_S = 60


class CountingStream(io.RawIOBase):
    """``data`` repeated ``repeat`` times (or for ever), made on the fly; counts the bytes served."""

    def __init__(self, data: bytes, repeat: int | None = None) -> None:
        self._data = data
        self._left = None if repeat is None else len(data) * repeat
        self.served = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise AssertionError("the validator must never read a stream whole")
        if self._left is not None:
            size = min(size, self._left)
            self._left -= size
        offset = self.served % len(self._data)
        reps = (offset + size) // len(self._data) + 1
        chunk = (self._data * reps)[offset : offset + size] if len(self._data) > 1 else self._data * size
        self.served += len(chunk)
        return chunk


def test_reading_stops_at_the_first_byte_past_max_bytes() -> None:
    stream = CountingStream(lines(1), repeat=None)  # endless copies of one request
    report = validate_batch_file(stream, limits=BatchLimits(max_bytes=10_000, max_lines=None))
    assert stream.served == 10_001
    crossing = -(-10_001 // len(lines(1)))  # the line holding byte 10,001
    rules = [(error.line, error.rule) for error in report.errors]
    assert rules[-1] == (crossing, "too_many_bytes")
    assert "file is more than 10,000 bytes" in report.errors[-1].message
    assert "airflow-files shard" in report.errors[-1].message and "split=True" in report.errors[-1].message
    assert not report.read_whole and report.lines == crossing and report.bytes == 10_001


def test_lines_past_the_line_limit_are_counted_not_checked() -> None:
    report = validate_batch_file(io.BytesIO(lines(5) + b"{not json\n" * 20), limits=BatchLimits(max_lines=5))
    assert [(error.line, error.rule) for error in report.errors] == [
        (6, "invalid_json"),
        (6, "too_many_lines"),
    ]
    assert report.lines == 25 and report.read_whole
    assert "25 requests, more than the limit of 5" in report.errors[1].message


def test_a_line_past_the_line_cap_stops_reading_with_bounded_memory() -> None:
    stream = CountingStream(b"x", repeat=50_000_000)
    tracemalloc.start()
    try:
        report = validate_batch_file(stream, limits=BatchLimits(max_bytes=None, max_line_bytes=1_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(error.line, error.rule) for error in report.errors] == [(1, "line_too_long")]
    assert "longer than 1,000,000 bytes" in report.errors[0].message
    assert stream.served < 3_000_000 and not report.read_whole
    assert peak < 5_000_000


def test_default_line_cap_bounds_the_memory_of_a_huge_line() -> None:
    # 100 MB in one line, no size limit: before issue 12 the line was held whole (twice, to join it).
    stream = CountingStream(b"y", repeat=100_000_000)
    tracemalloc.start()
    try:
        report = validate_batch_file(stream, limits=BatchLimits(max_bytes=None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(error.line, error.rule) for error in report.errors] == [(1, "line_too_long")]
    assert stream.served <= DEFAULT_MAX_LINE_BYTES + (1 << 20)
    assert peak < DEFAULT_MAX_LINE_BYTES + 8 * (1 << 20)


def test_a_long_line_under_the_cap_is_still_checked() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "z" * 3_000_000}]}
    report = validate_batch_file(io.BytesIO(line(1) + line(2, body=body) + line(2)))
    assert [(error.line, error.rule) for error in report.errors] == [(3, "duplicate_custom_id")]


def test_cli_validate_dev_zero_ends_with_a_clear_error() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "validate", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=ENDLESS_INPUT_TIMEOUT_S,
    )
    assert result.returncode == 1, result.stderr
    assert "line 1: line is longer than" in result.stdout and "[line_too_long]" in result.stdout
    assert time.monotonic() - started < ENDLESS_INPUT_TIMEOUT_S


def test_cli_validate_endless_pipe_ends_with_a_clear_error() -> None:
    # Like `yes '<request>' | airflow-files validate -`, with the producer in Python.
    code = f"import sys\nchunk = {line(1)!r} * 1000\nwhile True:\n    sys.stdout.buffer.write(chunk)\n"
    producer = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert producer.stdout is not None
    try:
        result = subprocess.run(
            [str(CONSOLE_SCRIPT), "validate", "-", "--json"],
            stdin=producer.stdout,
            capture_output=True,
            text=True,
            timeout=ENDLESS_INPUT_TIMEOUT_S,
        )
    finally:
        producer.stdout.close()
        producer.kill()
        producer.wait()
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    rules = [(error["line"], error["rule"]) for error in report["errors"]]
    assert rules[0] == (2, "duplicate_custom_id")
    assert (50_001, "too_many_lines") in rules
    assert rules[-1][1] == "too_many_bytes"
    assert "file is more than 200,000,000 bytes" in report["errors"][-1]["message"]
    assert report["read_whole"] is False


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64, 1 << 20])
def test_line_chunks_stop_at_a_line_past_the_cap(chunk_bytes: int) -> None:
    data = b"a\nbb\n" + b"c" * 50 + b"\nd\n"
    chunks = LineChunks(io.BytesIO(data), max_line_bytes=10, chunk_bytes=chunk_bytes)
    got = [piece for batch in chunks for piece in batch]
    assert got[:2] == [b"a", b"bb"] and len(got) == 3
    long_line = got[2]
    assert isinstance(long_line, TruncatedLine) and long_line.startswith(b"c") and long_line.limit == 10
    assert long_line.length > 10 and (long_line.complete == (long_line.length == 50))
    assert long_line.size_text().endswith(" bytes")
    assert chunks.stopped == "line_too_long" and chunks.lines == 3
    assert chunks.bytes_read < len(data) or chunk_bytes >= len(data)  # "d" is never read on its own


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize(
    ("budget", "stop_line", "excerpt"), [(3, 2, b"b"), (4, 2, b"bb"), (5, 2, b"bb"), (6, 3, b"c")]
)
def test_line_chunks_stop_at_the_byte_budget(
    chunk_bytes: int, budget: int, stop_line: int, excerpt: bytes
) -> None:
    data = b"a\nbb\nccc\n"
    chunks = LineChunks(io.BytesIO(data), max_line_bytes=100, chunk_bytes=chunk_bytes, max_read_bytes=budget)
    got = [piece for batch in chunks for piece in batch]
    assert chunks.bytes_read == budget and chunks.stopped == "byte_limit"
    assert (chunks.stop_line, chunks.lines, chunks.stop_excerpt) == (stop_line, stop_line, excerpt)
    assert (
        got
        == data[:budget].split(b"\n")[: (stop_line if data[budget - 1 : budget] == b"\n" else stop_line - 1)]
    )


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64, 1 << 20])
def test_line_chunks_count_lines_past_those_yielded(chunk_bytes: int) -> None:
    data = b"a\nbb\nccc\ndddd\ne"
    chunks = LineChunks(io.BytesIO(data), max_line_bytes=100, chunk_bytes=chunk_bytes, max_yield_lines=2)
    assert [piece for batch in chunks for piece in batch] == [b"a", b"bb"]
    assert chunks.lines == 5 and chunks.bytes_read == len(data) and not chunks.ends_with_newline
    assert chunks.stopped is None


@pytest.mark.parametrize("chunk_bytes", [1, 7, 1 << 20])
def test_line_chunks_past_the_lines_to_yield_a_long_line_is_only_counted(chunk_bytes: int) -> None:
    data = b"a\nb\nc\n" + b"d" * 50 + b"\ne\n"
    chunks = LineChunks(io.BytesIO(data), max_line_bytes=10, chunk_bytes=chunk_bytes, max_yield_lines=2)
    assert [piece for batch in chunks for piece in batch] == [b"a", b"b"]
    assert chunks.lines == (4 if chunks.stopped else 5)
    assert chunks.stopped in (None, "line_too_long")  # stopped only if it came in the yielding pass


def test_a_long_line_after_the_line_limit_is_not_reported_as_a_request() -> None:
    data = lines(3) + line(4, body={"model": "gpt-4o-mini", "messages": [{"content": "q" * 5000}]})
    report = validate_batch_file(io.BytesIO(data), limits=BatchLimits(max_lines=2, max_line_bytes=1000))
    assert [(error.line, error.rule) for error in report.errors] == [(3, "too_many_lines")]
