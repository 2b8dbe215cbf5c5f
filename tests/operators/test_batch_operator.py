"""BatchOperator over real HTTP against the emulator: one batch per task run, waits, failures, cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_files.api import ConfigurationError
from airflow_provider_files.batches import RUN_KEY_METADATA_KEY, BatchInputError, run_key
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.exceptions import (
    BatchCancelledError,
    BatchExpiredError,
    BatchFailedError,
    BatchWaitError,
    BatchWaitTimeoutError,
)
from airflow_provider_files.operators.batches import BatchOperator
from airflow_provider_files.triggers.batches import BatchCompleteTrigger
from tests.batches.support import CHAT, MODEL, batch_statuses, requests_jsonl
from tests.support import FilesConnection, load_scaled_s

from .batch_support import run_deferrable, upload
from .support import task_context


@pytest.fixture(autouse=True)
def checkpoint_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test remembers its batches in its own folder (subprocesses inherit the setting)."""
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER", str(folder))
    return folder


def operator(file: Any, **kwargs: Any) -> BatchOperator:
    kwargs.setdefault("task_id", "batch")
    kwargs.setdefault("poll_interval_s", 0.05)
    kwargs.setdefault("deferrable", True)
    return BatchOperator(input_file_id=file, **kwargs)


def created(emulator: EmulatorHandle) -> int:
    return int(emulator.stats()["batches_created"])


def test_deferrable_batch_completes_and_returns_the_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.5)
    file_id = upload(files_conn, count=4)
    result = run_deferrable(
        operator(file_id, endpoint=CHAT, metadata={"team": "search"}), task_context("batch")
    )
    assert result["status"] == "completed"
    assert result["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    assert result["output_file_id"]
    assert result["metadata"] == {
        "team": "search",
        RUN_KEY_METADATA_KEY: run_key("dag", "batch", "manual__1", -1),
    }
    json.dumps(result)  # JSON-safe for XCom
    assert created(files_conn) == 1


def test_endpoint_comes_from_the_upload_operators_file_dict(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.3)
    file = {"id": upload(files_conn), "status": "processed", "endpoint": CHAT, "model": MODEL}
    assert run_deferrable(operator(file), task_context("batch"))["endpoint"] == CHAT


def test_a_bad_input_file_fails_with_its_line_errors(files_conn: EmulatorHandle) -> None:
    lines = requests_jsonl(3).splitlines(keepends=True)
    data = lines[0] + b"{not json\n" + lines[1] + lines[0]  # a bad line 2 and a duplicate custom_id on line 4
    file_id = upload(files_conn, data)
    with pytest.raises(BatchFailedError, match=r"ended 'failed'|failed") as failure:
        run_deferrable(operator(file_id, endpoint=CHAT), task_context("batch"))
    message = str(failure.value)
    assert "line 2" in message and "line 4" in message
    assert failure.value.batch is not None and failure.value.batch["status"] == "failed"


def test_an_expired_batch_fails_with_a_clear_message(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100, batch_expire_after_s=0.3)
    file_id = upload(files_conn)
    with pytest.raises(BatchExpiredError, match="expired"):  # the clock jumps past the input check
        run_deferrable(
            operator(file_id, endpoint=CHAT),
            task_context("batch"),
            on_defer=lambda _d: files_conn.advance_clock(15),
        )


def test_a_wait_that_times_out_cancels_the_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100)
    file_id = upload(files_conn)
    with pytest.raises(BatchWaitTimeoutError):
        run_deferrable(operator(file_id, endpoint=CHAT, timeout_s=0.5), task_context("batch"))
    assert [b["status"] for b in files_conn.stats()["batches"].values()] in (["cancelling"], ["cancelled"])


def test_cancel_on_timeout_false_leaves_the_batch_running(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100)
    file_id = upload(files_conn)
    with pytest.raises(BatchWaitTimeoutError):
        run_deferrable(
            operator(file_id, endpoint=CHAT, timeout_s=0.5, cancel_on_timeout=False), task_context("batch")
        )
    assert [b["status"] for b in files_conn.stats()["batches"].values()] in (["validating"], ["in_progress"])


def test_on_kill_cancels_the_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100)
    task = operator(upload(files_conn), endpoint=CHAT)
    with pytest.raises(TaskDeferred):
        task.execute(task_context("batch"))
    task.on_kill()
    assert [b["status"] for b in files_conn.stats()["batches"].values()] in (["cancelling"], ["cancelled"])


def test_a_retry_after_a_crash_during_the_wait_resumes_the_same_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.8)
    file_id = upload(files_conn)
    with pytest.raises(TaskDeferred) as first:  # try 1 created the batch, then its worker died
        operator(file_id, endpoint=CHAT).execute(task_context("batch"))
    batch_id = first.value.trigger.batch_id
    seen: list[str] = []
    result = run_deferrable(
        operator(file_id, endpoint=CHAT),
        task_context("batch"),
        on_defer=lambda d: seen.append(d.trigger.batch_id),
    )
    assert seen == [batch_id] and result["id"] == batch_id
    assert result["status"] == "completed"
    assert created(files_conn) == 1


TRY_IN_A_PROCESS = """
import sys
from types import SimpleNamespace
from airflow_provider_files.operators.batches import BatchOperator
ti = SimpleNamespace(dag_id="dag", task_id="batch", run_id="manual__1", map_index=-1, try_number=1)
BatchOperator(task_id="batch", input_file_id=sys.argv[1], endpoint=sys.argv[2], deferrable=True).execute(
    {"ti": ti, "run_id": "manual__1"}
)
"""


def test_a_lost_answer_to_create_then_a_task_retry_makes_one_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.3)
    file_id = upload(files_conn)
    # Try 1 runs in its own process: the batch is created, its answer held back, and the worker
    # is killed before the answer arrives (a lost answer, and no chance to look for the batch).
    files_conn.set_faults("create_batch:latency_ms=60000")
    try_1 = subprocess.Popen([sys.executable, "-c", TRY_IN_A_PROCESS, file_id, CHAT])
    try:
        deadline = time.monotonic() + load_scaled_s(60)  # try 1 imports Airflow first
        while created(files_conn) == 0:
            assert try_1.poll() is None, "try 1 ended before it created the batch"
            assert time.monotonic() < deadline, "try 1 never created the batch"
            time.sleep(0.05)
    finally:
        try_1.kill()
        try_1.wait()
    files_conn.clear_faults()
    result = run_deferrable(operator(file_id, endpoint=CHAT), task_context("batch"))  # try 2
    assert result["status"] == "completed"
    assert created(files_conn) == 1


def test_token_limit_refusal_waits_and_creates_again(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.3, batch_enqueued_token_limit=1)
    file_id = upload(files_conn)
    triggers: list[str] = []

    def on_defer(deferred: TaskDeferred) -> None:
        triggers.append(type(deferred.trigger).__name__)
        if not isinstance(deferred.trigger, BatchCompleteTrigger):
            files_conn.configure(batch_enqueued_token_limit=None)  # the queue drained during the wait

    task = operator(file_id, endpoint=CHAT, token_limit_wait_s=0.2)
    result = run_deferrable(task, task_context("batch"), on_defer=on_defer)
    assert result["status"] == "completed"
    assert triggers == ["BatchCompleteTrigger", "TimeDeltaTrigger", "BatchCompleteTrigger"]
    assert sorted(b["status"] for b in files_conn.stats()["batches"].values()) == ["completed", "failed"]


def test_token_limit_waits_are_bounded(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.3, batch_enqueued_token_limit=1)
    task = operator(upload(files_conn), endpoint=CHAT, token_limit_wait_s=0.1, token_limit_max_wait_s=0.15)
    with pytest.raises(BatchFailedError, match="token_limit_exceeded"):
        run_deferrable(task, task_context("batch"))
    assert created(files_conn) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"endpoint": "/v1/unknown"}, ConfigurationError, "endpoint '/v1/unknown' is not accepted"),
        (
            {"endpoint": CHAT, "completion_window": "1h"},
            ConfigurationError,
            "completion_window must be one of 24h",
        ),
        ({}, BatchInputError, "no endpoint for file"),
    ],
)
def test_bad_arguments_fail_clearly_and_create_nothing(
    files_conn: EmulatorHandle, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    file_id = upload(files_conn)
    with pytest.raises(error, match=message):
        run_deferrable(operator(file_id, **kwargs), task_context("batch"))
    assert created(files_conn) == 0


def test_a_file_not_processed_or_of_another_purpose_is_refused(files_conn: EmulatorHandle) -> None:
    other = upload(files_conn, purpose="user_data")
    with pytest.raises(BatchInputError, match="purpose 'user_data'"):
        run_deferrable(operator(other, endpoint=CHAT), task_context("batch"))
    files_conn.set_processing_delay(60)
    pending = upload(files_conn)
    with pytest.raises(BatchInputError, match="not 'processed'"):
        run_deferrable(operator(pending, endpoint=CHAT), task_context("batch"))
    assert created(files_conn) == 0


def test_without_waiting_the_created_batch_is_returned(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100)
    started = time.monotonic()
    result = operator(upload(files_conn), endpoint=CHAT, wait_for_completion=False).execute(
        task_context("batch")
    )
    assert result["status"] == "validating" and time.monotonic() - started < 5
    assert created(files_conn) == 1


def test_mapped_indexes_get_their_own_batches(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100)
    file_id = upload(files_conn)
    ids = {
        operator(file_id, endpoint=CHAT, wait_for_completion=False).execute(
            task_context("batch", map_index=i)
        )["id"]
        for i in (0, 1, 0)
    }
    assert len(ids) == 2 and created(files_conn) == 2


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="timeout_s must be a positive number"):
        BatchOperator(task_id="b", input_file_id="f", timeout_s=0)
    with pytest.raises(ConfigurationError, match="output_expires_after_s"):
        BatchOperator(task_id="b", input_file_id="f", output_expires_after_s=10)
    assert BatchOperator(task_id="b", input_file_id="f").output_expires_after_s == 2592000


# -- the blocking wait -----------------------------------------------------------------------------


def test_blocking_batch_completes_and_returns_the_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.5)
    result = operator(upload(files_conn, count=4), endpoint=CHAT, deferrable=False).execute(
        task_context("batch")
    )
    assert result["status"] == "completed"
    assert result["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    assert created(files_conn) == 1


def test_blocking_bad_input_file_fails_with_its_line_errors(files_conn: EmulatorHandle) -> None:
    lines = requests_jsonl(3).splitlines(keepends=True)
    file_id = upload(files_conn, lines[0] + b"{not json\n" + lines[1])
    with pytest.raises(BatchFailedError) as failure:
        operator(file_id, endpoint=CHAT, deferrable=False).execute(task_context("batch"))
    assert "line 2" in str(failure.value)
    assert created(files_conn) == 1


def test_blocking_wait_that_times_out_cancels_the_batch(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=100)
    with pytest.raises(BatchWaitTimeoutError):
        operator(upload(files_conn), endpoint=CHAT, deferrable=False, timeout_s=0.5).execute(
            task_context("batch")
        )
    assert [b["status"] for b in files_conn.stats()["batches"].values()] in (["cancelling"], ["cancelled"])


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, outcome


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_blocking_on_kill_cancels_the_batch_and_the_wait_ends(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=10)  # long enough to kill it, with a short "cancelling"
    task = operator(upload(files_conn), endpoint=CHAT, deferrable=False)
    worker, outcome = in_thread(lambda: task.execute(task_context("batch")))
    wait_until(lambda: created(files_conn) == 1, "the batch")
    # on_kill cancels the batch the task knows: wait until the create's answer reached it
    wait_until(lambda: task._batch_id is not None, "the task to hold the batch id")
    task.on_kill()
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), BatchCancelledError)
    assert [b["status"] for b in files_conn.stats()["batches"].values()] == ["cancelled"]


def test_blocking_retry_after_a_crash_during_the_wait_resumes_the_same_batch(
    files_conn: EmulatorHandle, files_connection: FilesConnection
) -> None:
    files_connection(files_conn, max_retries=0)
    files_conn.configure(batch_duration_s=0.5)
    file_id = upload(files_conn)
    files_conn.set_faults("retrieve_batch:quota=x1")  # the wait fails on an error polls cannot ride out
    with pytest.raises(BatchWaitError):
        operator(file_id, endpoint=CHAT, deferrable=False).execute(task_context("batch"))  # try 1
    first = list(files_conn.stats()["batches"])
    result = operator(file_id, endpoint=CHAT, deferrable=False).execute(task_context("batch"))  # try 2
    assert result["status"] == "completed" and [result["id"]] == first
    assert created(files_conn) == 1


def test_blocking_token_limit_refusal_waits_and_creates_again(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.3, batch_enqueued_token_limit=1)
    task = operator(upload(files_conn), endpoint=CHAT, deferrable=False, token_limit_wait_s=1.0)
    worker, outcome = in_thread(lambda: task.execute(task_context("batch")))
    wait_until(lambda: "failed" in batch_statuses(files_conn), "the refusal")
    files_conn.configure(batch_enqueued_token_limit=None)  # the queue drains during the wait
    worker.join(60)
    assert outcome.get("result", {}).get("status") == "completed", outcome
    assert sorted(batch_statuses(files_conn)) == ["completed", "failed"]


def test_a_retry_after_the_batch_completed_returns_it_without_deferring(files_conn: EmulatorHandle) -> None:
    files_conn.configure(batch_duration_s=0.3)
    file_id = upload(files_conn)
    first = run_deferrable(operator(file_id, endpoint=CHAT), task_context("batch"))
    again = operator(file_id, endpoint=CHAT).execute(task_context("batch"))  # no TaskDeferred
    assert again["id"] == first["id"] and again["status"] == "completed"
    assert created(files_conn) == 1


def test_the_batch_of_a_task_run_is_remembered_for_its_retries(
    files_conn: EmulatorHandle, checkpoint_folder: Path
) -> None:
    files_conn.configure(batch_duration_s=100)
    result = operator(upload(files_conn), endpoint=CHAT, wait_for_completion=False).execute(
        task_context("batch")
    )
    (remembered,) = checkpoint_folder.rglob("*.batch.json")
    assert json.loads(remembered.read_text())["batch_id"] == result["id"]


def test_the_api_key_appears_in_no_result_log_or_error(
    files_conn: EmulatorHandle,
    files_connection: FilesConnection,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-batch-secret-5f1e0c9a7b"
    files_connection(files_conn, password=key)
    files_conn.configure(batch_duration_s=0.3)
    files_conn.set_faults("create_batch:500=x1,create_batch:drop_after=x1,retrieve_batch:503=x1")
    result = run_deferrable(operator(upload(files_conn), endpoint=CHAT), task_context("batch"))
    lines = requests_jsonl(2).splitlines(keepends=True)
    with pytest.raises(BatchFailedError) as failure:
        operator(upload(files_conn, lines[0] + b"{bad\n"), endpoint=CHAT, deferrable=False).execute(
            task_context("batch", run_id="manual__2")
        )
    captured = capfd.readouterr()
    text = (
        json.dumps(result)
        + str(failure.value)
        + repr(failure.value)
        + captured.out
        + captured.err
        + caplog.text
    )
    assert "lost" in text  # the faults were logged ...
    assert key not in text  # ... without the key
