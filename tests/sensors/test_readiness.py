"""The Airflow-free readiness rule (api/readiness.py)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_files.api import FileObject
from airflow_provider_files.api.readiness import (
    FileTarget,
    ReadinessState,
    ReadinessTracker,
    evaluate_file,
    parse_file_targets,
)

NOW = 1_700_000_000.0


def file(status: str | None = "processed", **fields: Any) -> FileObject:
    return FileObject(id="file-1", bytes=fields.pop("bytes", 100), status=status, **fields)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("processed", ReadinessState.READY),
        ("PROCESSED", ReadinessState.READY),
        ("uploaded", ReadinessState.PENDING),
        ("pending", ReadinessState.PENDING),  # Azure
        ("running", ReadinessState.PENDING),  # Azure
        ("error", ReadinessState.FAILED),
        ("deleted", ReadinessState.FAILED),
        ("deleting", ReadinessState.FAILED),  # Azure
        ("something-new", ReadinessState.PENDING),
    ],
)
def test_status_decides(status: str, state: ReadinessState) -> None:
    assert evaluate_file("file-1", file(status), now=NOW).state is state


def test_error_reason_carries_status_details() -> None:
    verdict = evaluate_file("file-1", file("error", status_details="Line 7: invalid JSON"), now=NOW)
    assert verdict.is_failed
    assert "Line 7: invalid JSON" in verdict.reason


def test_error_without_details_says_so() -> None:
    verdict = evaluate_file("file-1", file("error"), now=NOW)
    assert "no status_details" in verdict.reason


def test_expired_file_fails_even_if_processed() -> None:
    verdict = evaluate_file("file-1", file("processed", expires_at=int(NOW) - 1), now=NOW)
    assert verdict.is_failed
    assert "expired" in verdict.reason
    assert evaluate_file("file-1", file("processed", expires_at=int(NOW) + 60), now=NOW).is_ready


@pytest.mark.parametrize(
    ("reported", "expected", "state"),
    [
        (100, 100, ReadinessState.READY),
        (100, None, ReadinessState.READY),
        (None, 100, ReadinessState.READY),
        (40, 100, ReadinessState.PENDING),
    ],
)
def test_no_status_ready_when_size_matches(
    reported: int | None, expected: int | None, state: ReadinessState
) -> None:
    verdict = evaluate_file("file-1", file(None, bytes=reported), now=NOW, expected_bytes=expected)
    assert verdict.state is state


def test_missing_pending_within_grace_failed_after() -> None:
    pending = evaluate_file("file-1", None, now=NOW, first_seen_missing_at=NOW - 59, not_found_grace_s=60)
    assert pending.state is ReadinessState.PENDING
    failed = evaluate_file("file-1", None, now=NOW, first_seen_missing_at=NOW - 60, not_found_grace_s=60)
    assert failed.is_failed
    assert "not found" in failed.reason
    assert evaluate_file("file-1", None, now=NOW, not_found_grace_s=0).is_failed


def test_tracker_remembers_first_missing_and_ready_files() -> None:
    tracker = ReadinessTracker([FileTarget("file-1"), FileTarget("file-2")], not_found_grace_s=10)
    assert tracker.record(FileTarget("file-1"), None, now=NOW).state is ReadinessState.PENDING
    assert tracker.record(FileTarget("file-2"), file(), now=NOW).is_ready
    assert [t.file_id for t in tracker.unresolved()] == ["file-1"]
    assert not tracker.done
    assert "1 of 2 file(s) ready" in tracker.pending_summary()
    # Still missing 10 s after the first 404: gone.
    assert tracker.record(FileTarget("file-1"), None, now=NOW + 10).is_failed


def test_tracker_default_missing_since_anchors_new_404s() -> None:
    tracker = ReadinessTracker([FileTarget("file-1")], not_found_grace_s=10, default_missing_since=NOW - 11)
    assert tracker.record(FileTarget("file-1"), None, now=NOW).is_failed


def test_tracker_done_keeps_target_order() -> None:
    tracker = ReadinessTracker([FileTarget("b"), FileTarget("a")])
    tracker.record(FileTarget("a"), FileObject(id="a", status="processed"), now=NOW)
    tracker.record(FileTarget("b"), FileObject(id="b", status="processed"), now=NOW)
    assert tracker.done
    assert [f.id for f in tracker.ready_files()] == ["b", "a"]


@pytest.mark.parametrize(
    ("value", "targets", "single"),
    [
        ("file-1", [FileTarget("file-1")], True),
        (" file-1 ", [FileTarget("file-1")], True),
        ({"id": "file-1", "bytes": 12}, [FileTarget("file-1", 12)], True),
        (["a", {"id": "b", "bytes": 3}], [FileTarget("a"), FileTarget("b", 3)], False),
        (("a",), [FileTarget("a")], False),
        (
            {"object": "upload", "id": "upload-1", "file": {"id": "file-9", "bytes": 5}},
            [FileTarget("file-9", 5)],
            True,
        ),
        (FileObject(id="file-1", bytes=7), [FileTarget("file-1", 7)], True),
    ],
)
def test_parse_file_targets(value: Any, targets: list[FileTarget], single: bool) -> None:
    assert parse_file_targets(value) == (targets, single)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (42, "got int"),
        (None, "got NoneType"),
        ([], "empty list"),
        ("", "empty string"),
        ({"name": "x"}, "without a non-empty string 'id'"),
        (["a", 3], "file_id[1]"),
        ("{'id': 'file-1'}", "XComArg"),
        ({"object": "upload", "id": "upload-1", "file": None}, "not completed"),
    ],
)
def test_parse_file_targets_rejects_with_clear_message(value: Any, words: str) -> None:
    with pytest.raises(TypeError, match="file_id") as info:
        parse_file_targets(value)
    assert words in str(info.value)
