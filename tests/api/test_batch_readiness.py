"""The batch rules the waits share: a whole batch judged, its outcome in words, its id from any shape."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_files.api import Batch
from airflow_provider_files.api.readiness import (
    MAX_REPORTED_BATCH_ERRORS,
    BatchReadiness,
    ReadinessState,
    batch_id_of,
    describe_batch_outcome,
)


def batch(status: str, **fields: Any) -> Batch:
    return Batch.from_dict({"id": "batch_1", "object": "batch", "status": status, **fields})


def line_error(line: int, code: str = "invalid_json_line") -> dict[str, Any]:
    return {"code": code, "message": f"Line {line}: bad", "param": None, "line": line}


def test_failed_batch_names_its_errors_and_counts() -> None:
    verdict = BatchReadiness("batch_1").judge(
        batch(
            "failed",
            errors={"object": "list", "data": [line_error(2), line_error(5, "duplicate_custom_id")]},
            request_counts={"total": 0, "completed": 0, "failed": 0},
        )
    )
    assert verdict.state is ReadinessState.FAILED and verdict.batch is not None
    assert verdict.reason == (
        "batch batch_1 ended failed, not completed: 2 error(s): line 2 invalid_json_line: Line 2: bad; "
        "line 5 duplicate_custom_id: Line 5: bad; 0 of 0 requests completed, 0 failed"
    )


def test_error_list_is_capped() -> None:
    many = batch("failed", errors={"data": [line_error(n) for n in range(1, 31)]})
    text = describe_batch_outcome(many)
    assert text.startswith("30 error(s): line 1 ")
    assert (
        f"line {MAX_REPORTED_BATCH_ERRORS} " in text and f"line {MAX_REPORTED_BATCH_ERRORS + 1} " not in text
    )
    assert text.endswith(f"; and {30 - MAX_REPORTED_BATCH_ERRORS} more")


def test_errors_without_line_or_code_and_plain_strings() -> None:
    odd = batch("failed", errors=["quota exceeded", {"message": "no line"}])
    assert describe_batch_outcome(odd) == "2 error(s): error: quota exceeded; error: no line"


@pytest.mark.parametrize(
    ("status", "state", "reason"),
    [
        (
            "in_progress",
            ReadinessState.PENDING,
            "batch batch_1 is in_progress (4 of 10 requests completed, 1 failed)",
        ),
        (
            "cancelling",
            ReadinessState.PENDING,
            "batch batch_1 is cancelling (4 of 10 requests completed, 1 failed)",
        ),
        (
            "completed",
            ReadinessState.READY,
            "batch batch_1 is completed (4 of 10 requests completed, 1 failed)",
        ),
        (
            "expired",
            ReadinessState.FAILED,
            "batch batch_1 ended expired, not completed: 4 of 10 requests completed, 1 failed",
        ),
    ],
)
def test_progress_and_final_statuses(status: str, state: ReadinessState, reason: str) -> None:
    verdict = BatchReadiness("batch_1").judge(
        batch(status, request_counts={"total": 10, "completed": 4, "failed": 1})
    )
    assert (verdict.state, verdict.reason, verdict.status) == (state, reason, status)


def test_no_counts_no_errors_says_only_the_status() -> None:
    verdict = BatchReadiness("batch_1").judge(batch("cancelled"))
    assert verdict.reason == "batch batch_1 ended cancelled, not completed"


@pytest.mark.parametrize(
    "value", ["batch_1", " batch_1 ", {"id": "batch_1", "object": "batch"}, batch("completed")]
)
def test_batch_id_of_accepts_an_id_a_dict_or_a_batch(value: Any) -> None:
    assert batch_id_of(value) == "batch_1"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "must be a batch id"),
        (None, "must be a batch id"),
        ({"status": "completed"}, "batch_id['id'] must be a batch id"),
        ("{'id': 'batch_1'}", "pass the upstream task's output"),
        ("batch 1", "is not a batch id"),
    ],
)
def test_batch_id_of_refuses_other_shapes(value: Any, words: str) -> None:
    with pytest.raises(TypeError, match=r"^batch_id") as raised:
        batch_id_of(value)
    assert words in str(raised.value)
