"""BatchCompleteTrigger against the emulator over real HTTP, and its events read back by the task."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from airflow_provider_files.api import RetryPolicy
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.exceptions import (
    BatchCancelledError,
    BatchEndedError,
    BatchExpiredError,
    BatchFailedError,
    BatchWaitError,
    BatchWaitTimeoutError,
)
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.triggers import batches as trigger_module
from airflow_provider_files.triggers.batches import BatchCompleteTrigger
from airflow_provider_files.triggers.events import batch_from_event
from tests.support import BAD_REQUESTS, FilesConnection, chat_requests, start_batch

CONN_ID = "files_batch_trigger"


@pytest.fixture
def conn_id(
    emulator: EmulatorHandle, files_connection: FilesConnection, monkeypatch: pytest.MonkeyPatch
) -> str:
    # No retry inside the client: every error reaches the trigger's own poll loop.
    monkeypatch.setattr(trigger_module, "TRIGGER_RETRY_POLICY", RetryPolicy(max_attempts=1))
    return files_connection(emulator, conn_id=CONN_ID)


def trigger(batch_id: str, conn_id: str, *, timeout_s: float = 15, **kwargs: Any) -> BatchCompleteTrigger:
    kwargs.setdefault("poll_interval_s", 0.05)
    kwargs.setdefault("max_poll_interval_s", 0.1)
    return BatchCompleteTrigger(batch_id, conn_id, deadline=time.time() + timeout_s, **kwargs)


async def first_event(batch_trigger: BatchCompleteTrigger) -> dict[str, Any]:
    events = [event.payload async for event in batch_trigger.run()]
    assert len(events) == 1
    return dict(events[0])


def batch_gets(emulator: EmulatorHandle, batch_id: str) -> list[dict[str, Any]]:
    return [r for r in emulator.request_log() if r["method"] == "GET" and r["path"].endswith(batch_id)]


@pytest.mark.asyncio
async def test_waits_until_completed(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=0.6)
    batch_id = start_batch(conn_id, chat_requests(4))
    event = await first_event(trigger(batch_id, conn_id))
    assert event["status"] == "success"
    batch = batch_from_event(event, task_id="wait")
    assert batch["id"] == batch_id and batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    assert batch["output_file_id"]
    assert len(batch_gets(emulator, batch_id)) >= 2  # seen running before completed


@pytest.mark.asyncio
async def test_failed_batch_names_the_bad_lines(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=0.3)
    batch_id = start_batch(conn_id, BAD_REQUESTS)
    event = await first_event(trigger(batch_id, conn_id))
    assert (event["status"], event["reason"], event["batch_id"]) == ("error", "batch_ended", batch_id)
    with pytest.raises(BatchFailedError) as raised:
        batch_from_event(event, task_id="wait")
    message = str(raised.value)
    assert f"batch {batch_id} ended failed, not completed" in message
    assert "line 2 invalid_json_line" in message and "line 3 duplicate_custom_id" in message
    assert raised.value.batch is not None and raised.value.batch["status"] == "failed"


@pytest.mark.asyncio
async def test_cancelling_is_awaited_until_cancelled(emulator: EmulatorHandle, conn_id: str) -> None:
    # "cancelling" lasts 10% of the batch's 100 s, on the emulator's clock: it ends only when the
    # test moves the clock, after the trigger has seen it, however slowly the machine runs.
    emulator.configure(batch_duration_s=100)
    batch_id = start_batch(conn_id, chat_requests(3))
    assert FilesHook(conn_id).cancel_batch(batch_id).status == "cancelling"
    waiting = asyncio.ensure_future(first_event(trigger(batch_id, conn_id, timeout_s=60)))
    seen_until = time.monotonic() + 30
    while not batch_gets(emulator, batch_id):  # the trigger's first poll, which finds "cancelling"
        assert time.monotonic() < seen_until, "the trigger never polled the batch"
        assert not waiting.done(), await waiting
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # a few more polls: still cancelling, still waiting
    assert not waiting.done()
    emulator.advance_clock(10)
    event = await waiting
    with pytest.raises(BatchCancelledError, match=f"batch {batch_id} ended cancelled.*of 3 requests"):
        batch_from_event(event, task_id="wait")
    assert len(batch_gets(emulator, batch_id)) >= 2  # it polled through "cancelling"


@pytest.mark.asyncio
async def test_cancelled_as_a_target_is_success(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=2)
    batch_id = start_batch(conn_id, chat_requests(2))
    FilesHook(conn_id).cancel_batch(batch_id)
    event = await first_event(trigger(batch_id, conn_id, targets=["completed", "cancelled"]))
    assert batch_from_event(event, task_id="wait")["status"] == "cancelled"


@pytest.mark.asyncio
async def test_expired_batch_reports_request_counts(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=100, batch_expire_after_s=50)
    batch_id = start_batch(conn_id, chat_requests(10))
    waiting = asyncio.ensure_future(first_event(trigger(batch_id, conn_id)))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    emulator.advance_clock(50)
    event = await waiting
    with pytest.raises(BatchExpiredError, match=r"ended expired.*5 of 10 requests completed, 5 failed"):
        batch_from_event(event, task_id="wait")


@pytest.mark.asyncio
async def test_deadline_gives_a_timeout_event_with_the_last_batch(
    emulator: EmulatorHandle, conn_id: str
) -> None:
    emulator.configure(batch_duration_s=100)
    batch_id = start_batch(conn_id, chat_requests(2))
    event = await first_event(trigger(batch_id, conn_id, timeout_s=0.5))
    assert event["status"] == "timeout" and event["batch_id"] == batch_id
    assert event["batch"]["status"] in ("validating", "in_progress")
    with pytest.raises(BatchWaitTimeoutError, match=f"deadline reached; batch {batch_id} is"):
        batch_from_event(event, task_id="wait")


@pytest.mark.asyncio
async def test_honours_retry_after(emulator: EmulatorHandle, conn_id: str) -> None:
    retry_after_s = 0.8
    emulator.configure(batch_duration_s=0)
    batch_id = start_batch(conn_id, chat_requests(1))
    emulator.set_faults(f"retrieve_batch:429=x2,retry_after={retry_after_s}")
    event = await first_event(trigger(batch_id, conn_id))
    assert batch_from_event(event, task_id="wait")["status"] == "completed"
    assert emulator.faults()["injected"] == {"429": 2}
    times = [r["time"] for r in batch_gets(emulator, batch_id)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    assert all(gap >= retry_after_s - 0.05 for gap in gaps), gaps  # not the 0.05-0.1 s backoff


@pytest.mark.asyncio
async def test_rides_out_server_errors_and_gives_up_on_an_unknown_batch(
    emulator: EmulatorHandle, conn_id: str
) -> None:
    emulator.configure(batch_duration_s=0)
    batch_id = start_batch(conn_id, chat_requests(1))
    emulator.set_faults("retrieve_batch:503=x2,retrieve_batch:drop=x1")
    event = await first_event(trigger(batch_id, conn_id, max_consecutive_errors=3))
    assert event["status"] == "success"
    assert emulator.faults()["injected"] == {"503": 2, "drop": 1}
    missing = await first_event(trigger("batch_missing", conn_id))
    assert (missing["status"], missing["reason"]) == ("error", "api_error")
    with pytest.raises(BatchWaitError, match="giving up on batch batch_missing"):
        batch_from_event(missing, task_id="wait")


def test_serialize_round_trip_keeps_the_absolute_deadline() -> None:
    original = BatchCompleteTrigger(
        "batch_1", "conn", deadline=1_900_000_000.5, targets={"cancelled", "completed"}, poll_interval_s=2
    )
    path, kwargs = original.serialize()
    module, name = path.rsplit(".", 1)
    assert (module, name) == ("airflow_provider_files.triggers.batches", "BatchCompleteTrigger")
    rebuilt = BatchCompleteTrigger(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs["deadline"] == 1_900_000_000.5 and kwargs["targets"] == ["cancelled", "completed"]


@pytest.mark.parametrize(
    "bad", [{"batch_id": ""}, {"targets": "completed"}, {"targets": ["done"]}, {"poll_interval_s": 0}]
)
def test_refuses_bad_arguments(bad: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"batch_id": "batch_1", "files_conn_id": "c", "deadline": 1.0, **bad}
    with pytest.raises(ValueError):
        BatchCompleteTrigger(**kwargs)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, BatchWaitError),
        ({"status": "odd"}, BatchWaitError),
        ({"status": "success", "batch": None}, BatchWaitError),
        ({"status": "error", "reason": "api_error", "message": "m"}, BatchWaitError),
        (
            {"status": "error", "reason": "batch_ended", "message": "m", "batch": {"status": "completed"}},
            BatchEndedError,
        ),
        ({"status": "timeout", "message": "m"}, BatchWaitTimeoutError),
    ],
)
def test_malformed_or_failing_events_raise(event: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        batch_from_event(event, task_id="wait")
    assert type(raised.value) is error
