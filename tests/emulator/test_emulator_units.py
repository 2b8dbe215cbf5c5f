"""In-process units of the emulator: the streaming multipart parser, the batch check."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from airflow_provider_files.emulator.batch_check import check_batch_file
from airflow_provider_files.emulator.multipart import (
    MultipartError,
    MultipartParser,
    TextSink,
    boundary_from_content_type,
)


def encode(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def parse(body: bytes, content_type: str, chunk_bytes: int) -> dict[str, tuple[str | None, bytes]]:
    found: dict[str, tuple[str | None, bytes]] = {}
    sinks: dict[str, tuple[str | None, TextSink]] = {}

    def open_sink(name: str, filename: str | None, content_type: str | None) -> TextSink:
        sink = TextSink(name, limit_bytes=10**9)
        sinks[name] = (filename, sink)
        return sink

    parser = MultipartParser(boundary_from_content_type(content_type), open_sink)
    for start in range(0, len(body), chunk_bytes):
        parser.feed(body[start : start + chunk_bytes])
    parser.close()
    for name, (filename, sink) in sinks.items():
        found[name] = (filename, b"".join(sink._chunks))
    return found


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 7, 64, 100_000])
def test_parser_is_independent_of_chunking(chunk_bytes: int) -> None:
    # data containing delimiter look-alikes and CRLFs
    tricky = b"\r\n--not-the-boundary\r\n" * 20 + b"\r\n-" + b"tail\r\n"
    body, content_type = encode({"purpose": "batch"}, {"file": ("name with spaces; and=signs.jsonl", tricky)})
    parsed = parse(body, content_type, chunk_bytes)
    assert parsed["purpose"] == (None, b"batch")
    assert parsed["file"] == ("name with spaces; and=signs.jsonl", tricky)


def test_parser_rejects_truncated_body() -> None:
    body, content_type = encode({"purpose": "batch"}, {"file": ("a", b"abc")})
    with pytest.raises(MultipartError, match="closing boundary"):
        parse(body[:-10], content_type, 1000)


def test_content_type_must_be_multipart() -> None:
    with pytest.raises(MultipartError, match="multipart/form-data"):
        boundary_from_content_type("application/json")
    with pytest.raises(MultipartError, match="boundary"):
        boundary_from_content_type("multipart/form-data")


def line(custom_id: str, url: str = "/v1/chat/completions", model: str = "m") -> bytes:
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": url, "body": {"model": model}}
    ).encode()


def test_batch_check_reads_lines_across_segments(tmp_path: Path) -> None:
    payload = b"\n".join(line(f"r{i}") for i in range(100)) + b"\n"
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(payload[:1001])
    second.write_bytes(payload[1001:])
    assert check_batch_file([first, second], len(payload)) is None
    bad = payload + line("r5") + b"\n"
    second.write_bytes(bad[1001:])
    assert (
        check_batch_file([first, second], len(bad))
        == "Line 101: custom_id 'r5' is a duplicate (first used on line 6)."
    )


def test_batch_check_one_model_per_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(line("a") + b"\n" + line("b", model="other") + b"\n")
    assert "one model per file" in str(check_batch_file([path], path.stat().st_size))
