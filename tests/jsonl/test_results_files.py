"""Files written from batch results: the input subset to resubmit, merged rounds, input order."""

from __future__ import annotations

import io
import random
from pathlib import Path

import orjson
import pytest

from airflow_provider_files.jsonl import (
    ResultFiles,
    ResultLineError,
    account_results,
    merge_result_rounds,
    read_custom_ids,
    validate_batch_file,
    write_in_input_order,
    write_input_subset,
)

from .support import failed, http_error, input_file, ok, request_line


def ids_of(data: bytes) -> list[str]:
    return [orjson.loads(raw)["custom_id"] for raw in data.splitlines()]


def lines_by_id(data: bytes) -> dict[str, bytes]:
    return {orjson.loads(raw)["custom_id"]: raw + b"\n" for raw in data.splitlines()}


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class StoragePath:
    """Pathlib-like with open() only, as ObjectStoragePath is."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, mode: str) -> io.BufferedIOBase:
        return self.path.open(mode)  # type: ignore[return-value]

    def __str__(self) -> str:
        return f"s3://bucket/{self.path.name}"


# --- resubmission subset ----------------------------------------------------------------------------


def test_subset_keeps_input_order_and_bytes(tmp_path: Path) -> None:
    ids = [f"req-{index}" for index in range(1, 11)]
    source = put(tmp_path / "in.jsonl", input_file(ids))
    written = write_input_subset(source, ["req-9", "req-2", "req-5"], tmp_path / "retry.jsonl")
    data = (tmp_path / "retry.jsonl").read_bytes()
    assert data == request_line("req-2") + request_line("req-5") + request_line("req-9")
    assert (written.lines, written.bytes) == (3, len(data))
    assert validate_batch_file(tmp_path / "retry.jsonl").valid


def test_subset_keeps_crlf_and_ends_the_last_line(tmp_path: Path) -> None:
    data = request_line("a").rstrip(b"\n") + b"\r\n" + request_line("b").rstrip(b"\n")
    out = io.BytesIO()
    write_input_subset(io.BytesIO(data), {"a", "b"}, out)
    assert out.getvalue() == request_line("a").rstrip(b"\n") + b"\r\n" + request_line("b")


def test_subset_to_a_storage_path_and_to_an_open_handle(tmp_path: Path) -> None:
    source = put(tmp_path / "in.jsonl", input_file(["a", "b", "c"]))
    write_input_subset(source, ["c"], StoragePath(tmp_path / "one.jsonl"))
    assert (tmp_path / "one.jsonl").read_bytes() == request_line("c")
    with (tmp_path / "two.jsonl").open("wb") as handle:
        write_input_subset(source, ["a"], handle)
        assert not handle.closed  # a handle passed in stays open
    assert (tmp_path / "two.jsonl").read_bytes() == request_line("a")


def test_subset_of_ids_not_in_the_input_is_an_error(tmp_path: Path) -> None:
    source = put(tmp_path / "in.jsonl", input_file(["a", "b"]))
    with pytest.raises(ValueError, match=r"2 custom_id\(s\) to resubmit are not in the input .*'x', 'y'"):
        write_input_subset(source, ["a", "x", "y"], io.BytesIO())


def test_subset_names_a_bad_input_line(tmp_path: Path) -> None:
    source = put(tmp_path / "in.jsonl", input_file(["a"]) + b'{"custom_id": null}\n')
    with pytest.raises(ResultLineError, match=r"in\.jsonl line 2: no custom_id"):
        write_input_subset(source, ["a"], io.BytesIO())


# --- merging rounds ---------------------------------------------------------------------------------


def three_rounds(tmp_path: Path) -> list[ResultFiles]:
    """a ok; b expired -> ok in round 2; c 500 -> 500 -> ok in round 3; d 400 (final); e missing -> ok."""
    return [
        ResultFiles(
            put(tmp_path / "r1-out.jsonl", ok("a") + http_error("c", 500) + http_error("d", 400, "bad")),
            put(tmp_path / "r1-err.jsonl", failed("b", "batch_expired")),
        ),
        ResultFiles(
            put(tmp_path / "r2-out.jsonl", ok("e") + http_error("c", 503) + ok("b")),
            None,
        ),
        ResultFiles(
            put(tmp_path / "r3-out.jsonl", ok("c", note="round 3")),
            put(tmp_path / "r3-err.jsonl", failed("a", "server_error")),  # "a" already succeeded
        ),
    ]


def test_merge_keeps_one_line_per_id_and_never_replaces_a_success(tmp_path: Path) -> None:
    written = merge_result_rounds(three_rounds(tmp_path), tmp_path / "final.jsonl", input_ids=list("abcdef"))
    data = (tmp_path / "final.jsonl").read_bytes()
    by_id = lines_by_id(data)
    assert sorted(by_id) == ["a", "b", "c", "d", "e"] and len(data.splitlines()) == 5
    assert by_id == {
        "a": ok("a"),
        "b": ok("b"),
        "c": ok("c", note="round 3"),
        "d": http_error("d", 400, "bad"),
        "e": ok("e"),
    }
    assert ids_of(data) == ["a", "d", "e", "b", "c"]  # results order: round by round, file order
    assert (written.lines, written.bytes) == (5, len(data))
    assert written.lines_per_round == (2, 2, 1)
    assert written.missing == ("f",)
    put(tmp_path / "in.jsonl", input_file(list("abcde")))
    summary = account_results(tmp_path / "in.jsonl", tmp_path / "final.jsonl")
    assert summary.complete and (summary.succeeded, summary.failed) == (4, 1)
    assert summary.non_retryable == ("d",)


def test_merge_in_input_order(tmp_path: Path) -> None:
    merge_result_rounds(
        three_rounds(tmp_path), tmp_path / "final.jsonl", input_ids=list("edcba"), order="input"
    )
    assert ids_of((tmp_path / "final.jsonl").read_bytes()) == ["e", "d", "c", "b", "a"]


def test_a_later_failure_replaces_an_earlier_failure(tmp_path: Path) -> None:
    rounds = [
        ResultFiles(None, put(tmp_path / "1.jsonl", failed("a", "batch_expired"))),
        ResultFiles(None, put(tmp_path / "2.jsonl", failed("a", "invalid_request"))),
    ]
    out = io.BytesIO()
    merge_result_rounds(rounds, out)
    assert out.getvalue() == failed("a", "invalid_request")


def test_merge_names_a_malformed_line(tmp_path: Path) -> None:
    rounds = [ResultFiles(put(tmp_path / "r1.jsonl", ok("a") + b'{"id": "batch_req_1"}\n'))]
    with pytest.raises(ResultLineError, match=r"r1\.jsonl line 2: custom_id is missing"):
        merge_result_rounds(rounds, io.BytesIO())


def test_merge_arguments_are_checked(tmp_path: Path) -> None:
    rounds = [ResultFiles(put(tmp_path / "r1.jsonl", ok("a")))]
    with pytest.raises(ValueError, match="needs input_ids"):
        merge_result_rounds(rounds, io.BytesIO(), order="input")
    with pytest.raises(ValueError, match="order must be"):
        merge_result_rounds(rounds, io.BytesIO(), order="random")  # type: ignore[arg-type]


# --- input order --------------------------------------------------------------------------------------


def test_results_in_input_order_with_unexpected_last_and_missing_reported(tmp_path: Path) -> None:
    ids = [f"req-{index}" for index in range(200)]
    shuffled = ids[:190]
    random.Random(7).shuffle(shuffled)
    output = b"".join(
        ok(custom_id) if index % 5 else http_error(custom_id, 500) for index, custom_id in enumerate(shuffled)
    )
    output += ok("stranger") + ok(shuffled[0])  # an id not in the input; a duplicate
    error = failed("req-195")
    files = ResultFiles(put(tmp_path / "out.jsonl", output), put(tmp_path / "err.jsonl", error))
    written = write_in_input_order(files, ids, StoragePath(tmp_path / "ordered.jsonl"))
    data = (tmp_path / "ordered.jsonl").read_bytes()
    expected = [*ids[:190], "req-195", "stranger"]
    assert ids_of(data) == expected
    assert written.missing == tuple(custom_id for custom_id in ids[190:] if custom_id != "req-195")
    by_id = lines_by_id(data)
    assert by_id[shuffled[0]] == ok(shuffled[0])  # the duplicate's success was kept
    assert by_id["req-195"] == failed("req-195")
    original = lines_by_id(output)
    assert all(by_id[custom_id] == original[custom_id] for custom_id in shuffled[1:])


def test_input_order_from_the_input_file(tmp_path: Path) -> None:
    put(tmp_path / "in.jsonl", input_file(["c", "a", "b"]))
    files = ResultFiles(put(tmp_path / "out.jsonl", ok("a") + ok("b") + ok("c")))
    out = io.BytesIO()
    write_in_input_order(files, read_custom_ids(tmp_path / "in.jsonl"), out)
    assert out.getvalue() == ok("c") + ok("a") + ok("b")


def test_merge_refuses_a_stream_that_cannot_seek() -> None:
    class OneWay(io.BytesIO):
        name = "https://files/output"

        def seekable(self) -> bool:
            return False

    with pytest.raises(TypeError, match="https://files/output cannot seek; merge result files from local"):
        merge_result_rounds([ResultFiles(OneWay(ok("a")))], io.BytesIO())


def test_merge_reads_lines_back_from_short_reading_handles(tmp_path: Path) -> None:
    class ShortReads(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            return super().read(min(size, 5) if size is not None and size >= 0 else 5)

    data = http_error("a", 500) + ok("b") + ok("a")
    out = io.BytesIO()
    merge_result_rounds([ResultFiles(ShortReads(data))], out, input_ids=["a", "b"], order="input")
    assert out.getvalue() == ok("a") + ok("b")
