"""FilesHook.wait_for_batch against the emulator over real HTTP: each way a batch can end."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.exceptions import (
    BatchCancelledError,
    BatchExpiredError,
    BatchFailedError,
    BatchWaitError,
    BatchWaitTimeoutError,
)
from airflow_provider_files.hooks.files import FilesHook
from tests.support import BAD_REQUESTS, FilesConnection, chat_request_line, chat_requests, start_batch

CONN_ID = "files_wait_batch"
FAST: dict[str, Any] = {"poll_interval_s": 0.05, "max_poll_interval_s": 0.1}


@pytest.fixture
def hook(emulator: EmulatorHandle, files_connection: FilesConnection) -> FilesHook:
    # No retry inside the client, so each 429 reaches the wait loop itself.
    return FilesHook(files_connection(emulator, conn_id=CONN_ID, max_retries=0))


def test_waits_until_completed_and_takes_a_batch_dict(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(batch_duration_s=1)
    batch_id = start_batch(CONN_ID, chat_requests(5))
    created = hook.get_batch(batch_id)
    assert created.status in ("validating", "in_progress")
    done = hook.wait_for_batch(created.to_dict(), timeout_s=15, **FAST)
    assert (done.id, done.status) == (batch_id, "completed")
    assert done.request_counts is not None and done.request_counts.completed == 5
    assert done.output_file_id is not None


def test_failed_batch_raises_with_its_line_errors(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(batch_duration_s=0.3)
    batch_id = start_batch(CONN_ID, BAD_REQUESTS)
    with pytest.raises(BatchFailedError) as raised:
        hook.wait_for_batch(batch_id, timeout_s=15, **FAST)
    message = str(raised.value)
    assert message.startswith(f"batch {batch_id} ended failed, not completed: 2 error(s): ")
    assert "line 2 invalid_json_line: Line 2:" in message
    assert "line 3 duplicate_custom_id: Line 3:" in message
    assert raised.value.batch is not None and raised.value.batch["id"] == batch_id


def test_many_errors_are_capped_in_the_message(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(batch_duration_s=0.3)
    batch_id = start_batch(CONN_ID, chat_request_line("a") + b"{oops\n" * 25)
    with pytest.raises(BatchFailedError, match=r"25 error\(s\): line 2 .*line 11 .*; and 15 more") as raised:
        hook.wait_for_batch(batch_id, timeout_s=15, **FAST)
    assert "line 12 " not in str(raised.value)


def test_cancelled_batch_is_awaited_past_cancelling(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(batch_duration_s=3)
    batch_id = start_batch(CONN_ID, chat_requests(4))
    assert hook.cancel_batch(batch_id).status == "cancelling"
    with pytest.raises(
        BatchCancelledError, match=f"batch {batch_id} ended cancelled.* of 4 requests completed"
    ):
        hook.wait_for_batch(batch_id, timeout_s=15, **FAST)
    assert hook.wait_for_batch(batch_id, targets={"cancelled"}, timeout_s=1, **FAST).status == "cancelled"


def test_expired_batch_raises_with_request_counts(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(batch_duration_s=100, batch_expire_after_s=50)
    batch_id = start_batch(CONN_ID, chat_requests(10))
    timer = threading.Timer(0.3, emulator.advance_clock, args=(50,))
    timer.start()
    try:
        with pytest.raises(BatchExpiredError, match=r"ended expired.*5 of 10 requests completed, 5 failed"):
            hook.wait_for_batch(batch_id, timeout_s=15, **FAST)
    finally:
        timer.join()


def test_timeout_cancels_when_asked(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(batch_duration_s=100)
    batch_id = start_batch(CONN_ID, chat_requests(2))
    with pytest.raises(
        BatchWaitTimeoutError, match=f"batch {batch_id} not completed after 0.3s; .*is validating"
    ):
        hook.wait_for_batch(batch_id, timeout_s=0.3, **FAST)
    assert hook.get_batch(batch_id).status == "validating"  # left running
    with pytest.raises(BatchWaitTimeoutError, match=r"cancel requested \(the batch is cancelling\)"):
        hook.wait_for_batch(batch_id, timeout_s=0.3, cancel_on_timeout=True, **FAST)
    assert hook.get_batch(batch_id).status in ("cancelling", "cancelled")


def test_blocking_wait_honours_retry_after(emulator: EmulatorHandle, hook: FilesHook) -> None:
    retry_after_s = 0.8
    emulator.configure(batch_duration_s=0)
    batch_id = start_batch(CONN_ID, chat_requests(1))
    emulator.set_faults(f"retrieve_batch:429=x2,retry_after={retry_after_s}")
    assert hook.wait_for_batch(batch_id, timeout_s=15, **FAST).status == "completed"
    assert emulator.faults()["injected"] == {"429": 2}
    times = [
        r["time"] for r in emulator.request_log() if r["method"] == "GET" and r["path"].endswith(batch_id)
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    assert all(gap >= retry_after_s - 0.05 for gap in gaps), gaps  # not the 0.05-0.1 s backoff


def test_unknown_batch_and_bad_ids_fail_clearly(emulator: EmulatorHandle, hook: FilesHook) -> None:
    with pytest.raises(BatchWaitError, match="could not check batch batch_missing"):
        hook.wait_for_batch("batch_missing", timeout_s=5, **FAST)
    for bad in ("", "{'id': 'batch_1'}", {"object": "batch"}, 7):
        with pytest.raises(AirflowFailException, match="batch"):
            hook.wait_for_batch(bad, timeout_s=5, **FAST)
    assert emulator.request_log()[-1]["path"].endswith("batch_missing")  # bad ids sent nothing
