from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from airflow_provider_files.jsonl import (
    BATCH_ENDPOINTS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    BatchLimits,
    InvalidBatchFileError,
    ValidationReport,
    _reading,
    ensure_valid_batch_file,
    validate_batch_file,
)
from airflow_provider_files.jsonl._reading import LineChunks

from .support import CHAT, MODEL, line, lines, request, write


def check(data: bytes, **kwargs: Any) -> ValidationReport:
    return validate_batch_file(io.BytesIO(data), **kwargs)


def found(report: ValidationReport) -> list[tuple[int | None, str]]:
    return [(error.line, error.rule) for error in report.errors]


def test_valid_file_reports_counts_endpoint_and_model(tmp_path: Path) -> None:
    data = lines(5)
    report = validate_batch_file(write(tmp_path / "batch.jsonl", data))
    assert report.valid
    assert (report.lines, report.bytes, report.endpoint, report.model) == (5, len(data), CHAT, MODEL)
    assert report.errors == [] and report.error_count == 0 and report.warnings == []
    assert str(report) == (
        f"{tmp_path / 'batch.jsonl'} is a valid batch file: 5 requests to {CHAT}, model {MODEL}, {len(data)} bytes."
    )


def test_defaults_match_the_contract() -> None:
    assert DEFAULT_MAX_LINES == 50_000
    # "200 MB" is not defined further; the decimal reading is the stricter one.
    assert DEFAULT_MAX_BYTES == 200_000_000
    assert sorted(BATCH_ENDPOINTS) == sorted(
        [
            "/v1/responses",
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/completions",
            "/v1/moderations",
            "/v1/images/generations",
            "/v1/images/edits",
            "/v1/videos",
        ]
    )


# (broken line bytes, expected rule). Each case is placed first, in the middle and last of a
# file of valid lines, so both the first-line path and the fast path for later lines are tested.
BROKEN_LINES: dict[str, tuple[bytes, str]] = {
    "invalid json": (b'{"custom_id": "x", "method": "POST"\n', "invalid_json"),
    "trailing garbage": (line(90)[:-1] + b" x\n", "invalid_json"),
    "two objects": (line(90)[:-1] + line(91), "invalid_json"),
    "invalid utf8": (b'{"custom_id": "\xff\xfe", "method": "POST"}\n', "invalid_utf8"),
    "array": (b"[1, 2]\n", "not_object"),
    "string": (b'"just text"\n', "not_object"),
    "null": (b"null\n", "not_object"),
    "no custom_id": (line(90, custom_id=None), "missing_custom_id"),
    "int custom_id": (line(90, custom_id=90), "bad_custom_id"),
    "empty custom_id": (line(90, custom_id=""), "bad_custom_id"),
    "GET": (line(90, method="GET"), "bad_method"),
    "lowercase post": (line(90, method="post"), "bad_method"),
    "no method": (line(90, method=None), "bad_method"),
    "unknown url": (line(90, url="/v1/files"), "unknown_url"),
    "url without v1": (line(90, url="/chat/completions"), "unknown_url"),
    "no url": (line(90, url=None), "unknown_url"),
    "url not a string": (line(90, url=["/v1/chat/completions"]), "unknown_url"),
    "no body": (line(90, body=None), "body_not_object"),
    "body list": (line(90, body=[{"model": MODEL}]), "body_not_object"),
    "body string": (line(90, body="{}"), "body_not_object"),
    "no model": (line(90, body={"messages": []}), "missing_model"),
    "null model": (line(90, body={"model": None, "messages": []}), "missing_model"),
    "int model": (line(90, body={"model": 4, "messages": []}), "bad_model"),
    "blank": (b"\n", "blank_line"),
    "spaces": (b"   \t \n", "blank_line"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_LINES))
@pytest.mark.parametrize("position", [1, 4, 7])
def test_each_rule_names_the_broken_line(case: str, position: int) -> None:
    broken, rule = BROKEN_LINES[case]
    data = lines(position - 1) + broken + lines(7 - position, start=position + 1)
    report = check(data)
    assert not report.valid
    assert found(report) == [(position, rule)]
    assert report.error_count == 1
    assert report.lines == 7


def test_duplicate_custom_id_names_the_first_line() -> None:
    report = check(lines(4) + line(2) + lines(2, start=5))
    assert found(report) == [(5, "duplicate_custom_id")]
    assert "duplicate custom_id 'req-2' (first seen on line 2)" in report.errors[0].message


def test_duplicate_on_the_second_line_is_found() -> None:
    report = check(line(1) + line(1))
    assert found(report) == [(2, "duplicate_custom_id")]


def test_mixed_endpoints_and_models_are_reported_against_the_first_line() -> None:
    data = (
        lines(3)
        + line(4, url="/v1/embeddings", body={"model": MODEL, "input": "x"})
        + line(5, body={"model": "gpt-4.1", "messages": []})
        + lines(2, start=6)
    )
    report = check(data)
    assert found(report) == [(4, "mixed_endpoints"), (5, "mixed_models")]
    assert "'/v1/embeddings' differs from '/v1/chat/completions' (line 1)" in report.errors[0].message
    assert "model 'gpt-4.1', but line 1 has 'gpt-4o-mini'" in report.errors[1].message
    assert (report.endpoint, report.model) == (CHAT, MODEL)


def test_endpoint_and_model_come_from_the_first_line_that_has_them() -> None:
    data = line(1, url="/v1/nope") + line(2, body={"model": 3}) + lines(3, start=3)
    report = check(data)
    assert found(report) == [(1, "unknown_url"), (2, "bad_model")]
    assert (report.endpoint, report.model) == (CHAT, MODEL)


def moderation(index: int, **body: Any) -> bytes:
    return orjson.dumps(request(index, url="/v1/moderations", body=body)) + b"\n"


def test_moderations_may_leave_out_the_model_on_every_line() -> None:
    report = check(b"".join(moderation(index, input=f"text {index}") for index in range(1, 6)))
    assert report.valid, report.summary()
    assert (report.endpoint, report.model) == ("/v1/moderations", None)


def test_moderations_model_must_be_set_on_all_lines_or_none() -> None:
    data = (
        moderation(1, input="a")
        + moderation(2, input="b", model="omni-moderation-latest")
        + moderation(3, input="c")
    )
    assert found(check(data)) == [(2, "mixed_models")]
    data = moderation(1, input="a", model="omni-moderation-latest") + moderation(2, input="b")
    assert found(check(data)) == [(2, "mixed_models")]


@pytest.mark.parametrize("position", [1, 3])
def test_moderations_need_input_and_no_stream(position: int) -> None:
    good = [moderation(index, input="x", model="omni-moderation-latest") for index in range(1, 5)]
    for broken, rule in [
        (moderation(position, model="omni-moderation-latest"), "missing_input"),
        (moderation(position, input="x", model="omni-moderation-latest", stream=True), "stream_not_allowed"),
    ]:
        data = b"".join([*good[: position - 1], broken, *good[position:]])
        assert found(check(data)) == [(position, rule)]


def test_models_required_on_chat_completions_and_embeddings() -> None:
    for url in ("/v1/completions", "/v1/embeddings"):
        data = line(1, url=url, body={"model": "m", "input": "x"}) + line(2, url=url, body={"input": "y"})
        assert found(check(data)) == [(2, "missing_model")]
    # responses, images and videos have a server-side default model
    data = line(1, url="/v1/responses", body={"input": "x"}) + line(
        2, url="/v1/responses", body={"input": "y"}
    )
    assert check(data).valid


def test_a_line_can_break_several_rules() -> None:
    report = check(lines(2) + line(1, method="PUT", url="/v2/x", body=[]))
    assert found(report) == [
        (3, "duplicate_custom_id"),
        (3, "bad_method"),
        (3, "unknown_url"),
        (3, "body_not_object"),
    ]


# --- the edges of the format -------------------------------------------------------------


def test_empty_file_is_invalid() -> None:
    report = check(b"")
    assert found(report) == [(None, "empty_file")]
    assert (
        report.summary()
        == "<stream> is not a valid batch file: 1 error.\n  file: file is empty; a batch file needs at least one request [empty_file]"
    )


def test_file_of_only_blank_lines_is_empty() -> None:
    report = check(b"\n\r\n")
    assert found(report) == [(None, "empty_file"), (1, "blank_line"), (2, "blank_line")]


def test_bom_is_rejected_on_line_1_and_the_rest_still_checked() -> None:
    report = check(b"\xef\xbb\xbf" + lines(2) + line(1))
    assert found(report) == [(1, "bom"), (3, "duplicate_custom_id")]
    assert report.bytes == 3 + len(lines(2) + line(1))


def test_bom_alone_is_an_empty_file() -> None:
    assert found(check(b"\xef\xbb\xbf")) == [(None, "empty_file"), (1, "bom"), (1, "blank_line")]


def test_crlf_line_endings_are_accepted_with_a_warning() -> None:
    data = lines(3).replace(b"\n", b"\r\n")
    report = check(data)
    assert report.valid and report.lines == 3 and report.bytes == len(data)
    assert report.warnings == ["file uses CRLF line endings (accepted)"]
    assert "Note: file uses CRLF line endings (accepted)." in report.summary()


def test_crlf_blank_line_is_a_blank_line() -> None:
    data = lines(2).replace(b"\n", b"\r\n") + b"\r\n" + line(3).replace(b"\n", b"\r\n")
    assert found(check(data)) == [(3, "blank_line")]


def test_missing_final_newline_is_accepted_with_a_warning() -> None:
    data = lines(3)[:-1]
    report = check(data)
    assert report.valid and report.lines == 3 and report.bytes == len(data)
    assert report.warnings == ["no newline at the end of the file (accepted)"]


def test_missing_final_newline_still_checks_the_last_line() -> None:
    assert found(check(lines(2) + line(1)[:-1])) == [(3, "duplicate_custom_id")]


def test_extra_newline_at_the_end_is_a_blank_line() -> None:
    assert found(check(lines(3) + b"\n")) == [(4, "blank_line")]


# --- limits --------------------------------------------------------------------------------


def test_line_limit_is_inclusive_and_names_the_first_line_over_it() -> None:
    limits = BatchLimits(max_lines=10)
    assert check(lines(10), limits=limits).valid
    report = check(lines(12), limits=limits)
    assert found(report) == [(11, "too_many_lines")]
    assert "12 requests, more than the limit of 10" in report.errors[0].message


def test_byte_limit_is_inclusive_and_names_the_line_that_crosses_it() -> None:
    data = lines(10)
    assert check(data, limits=BatchLimits(max_bytes=len(data))).valid
    report = check(data, limits=BatchLimits(max_bytes=len(data) - 1))
    assert found(report) == [(10, "too_many_bytes")]
    assert (
        f"file is {len(data):,} bytes, more than the limit of {len(data) - 1:,}" in report.errors[0].message
    )
    first_five = len(lines(5))
    assert found(check(data, limits=BatchLimits(max_bytes=first_five))) == [(6, "too_many_bytes")]


def test_byte_limit_without_final_newline_counts_real_bytes() -> None:
    data = lines(4)[:-1]
    assert check(data, limits=BatchLimits(max_bytes=len(data))).valid
    assert found(check(data, limits=BatchLimits(max_bytes=len(data) - 1))) == [(4, "too_many_bytes")]


def test_limits_can_be_switched_off() -> None:
    assert check(lines(60), limits=BatchLimits(max_lines=None, max_bytes=None)).valid


@pytest.mark.parametrize(
    "kwargs", [{"max_lines": 0}, {"max_bytes": -1}, {"max_lines": 1.5}, {"endpoints": frozenset()}]
)
def test_bad_limits_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="BatchLimits"):
        BatchLimits(**kwargs)


def test_custom_endpoints() -> None:
    limits = BatchLimits(endpoints=frozenset({"/v1/chat/completions"}))
    assert found(check(line(1, url="/v1/responses"), limits=limits)) == [(1, "unknown_url")]


def test_overlong_line_is_not_held_in_memory_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reading, "READ_CHUNK_BYTES", 64)
    huge = line(2, body={"model": MODEL, "messages": [{"role": "user", "content": "x" * 5000}]})
    report = check(line(1) + huge + line(3), limits=BatchLimits(max_bytes=1000))
    # Reading stops at the first byte past max_bytes, inside line 2 (issue 12 item 12): the line is
    # reported as the one that crosses the limit; the stream's size is still known (seekable).
    assert found(report) == [(2, "too_many_bytes")]
    assert f"file is {len(line(1) + huge + line(3)):,} bytes, more than the limit of 1,000" in (
        report.errors[0].message
    )
    assert report.bytes == len(line(1) + huge + line(3))
    assert not report.read_whole


def test_overlong_last_line_without_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reading, "READ_CHUNK_BYTES", 100)
    data = line(1) + b'{"custom_id": "' + b"y" * 3000 + b'"}'
    report = check(data, limits=BatchLimits(max_bytes=1000))
    assert found(report) == [(2, "too_many_bytes")]  # reading stopped inside line 2 (issue 12)
    assert report.lines == 2 and report.bytes == len(data)


# --- errors, excerpts, reports ------------------------------------------------------------


def test_max_errors_keeps_the_first_errors_and_counts_all() -> None:
    data = b"".join(line(index, method="GET") for index in range(1, 31))
    report = check(data, max_errors=5)
    assert [error.line for error in report.errors] == [1, 2, 3, 4, 5]
    assert report.error_count == 30
    assert report.summary().endswith("  ... and 25 more.")
    assert check(data, max_errors=0).errors == [] and check(data, max_errors=0).error_count == 30


def test_limit_errors_are_kept_even_past_max_errors() -> None:
    data = b"".join(line(index, method="GET") for index in range(1, 13))
    report = check(data, max_errors=2, limits=BatchLimits(max_lines=10))
    assert found(report) == [(1, "bad_method"), (2, "bad_method"), (11, "too_many_lines")]
    # Lines after the first one over the line limit are counted, not checked (issue 12).
    assert report.error_count == 12 and report.lines == 12


def test_excerpt_is_short_and_printable() -> None:
    long_line = line(1, body={"model": "m", "messages": [{"content": "é" * 300}]})[:-1] + b"\x01 junk\n"
    error = check(long_line).errors[0]
    assert error.rule == "invalid_json"
    assert len(error.excerpt) <= 83 and error.excerpt.endswith("...")
    assert error.excerpt.startswith('{"custom_id":"req-1"')
    control = check(b'{"a":\x01}\n').errors[0]
    assert control.excerpt == '{"a":\\x01}'


def test_line_error_str_and_summary_format() -> None:
    report = check(lines(2) + line(1))
    text = report.summary()
    assert text.splitlines()[0] == "<stream> is not a valid batch file: 1 error."
    assert text.splitlines()[1].startswith(
        '  line 3: duplicate custom_id \'req-1\' (first seen on line 1) [duplicate_custom_id]: {"custom_id":"req-1"'
    )


def test_report_to_dict_is_json() -> None:
    report = check(lines(2) + b"oops\n")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["valid"] is False and data["lines"] == 3 and data["error_count"] == 1
    assert data["errors"][0]["line"] == 3 and data["errors"][0]["rule"] == "invalid_json"
    assert data["limits"]["max_lines"] == 50_000


def test_ensure_valid_raises_with_the_report() -> None:
    assert ensure_valid_batch_file(io.BytesIO(lines(2))).lines == 2
    with pytest.raises(InvalidBatchFileError) as raised:
        ensure_valid_batch_file(io.BytesIO(lines(2) + line(9, url="/v1/x")))
    assert isinstance(raised.value, ValueError)
    assert raised.value.report.errors[0].line == 3
    assert "line 3: url '/v1/x' is not a batch endpoint" in str(raised.value)


# --- sources ------------------------------------------------------------------------------


def test_sources_path_str_pathlike_and_stream(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", lines(3) + line(1))
    reports = [
        validate_batch_file(str(path)),
        validate_batch_file(path),
        validate_batch_file(io.BytesIO(path.read_bytes())),
    ]
    with path.open("rb") as handle:  # a buffered stream, not only BytesIO
        reports.append(validate_batch_file(handle))
        assert not handle.closed  # a stream passed in is not closed
    assert [found(report) for report in reports] == [[(4, "duplicate_custom_id")]] * 4
    assert reports[0].source == str(path) and reports[3].source == str(path)


class SlowStream(io.RawIOBase):
    """A stream that returns at most 7 bytes per read, like a network stream may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 7) if size >= 0 else 7)


class FakeStoragePath:
    """Something pathlib-like with open('rb') only, like ObjectStoragePath."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, mode: str) -> io.BytesIO:
        assert mode == "rb"
        return io.BytesIO(self.data)

    def __str__(self) -> str:
        return "s3://bucket/batch.jsonl"


def test_short_reads_and_objects_with_open() -> None:
    data = lines(5) + line(2)
    assert found(validate_batch_file(SlowStream(data))) == [(6, "duplicate_custom_id")]
    report = validate_batch_file(FakeStoragePath(data))
    assert found(report) == [(6, "duplicate_custom_id")] and report.source == "s3://bucket/batch.jsonl"


def test_airflow_object_storage_path(tmp_path: Path) -> None:
    object_storage = pytest.importorskip("airflow.sdk").ObjectStoragePath
    write(tmp_path / "in.jsonl", lines(4))
    report = validate_batch_file(object_storage(f"file://{tmp_path / 'in.jsonl'}"))
    assert report.valid and report.lines == 4


def test_text_mode_stream_is_refused() -> None:
    with pytest.raises(TypeError, match="binary mode"):
        validate_batch_file(io.StringIO(lines(1).decode()))  # type: ignore[arg-type]


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        validate_batch_file(tmp_path / "missing.jsonl")


def test_unsupported_source_type() -> None:
    with pytest.raises(TypeError, match="cannot read a batch file from int"):
        validate_batch_file(42)  # type: ignore[arg-type]


# --- streaming: chunk boundaries must not change the result --------------------------------

MIXED = (
    b"\xef\xbb\xbf"
    + lines(3)
    + b"\n"
    + line(2)
    + b"{not json\n"
    + line(7, url="/v1/embeddings").replace(b"\n", b"\r\n")
    + lines(4, start=8)
    + line(12, body={"model": "other"})
    + line(13)[:-1]
)


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_chunk_size_does_not_change_the_report(monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    monkeypatch.setattr(_reading, "READ_CHUNK_BYTES", chunk_bytes)
    report = check(MIXED, limits=BatchLimits(max_lines=12, max_bytes=len(MIXED) - 200))
    assert found(report) == [
        (1, "bom"),
        (4, "blank_line"),
        (5, "duplicate_custom_id"),
        (6, "invalid_json"),
        (7, "mixed_endpoints"),
        (12, "too_many_bytes"),
    ]
    # Reading stopped at the first byte past max_bytes, inside line 12, which is therefore only
    # reported as crossing the limit (issue 12 item 12); read whole, it breaks two more rules:
    assert report.lines == 12 and report.bytes == len(MIXED) and not report.read_whole
    assert report.warnings == ["file uses CRLF line endings (accepted)"]
    report = check(MIXED, limits=BatchLimits(max_lines=12, max_bytes=None))
    assert found(report)[-2:] == [(12, "mixed_models"), (13, "too_many_lines")]
    assert report.lines == 13 and report.bytes == len(MIXED) and report.read_whole
    assert sorted(report.warnings) == [
        "file uses CRLF line endings (accepted)",
        "no newline at the end of the file (accepted)",
    ]


@pytest.mark.parametrize("chunk_bytes", [1, 5, 50, 4096])
def test_line_chunks_yield_exactly_the_lines(chunk_bytes: int) -> None:
    data = b"a\n\nbc\r\n" + b"d" * 300 + b"\nlast"
    chunks = LineChunks(io.BytesIO(data), max_line_bytes=1000, chunk_bytes=chunk_bytes)
    got = [piece for batch in chunks for piece in batch]
    assert got == data.split(b"\n")
    assert chunks.bytes_read == len(data) and not chunks.ends_with_newline and chunks.saw_carriage_return


def test_jsonl_imports_neither_airflow_nor_httpx() -> None:
    code = (
        "import sys, airflow_provider_files.jsonl, airflow_provider_files.jsonl.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('airflow', 'httpx')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
