"""Validation in worker processes gives the serial pass's report: same errors, order, line
numbers, kept-error limit, warnings and md5, with errors spread over many ranges."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from airflow_provider_files.jsonl import (
    BatchLimits,
    ValidationReport,
    _parallel,
    validate_batch_file,
    validation,
)
from airflow_provider_files.jsonl._range_worker import CLEAN, DIRTY, TOO_LONG, RangeRules, check_range
from airflow_provider_files.jsonl.report import (
    BATCH_ENDPOINTS,
    MODEL_REQUIRED_ENDPOINTS,
    MODERATIONS_ENDPOINT,
)

from .support import CHAT, line, lines, request

# About three lines per range, so a file of a few hundred lines is split into about a hundred.
SMALL_RANGE_BYTES = 512
MODERATIONS = "/v1/moderations"


def moderation(index: int, **body: Any) -> bytes:
    return (
        orjson.dumps(
            {
                "custom_id": f"mod-{index}",
                "method": "POST",
                "url": MODERATIONS,
                "body": {"input": "x", **body},
            }
        )
        + b"\n"
    )


def with_lines(count: int, changes: dict[int, bytes]) -> bytes:
    """``count`` valid lines, where line ``n`` is ``changes[n]`` if given (with its newline)."""
    return b"".join(changes.get(index, line(index)) for index in range(1, count + 1))


CASES: dict[str, bytes] = {
    "valid": lines(300),
    "errors in many ranges": with_lines(
        300,
        {
            5: b'{"custom_id": "req-5", "method": "POST",\n',
            40: line(40, custom_id="req-3"),
            95: line(95, body={"model": "other-model", "messages": []}),
            130: b"\n",
            170: b'{"custom_id": "req-170", "x": "\xff\xfe"}\n',
            210: line(210, url="/v1/nope"),
            250: line(250, method="GET"),
            299: line(299, url="/v1/embeddings", body={"model": "gpt-4o-mini", "input": "x"}),
        },
    )[:-1],  # and no newline at the end
    "endpoint and model set late": with_lines(
        200,
        {
            1: b"not json\n",
            2: line(2, url="/v1/nope"),
            3: line(3, body={"model": 7, "messages": []}),
            4: line(4, body={"messages": []}),
            150: line(150, body={"messages": []}),
        },
    ),
    "a clean range clashing with the ids before it": with_lines(120, {60: line(60, custom_id="req-59")}),
    "a later range with another model": lines(100)
    + b"".join(line(index, body={"model": "gpt-4.1", "messages": []}) for index in range(101, 160)),
    "a later range with another endpoint": lines(100)
    + b"".join(
        line(index, url="/v1/embeddings", body={"model": "gpt-4o-mini", "input": "x"})
        for index in range(101, 140)
    ),
    "moderations": b"".join(moderation(index) for index in range(1, 150))
    + moderation(150, stream=True)
    + b"".join(moderation(index) for index in range(151, 200))
    + orjson.dumps({"custom_id": "m", "method": "POST", "url": MODERATIONS, "body": {}})
    + b"\n",
    "crlf": lines(150).replace(b"\n", b"\r\n"),
    "only blank lines": b"\n" * 2000,
    "not objects": b"".join(b"[1, 2]\n" if index % 7 == 0 else line(index) for index in range(1, 300)),
}


def _serial_report(path: Path, **kwargs: Any) -> ValidationReport:
    return validate_batch_file(path, workers=1, **kwargs)


def _as_compared(report: ValidationReport) -> dict[str, Any]:
    return {**report.to_dict(), "errors": [(e.line, e.rule, e.message, e.excerpt) for e in report.errors]}


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parallel, "RANGE_BYTES", SMALL_RANGE_BYTES)


@pytest.mark.parametrize("max_errors", [100, 3])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.usefixtures("small_ranges")
def test_parallel_report_equals_the_serial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, max_errors: int
) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(CASES[case])
    serial = _serial_report(path, max_errors=max_errors)
    monkeypatch.setattr(validation, "_validate_serially", _refuse)

    parallel = validate_batch_file(path, workers=2, max_errors=max_errors)

    assert _as_compared(parallel) == _as_compared(serial)
    assert parallel.md5 == hashlib.md5(CASES[case]).hexdigest()
    if case != "valid":
        assert serial.errors or serial.warnings, "each case but the first breaks a rule or warns"


def _refuse(*args: Any) -> ValidationReport:
    raise AssertionError("the parallel pass gave up and the file was read serially")


def test_errors_past_max_errors_are_counted_in_every_range(tmp_path: Path, small_ranges: None) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"".join(b"oops\n" if index % 10 == 0 else line(index) for index in range(1, 501)))

    report = validate_batch_file(path, workers=2, max_errors=4)

    assert [error.line for error in report.errors] == [10, 20, 30, 40]
    assert report.error_count == 50


@pytest.mark.parametrize(
    ("data", "limits"),
    [
        (b"\xef\xbb\xbf" + lines(50), BatchLimits()),
        (
            lines(50) + b'{"x": "' + b"a" * 5000 + b'"}\n' + lines(5, start=60),
            BatchLimits(max_line_bytes=2000),
        ),
        (lines(120), BatchLimits(max_lines=100)),
        (lines(120), BatchLimits(max_bytes=5000)),
    ],
    ids=["bom", "line over the cap", "line limit", "byte limit"],
)
def test_what_the_serial_pass_treats_specially_gives_its_report(
    tmp_path: Path, small_ranges: None, data: bytes, limits: BatchLimits
) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(data)

    assert _as_compared(validate_batch_file(path, workers=2, limits=limits)) == _as_compared(
        _serial_report(path, limits=limits)
    )
    assert _parallel.check_in_ranges(path, limits, 100, workers=2) is None


def test_large_local_files_go_parallel_by_default_and_streams_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_ranges: None
) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(lines(200))
    monkeypatch.setattr(validation, "PARALLEL_MIN_BYTES", 1000)
    monkeypatch.setattr(validation, "auto_workers", lambda: 2)
    used: list[int] = []
    real = validation.check_in_ranges

    def spy(*args: Any, **kwargs: Any) -> Any:
        used.append(kwargs["workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(validation, "check_in_ranges", spy)

    assert validate_batch_file(path).valid
    assert validate_batch_file(str(path)).valid
    with open(path, "rb") as stream:
        assert validate_batch_file(stream).valid
    assert validate_batch_file(path, workers=1).valid
    monkeypatch.setattr(validation, "PARALLEL_MIN_BYTES", 10**9)
    assert validate_batch_file(path).valid

    assert used == [2, 2]


def test_a_worker_that_cannot_start_means_a_serial_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(lines(20) + b"oops\n")
    monkeypatch.setattr(_parallel.sys, "executable", str(tmp_path / "no-such-python"))

    report = validate_batch_file(path, workers=2)

    assert [(error.line, error.rule) for error in report.errors] == [(21, "invalid_json")]


def test_negative_workers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        validate_batch_file(tmp_path / "x.jsonl", workers=-1)


def test_a_range_is_clean_only_when_every_line_passes_on_its_own() -> None:
    rules = RangeRules(BATCH_ENDPOINTS, 10_000, MODEL_REQUIRED_ENDPOINTS, MODERATIONS_ENDPOINT)

    assert check_range(lines(3), rules) == (CLEAN, 3, CHAT, "gpt-4o-mini", ["req-1", "req-2", "req-3"])
    assert check_range(lines(2) + line(3, body={"model": "x", "messages": []}), rules)[0] == DIRTY
    assert check_range(lines(2) + b"\n" + lines(1, start=4), rules)[:2] == (DIRTY, 4)
    assert check_range(line(1, body={"messages": []}), rules)[0] == DIRTY  # chat needs a model
    assert check_range(moderation(1) + moderation(2, stream=True), rules)[0] == DIRTY
    assert check_range(moderation(1) + moderation(2), rules)[:3] == (CLEAN, 2, MODERATIONS)
    assert check_range(lines(2)[:-1], rules)[:2] == (CLEAN, 2)  # no final newline
    short = rules._replace(max_line_bytes=100)
    assert check_range(orjson.dumps(request(1)) + b"\n" + b"x" * 200, short)[0] == TOO_LONG


def test_the_worker_runs_by_its_path_without_this_package(tmp_path: Path) -> None:
    """The worker imports only orjson and the standard library, so it starts fast."""
    import subprocess
    import sys

    from airflow_provider_files.jsonl import _range_worker

    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1], run_name='not_main'); "
        "print(sorted(m for m in sys.modules if m.startswith('airflow')))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe, _range_worker.__file__], capture_output=True, text=True, check=True
    )

    assert shown.stdout.strip() == "[]"


@pytest.mark.parametrize(("cores", "workers"), [(1, 0), (2, 0), (3, 2), (5, 4), (16, 4)])
def test_by_default_one_core_reads_and_hashes_and_the_others_parse(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.setattr(_parallel.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)

    assert _parallel.auto_workers() == workers
