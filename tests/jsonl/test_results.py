"""Accounting of batch results: the line scanner and the custom_id / outcome / usage rules."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fsspec
import orjson
import pytest

from airflow_provider_files.jsonl import (
    LineScanner,
    LineTooLongError,
    ResultFiles,
    ResultLineError,
    ResultsAccount,
    ResultsSummary,
    account_results,
    merge_result_rounds,
    parse_result_line,
    read_custom_ids,
)

from .support import failed, http_error, input_file, ok

SAMPLE = (
    ok("a", {"prompt_tokens": 3, "completion_tokens": 4})
    + b"\n".join([b'{"custom_id": "b", "response": null, "error": {"code": "x"}}', b""])
    + "é \u2028 ü".encode()  # multi-byte characters: a split may fall inside one
    + b"\r\n\n"
    + b"last line without newline"
)


def scanned(
    writes: Sequence[bytes | bytearray | memoryview], inner: Any = None
) -> tuple[list[tuple[bytes, int]], LineScanner]:
    seen: list[tuple[bytes, int]] = []

    def on_lines(lines: list[bytes], first: int) -> None:
        assert lines, "called without lines"
        seen.extend((raw, number) for number, raw in enumerate(lines, first))

    scanner = LineScanner(on_lines, inner, max_line_bytes=1000)
    for data in writes:
        assert scanner.write(data) == len(data)
    scanner.finish()
    return seen, scanner


EXPECTED_LINES = [(raw, number) for number, raw in enumerate(SAMPLE.split(b"\n"), 1)]


# --- the line scanner ------------------------------------------------------------------------


def test_scanner_forwards_bytes_unchanged_and_sees_every_line() -> None:
    inner = io.BytesIO()
    seen, scanner = scanned([SAMPLE], inner)
    assert inner.getvalue() == SAMPLE
    assert seen == EXPECTED_LINES
    assert (scanner.lines, scanner.bytes_written) == (len(EXPECTED_LINES), len(SAMPLE))


def test_scanner_split_at_every_byte_position() -> None:
    for cut in range(len(SAMPLE) + 1):
        inner = io.BytesIO()
        seen, _ = scanned([SAMPLE[:cut], SAMPLE[cut:]], inner)
        assert seen == EXPECTED_LINES, cut
        assert inner.getvalue() == SAMPLE


def test_scanner_split_at_every_pair_of_positions_and_byte_by_byte() -> None:
    size = len(SAMPLE)
    for first in range(0, size + 1, 3):
        for second in range(first, size + 1):
            seen, _ = scanned([SAMPLE[:first], SAMPLE[first:second], SAMPLE[second:]])
            assert seen == EXPECTED_LINES, (first, second)
    seen, _ = scanned([SAMPLE[index : index + 1] for index in range(size)])
    assert seen == EXPECTED_LINES


def test_scanner_last_line_without_newline_waits_for_finish() -> None:
    seen: list[bytes] = []
    scanner = LineScanner(lambda lines, _: seen.extend(lines), max_line_bytes=100)
    scanner.write(b"one\ntw")
    scanner.write(b"o")
    assert seen == [b"one"]
    scanner.finish()
    assert seen == [b"one", b"two"]
    scanner.finish()  # idempotent
    assert seen == [b"one", b"two"]
    with pytest.raises(ValueError, match="after finish"):
        scanner.write(b"more")


def test_scanner_with_final_newline_adds_no_empty_line() -> None:
    seen, _ = scanned([b"one\n", b"two\n"])
    assert seen == [(b"one", 1), (b"two", 2)]


def test_scanner_takes_bytearray_and_memoryview() -> None:
    inner = io.BytesIO()
    seen, _ = scanned([bytearray(b"x\ny"), memoryview(b"z\n")], inner)
    assert inner.getvalue() == b"x\nyz\n"
    assert seen == [(b"x", 1), (b"yz", 2)]


def test_scanner_refuses_a_line_over_the_cap_split_or_whole() -> None:
    for writes in ([b"ok\n" + b"x" * 11], [b"ok\n", b"x" * 6, b"x" * 5], [b"ok\n" + b"x" * 11 + b"\n"]):
        scanner = LineScanner(lambda lines, first: None, max_line_bytes=10, source="out.jsonl")
        with pytest.raises(LineTooLongError, match=r"out\.jsonl line 2: line is over 11 bytes, more than 10"):
            for data in writes:
                scanner.write(data)
    with pytest.raises(ValueError, match="max_line_bytes"):
        LineScanner(lambda lines, first: None, max_line_bytes=0)


def test_scanner_as_copyfileobj_target_into_an_fsspec_handle() -> None:
    data = SAMPLE * 50
    seen: list[bytes] = []
    with fsspec.open("memory://results/out.jsonl", "wb") as handle:
        scanner = LineScanner(lambda lines, _: seen.extend(lines), handle, max_line_bytes=1000)
        shutil.copyfileobj(io.BytesIO(data), scanner, 7)
        scanner.finish()
    with fsspec.open("memory://results/out.jsonl", "rb") as stored:
        assert stored.read() == data
    assert seen == data.split(b"\n")


def test_scanner_close_finishes_and_closes_inner() -> None:
    inner = io.BytesIO()
    seen: list[bytes] = []
    scanner = LineScanner(lambda lines, _: seen.extend(lines), inner, max_line_bytes=10)
    scanner.write(b"end")
    scanner.close()
    assert seen == [b"end"] and inner.closed and scanner.closed


# --- one result line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (ok("a"), "output", ("a", True, None, False)),
        (ok("a", status=204), "output", ("a", True, None, False)),
        (ok("a"), "error", ("a", False, "http_200", False)),  # the error file only holds failures
        (http_error("a", 400, "invalid_prompt"), "output", ("a", False, "invalid_prompt", False)),
        (http_error("a", 400), "output", ("a", False, "http_400", False)),
        (http_error("a", 429), "output", ("a", False, "http_429", True)),
        (http_error("a", 429, "rate_limit_exceeded"), "output", ("a", False, "rate_limit_exceeded", True)),
        (http_error("a", 429, "insufficient_quota"), "output", ("a", False, "insufficient_quota", False)),
        (http_error("a", 500), "output", ("a", False, "http_500", True)),
        (http_error("a", 503, "overloaded"), "output", ("a", False, "overloaded", True)),
        (failed("a", "batch_expired"), "error", ("a", False, "batch_expired", True)),
        (failed("a", "server_error"), "error", ("a", False, "server_error", True)),
        (failed("a", "invalid_request"), "error", ("a", False, "invalid_request", False)),
        (failed("a", None), "error", ("a", False, "unknown", False)),
        (b'{"custom_id": "a", "response": null, "error": "boom"}', "error", ("a", False, "unknown", False)),
    ],
)
def test_outcome_error_code_and_retryable(raw: bytes, kind: Any, expected: tuple[Any, ...]) -> None:
    assert tuple(parse_result_line(raw.rstrip(b"\n"), kind))[:4] == expected


def test_error_code_prefers_error_over_body_over_status() -> None:
    raw = orjson.dumps(
        {
            "custom_id": "a",
            "response": {"status_code": 500, "body": {"error": {"code": "from_body"}}},
            "error": {"code": "from_error"},
        }
    )
    assert parse_result_line(raw, "output").error_code == "from_error"
    assert parse_result_line(http_error("a", 500, "from_body"), "output").error_code == "from_body"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'["custom_id"]', "a JSON list, not an object"),
        (b'{"response": {"status_code": 200}, "error": null}', "custom_id is missing"),
        (b'{"custom_id": 7, "response": {"status_code": 200}}', "custom_id is not a non-empty string"),
        (b'{"custom_id": "", "response": {"status_code": 200}}', "custom_id is not a non-empty string"),
        (b'{"custom_id": "a", "response": null, "error": null}', "neither response nor error"),
        (b'{"custom_id": "a", "response": "ok"}', "response is neither an object nor null"),
        (b'{"custom_id": "a", "response": {"status_code": "200"}}', "response.status_code is not an integer"),
    ],
)
def test_malformed_result_line_names_file_line_and_cause(raw: bytes, reason: str) -> None:
    account = ResultsAccount(["a"])
    data = ok("a") + raw + b"\n"
    with pytest.raises(ResultLineError, match=f"out.jsonl line 2: {reason}") as caught:
        scanner = account.sink(None, "output", source="out.jsonl")
        scanner.write(data[:5])
        scanner.write(data[5:])
        scanner.finish()
    assert (caught.value.line, caught.value.source) == (2, "out.jsonl")
    assert caught.value.excerpt  # the start of the bad line is shown


def test_malformed_line_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    path.write_bytes(failed("a") + failed("b") + b"garbage\n")
    with pytest.raises(ResultLineError, match=r"errors\.jsonl line 3: not valid JSON.*: garbage"):
        ResultsAccount(["a", "b"]).add_file(path, "error")


# --- the accounting -------------------------------------------------------------------------------


def summary_of(input_ids: list[str] | None, output: bytes, error: bytes = b"") -> ResultsSummary:
    account = ResultsAccount(input_ids)
    account.add_file(io.BytesIO(output), "output")
    account.add_file(io.BytesIO(error), "error")
    return account.summary()


def test_every_id_exactly_once_is_complete() -> None:
    summary = summary_of(["a", "b", "c"], ok("c") + ok("a"), failed("b"))
    assert summary.complete and summary.accounting_problems() == ""
    assert (summary.total_input, summary.output_lines, summary.error_lines) == (3, 2, 1)
    assert (summary.succeeded, summary.failed) == (2, 1)
    assert summary.error_codes == {"batch_expired": 1}
    assert summary.retryable == ("b",) and summary.non_retryable == ()
    assert summary.failed_fraction == pytest.approx(1 / 3)


def test_missing_duplicate_and_unexpected_ids_are_named() -> None:
    summary = summary_of(["a", "b", "c", "d"], ok("a") + ok("b") + ok("zz"), failed("a", "server_error"))
    assert not summary.complete
    assert summary.missing == ("c", "d")
    assert summary.duplicates == ("a",)
    assert summary.unexpected == ("zz",)
    assert (summary.succeeded, summary.failed) == (3, 1)  # counts are of lines
    assert summary.retryable == ()  # "a" succeeded once, "zz" is not ours to resubmit
    problems = summary.accounting_problems()
    assert "2 missing (c, d)" in problems
    assert "1 duplicated (a)" in problems
    assert "1 not in the input (zz)" in problems
    assert summary.ids_to_resubmit() == ["c", "d"]
    assert summary.ids_to_resubmit(include_missing=False) == []


def test_retryable_and_non_retryable_failures_in_input_order() -> None:
    output = http_error("e", 400, "invalid_prompt") + http_error("c", 502) + ok("a")
    error = failed("b", "batch_expired") + failed("d", "rate_limit_exceeded")
    summary = summary_of(["a", "b", "c", "d", "e", "f"], output, error)
    assert summary.retryable == ("b", "c", "d")
    assert summary.non_retryable == ("e",)
    assert summary.missing == ("f",)
    assert summary.ids_to_resubmit() == ["b", "c", "d", "f"]
    # a failure that is not retryable wins over a retryable one for the same id
    both = summary_of(["a"], http_error("a", 500), failed("a", "invalid_request"))
    assert (both.retryable, both.non_retryable, both.duplicates) == ((), ("a",), ("a",))


def test_error_codes_are_counted_most_frequent_first() -> None:
    output = http_error("1", 500) + http_error("2", 500) + http_error("3", 400, "bad") + ok("4")
    error = failed("5", "batch_expired") + failed("6", "batch_expired") + failed("7", "batch_expired")
    summary = summary_of(None, output, error)
    assert list(summary.error_codes.items()) == [("batch_expired", 3), ("http_500", 2), ("bad", 1)]


def test_usage_sums_for_chat_responses_and_embeddings() -> None:
    chat = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}
    responses = {"input_tokens": 20, "output_tokens": 7, "input_tokens_details": {"cached_tokens": 8}}
    embeddings = {"prompt_tokens": 30, "total_tokens": 30}
    odd = {"prompt_tokens": "9", "completion_tokens": None, "prompt_tokens_details": None}
    output = ok("a", chat) + ok("b", responses) + ok("c", embeddings) + ok("d", odd) + ok("e")
    usage = summary_of(None, output).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (60, 12, 12)
    assert (usage.total_tokens, usage.lines) == (72, 4)


def test_without_input_ids_nothing_is_missing_or_unexpected() -> None:
    summary = summary_of(None, ok("a") + http_error("b", 500))
    assert summary.total_input is None and summary.complete
    assert summary.retryable == ("b",)
    assert summary.failed_fraction == 0.5


def test_blank_result_lines_are_skipped() -> None:
    summary = summary_of(["a", "b"], b"\n" + ok("a") + b"  \r\n" + ok("b"))
    assert summary.complete and summary.output_lines == 2


def test_to_dict_is_json_safe_bounded_and_counts_stay_exact() -> None:
    ids = [f"req-{index}" for index in range(500)]
    long_id = "L" * 5000
    output = b"".join(ok(custom_id) for custom_id in ids[:100]) + ok(long_id)
    output += b"".join(http_error(str(index), 400, f"code-{index}") for index in range(80))
    summary = summary_of([*ids, long_id], output)
    data = summary.to_dict(max_listed_ids=10)
    assert json.loads(json.dumps(data)) == data
    assert data["missing_count"] == 400 and data["missing"] == ids[100:110]
    assert data["unexpected_count"] == 80 and len(data["unexpected"]) == 10
    assert len(data["error_codes"]) == 51 and data["error_codes"]["other"] == 30
    assert sum(data["error_codes"].values()) == 80 == data["failed"]
    assert data["succeeded"] == 101 and data["total_input"] == 501 and data["complete"] is False
    assert set(data["usage"]) == {"input_tokens", "output_tokens", "cached_tokens", "total_tokens", "lines"}
    assert len(json.dumps(data)) < 6000
    shown = summary_of([long_id], b"").to_dict()["missing"]
    assert len(shown[0]) == 200 and shown[0].endswith("...")


def test_sink_accounts_while_it_stores(tmp_path: Path) -> None:
    output = ok("b") + ok("a") + http_error("c", 500)
    account = ResultsAccount(["a", "b", "c"])
    with (tmp_path / "out.jsonl").open("wb") as handle:
        sink = account.sink(handle, "output", source="out.jsonl")
        for start in range(0, len(output), 10):
            sink.write(output[start : start + 10])
        sink.finish()
    assert (tmp_path / "out.jsonl").read_bytes() == output
    summary = account.summary()
    assert (summary.succeeded, summary.failed, summary.retryable) == (2, 1, ("c",))


# --- the input side -----------------------------------------------------------------------------


def test_read_custom_ids_in_input_order(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(input_file(["z", "a", "m"]) + b"\n")
    assert read_custom_ids(path) == ["z", "a", "m"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"nope", "not valid JSON"),
        (b'{"method": "POST"}', "no custom_id"),
        (b'{"custom_id": 3}', "no custom_id"),
    ],
)
def test_read_custom_ids_names_the_bad_line(bad: bytes, reason: str) -> None:
    with pytest.raises(ResultLineError, match=f"line 3: {reason}"):
        read_custom_ids(io.BytesIO(input_file(["a", "b"]) + bad + b"\n"))


def test_account_results_from_files(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(input_file(["a", "b", "c"]))
    (tmp_path / "out.jsonl").write_bytes(ok("a") + ok("c"))
    (tmp_path / "err.jsonl").write_bytes(failed("b"))
    summary = account_results(tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl")
    assert summary.complete and (summary.succeeded, summary.failed) == (2, 1)
    only_output = account_results(str(tmp_path / "in.jsonl"), tmp_path / "out.jsonl")
    assert only_output.missing == ("b",)
    assert account_results(None, None).total_input is None


# --- limits and object storage ------------------------------------------------------------------


def test_a_line_over_the_cap_is_named_by_file_sink_and_merge(tmp_path: Path) -> None:
    data = ok("a") + ok("b", padding="p" * 500) + ok("c")
    path = tmp_path / "out.jsonl"
    path.write_bytes(data)
    with pytest.raises(ResultLineError, match=r"out\.jsonl line 2: line is 623 bytes, more than 300"):
        ResultsAccount(["a", "b", "c"]).add_file(path, "output", max_line_bytes=300)
    sink = ResultsAccount().sink(None, "output", source="out.jsonl", max_line_bytes=300)
    with pytest.raises(LineTooLongError, match=r"out\.jsonl line 2"):
        sink.write(data)
    with pytest.raises(ResultLineError, match=r"out\.jsonl line 2: line is"):
        merge_result_rounds([ResultFiles(path)], io.BytesIO(), max_line_bytes=300)


def test_add_line_one_at_a_time() -> None:
    account = ResultsAccount(["a", "b"])
    account.add_line(ok("a").rstrip(b"\n"), "output", line=1)
    account.add_line(b"   ", "output", line=2)
    account.add_line(failed("b", "server_error").rstrip(b"\n"), "error", line=1)
    summary = account.summary()
    assert (summary.output_lines, summary.error_lines, summary.retryable) == (1, 1, ("b",))
    with pytest.raises(ResultLineError, match="<stream> line 7: not valid JSON"):
        account.add_line(b"{", "output", line=7)


def test_airflow_object_storage_path_as_sink_target_and_source(tmp_path: Path) -> None:
    object_storage = pytest.importorskip("airflow.sdk").ObjectStoragePath
    target = object_storage(f"file://{tmp_path / 'out.jsonl'}")
    data = ok("a") + failed("b")
    account = ResultsAccount(["a", "b"])
    with target.open("wb") as handle:
        sink = account.sink(handle, "output", source=str(target))
        sink.write(data)
        sink.finish()
    assert (tmp_path / "out.jsonl").read_bytes() == data
    assert account.summary().complete
    again = ResultsAccount(["a", "b"])
    again.add_file(target, "output")
    assert again.summary() == account.summary()
