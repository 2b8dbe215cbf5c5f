"""BatchCompleteSensor against the emulator over real HTTP: poke mode, the first poke of the
deferrable mode and its hand-over to the trigger, and the event read back on resume."""

from __future__ import annotations

import itertools
import time
from typing import Any

import openai
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.exceptions import (
    BatchCancelledError,
    BatchFailedError,
    BatchWaitError,
    BatchWaitTimeoutError,
)
from airflow_provider_files.sensors.batches import BatchCompleteSensor
from airflow_provider_files.triggers.batches import BatchCompleteTrigger
from tests.support import BAD_REQUESTS, CHAT_ENDPOINT, FilesConnection, chat_requests, start_batch

from .support import deferred_trigger

CONN_ID = "files_batch_sensor"


@pytest.fixture
def conn_id(emulator: EmulatorHandle, files_connection: FilesConnection) -> str:
    # No retry inside the client, so each 429 reaches the sensor.
    return files_connection(emulator, conn_id=CONN_ID, max_retries=0)


def sensor(conn_id: str, batch_id: Any, **kwargs: Any) -> BatchCompleteSensor:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval_s", 0.05)
    kwargs.setdefault("timeout", 15)
    return BatchCompleteSensor(task_id="wait", batch_id=batch_id, files_conn_id=conn_id, **kwargs)


def test_poke_mode_waits_for_a_batch_made_by_another_client(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=0.6)
    sdk = openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0)
    file_id = sdk.files.create(file=("requests.jsonl", chat_requests(3)), purpose="batch").id
    created = sdk.batches.create(input_file_id=file_id, endpoint=CHAT_ENDPOINT, completion_window="24h")
    result = sensor(conn_id, {"id": created.id, "object": "batch"}).execute({})
    assert (result["id"], result["status"]) == (created.id, "completed")
    assert result["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert result["output_file_id"] and result["input_file_id"] == file_id


def test_poke_mode_fails_with_the_batch_errors(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=0.3)
    batch_id = start_batch(conn_id, BAD_REQUESTS)
    with pytest.raises(BatchFailedError, match="line 2 invalid_json_line") as raised:
        sensor(conn_id, batch_id).execute({})
    assert raised.value.batch is not None and raised.value.batch["status"] == "failed"


def test_poke_mode_soft_fail_skips(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=2)
    batch_id = start_batch(conn_id, chat_requests(2))
    sensor(conn_id, batch_id).hook.cancel_batch(batch_id)
    with pytest.raises(AirflowSkipException):
        sensor(conn_id, batch_id, soft_fail=True).execute({})
    with pytest.raises(BatchCancelledError):
        sensor(conn_id, batch_id).execute({})
    assert sensor(conn_id, batch_id, target_statuses="cancelled").execute({})["status"] == "cancelled"


def test_poke_mode_honours_retry_after(emulator: EmulatorHandle, conn_id: str) -> None:
    retry_after_s = 0.8
    emulator.configure(batch_duration_s=0)
    batch_id = start_batch(conn_id, chat_requests(1))
    emulator.set_faults(f"retrieve_batch:429=x2,retry_after={retry_after_s}")
    assert sensor(conn_id, batch_id).execute({})["status"] == "completed"
    assert emulator.faults()["injected"] == {"429": 2}
    times = [
        r["time"] for r in emulator.request_log() if r["method"] == "GET" and r["path"].endswith(batch_id)
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    assert all(gap >= retry_after_s - 0.05 for gap in gaps), gaps  # not the 0.05 s poke interval


def test_poke_mode_gives_up_after_too_many_errors(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=0)
    batch_id = start_batch(conn_id, chat_requests(1))
    emulator.set_faults("retrieve_batch:503=x3")
    with pytest.raises(BatchWaitError, match="3 consecutive API errors"):
        sensor(conn_id, batch_id, max_consecutive_errors=2).execute({})


def test_deferrable_pokes_once_then_defers(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=100)
    batch_id = start_batch(conn_id, chat_requests(2))
    task = sensor(
        conn_id,
        batch_id,
        deferrable=True,
        poll_interval_s=5,
        max_poll_interval_s=30,
        timeout=600,
        target_statuses=["completed", "expired"],
    )
    trigger = deferred_trigger(task, timeout_s=600)
    assert isinstance(trigger, BatchCompleteTrigger)
    assert (trigger.batch_id, trigger.files_conn_id, trigger.targets) == (
        batch_id,
        conn_id,
        ["completed", "expired"],
    )
    assert (trigger.poll_interval_s, trigger.max_poll_interval_s) == (5, 30)
    gets = [r for r in emulator.request_log() if r["method"] == "GET" and r["path"].endswith(batch_id)]
    assert len(gets) == 1  # one poke, then the trigger


def test_deferrable_returns_at_once_when_done(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(batch_duration_s=0)
    batch_id = start_batch(conn_id, chat_requests(1))
    time.sleep(0.1)
    assert sensor(conn_id, batch_id, deferrable=True).execute({})["status"] == "completed"


def test_execute_complete_reads_the_event() -> None:
    task = sensor(CONN_ID, "batch_1")
    batch = {"id": "batch_1", "status": "completed"}
    assert task.execute_complete({}, {"status": "success", "batch": batch}) == batch
    with pytest.raises(BatchWaitTimeoutError):
        task.execute_complete({}, {"status": "timeout", "message": "deadline reached", "batch_id": "batch_1"})
    with pytest.raises(BatchWaitError):
        task.execute_complete({}, None)


@pytest.mark.parametrize("bad", ["", "  ", "{'id': 'batch_1'}", {"status": "completed"}, ["batch_1"]])
def test_bad_batch_id_fails_before_any_request(emulator: EmulatorHandle, conn_id: str, bad: Any) -> None:
    with pytest.raises(AirflowFailException, match="batch_id"):
        sensor(conn_id, bad).execute({})
    assert emulator.request_log() == []


def test_arguments_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BatchCompleteSensor.template_fields == ("batch_id", "files_conn_id")
    with pytest.raises(ValueError, match="targets must be batch statuses"):
        BatchCompleteSensor(task_id="wait", batch_id="batch_1", target_statuses=["done"])
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert BatchCompleteSensor(task_id="wait", batch_id="batch_1").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    default = BatchCompleteSensor(task_id="wait", batch_id="batch_1")
    assert default.deferrable is False and default.target_statuses == ["completed"]
    assert BatchCompleteSensor(task_id="w", batch_id="b", poll_interval_s=7).poke_interval == 7
