"""UploadCompleteSensor (poke mode) and wait_for_files against the emulator over real HTTP."""

from __future__ import annotations

import itertools
import json

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.sensors.files import (
    FileProcessingFailedError,
    UploadCompleteSensor,
    wait_for_files,
)
from tests.support import FilesConnection

CONN_ID = "files_sensor_emulator"
LINE = {"custom_id": "r1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "x"}}


@pytest.fixture
def hook(emulator: EmulatorHandle, files_connection: FilesConnection) -> FilesHook:
    return FilesHook(files_connection(emulator, conn_id=CONN_ID))


def test_sensor_poke_mode_waits_for_processing(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.set_processing_delay(0.5)
    uploaded = hook.upload_file(json.dumps(LINE).encode() + b"\n", "batch", filename="one.jsonl")
    assert uploaded.status == "uploaded"
    sensor = UploadCompleteSensor(
        task_id="wait", file_id=uploaded.to_dict(), files_conn_id=CONN_ID, deferrable=False, poke_interval=0.1
    )
    result = sensor.execute({})
    assert result["id"] == uploaded.id
    assert result["status"] == "processed"


def test_wait_for_files_fails_on_error_file(emulator: EmulatorHandle, hook: FilesHook) -> None:
    emulator.configure(validate_batch=True)
    uploaded = hook.upload_file(b"{not json}\n", "batch", filename="bad.jsonl")
    with pytest.raises(FileProcessingFailedError, match=f"file {uploaded.id} failed processing: .*[Ll]ine 1"):
        wait_for_files(hook, [uploaded.id], timeout_s=15, poll_interval_s=0.1)


# -- Retry-After: every wait loop waits at least as long as the server asks -----------------------

RETRY_AFTER_S = 0.8


@pytest.fixture
def hook_without_client_retries(emulator: EmulatorHandle, files_connection: FilesConnection) -> FilesHook:
    """A connection whose client does not retry, so each 429 reaches the wait loop itself."""
    return FilesHook(files_connection(emulator, conn_id=CONN_ID, max_retries=0))


def gaps_between_checks(emulator: EmulatorHandle, file_id: str) -> list[float]:
    times = [r["time"] for r in emulator.request_log() if r["method"] == "GET" and file_id in r["path"]]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def upload_then_rate_limit(emulator: EmulatorHandle, hook: FilesHook) -> str:
    emulator.set_processing_delay(0)
    file_id = hook.upload_file(json.dumps(LINE).encode() + b"\n", "batch", filename="one.jsonl").id
    emulator.set_faults(f"retrieve_file:429=x2,retry_after={RETRY_AFTER_S}")
    return file_id


def test_poke_mode_honours_retry_after(
    emulator: EmulatorHandle, hook_without_client_retries: FilesHook
) -> None:
    file_id = upload_then_rate_limit(emulator, hook_without_client_retries)
    sensor = UploadCompleteSensor(
        task_id="wait", file_id=file_id, files_conn_id=CONN_ID, deferrable=False, poke_interval=0.05
    )
    assert sensor.execute({})["id"] == file_id
    assert emulator.faults()["injected"] == {"429": 2}
    gaps = gaps_between_checks(emulator, file_id)
    assert len(gaps) == 2
    assert all(gap >= RETRY_AFTER_S - 0.05 for gap in gaps), gaps  # not the 0.05 s poke interval


def test_blocking_wait_honours_retry_after(
    emulator: EmulatorHandle, hook_without_client_retries: FilesHook
) -> None:
    hook = hook_without_client_retries
    file_id = upload_then_rate_limit(emulator, hook)
    (ready,) = hook.wait_for_files(file_id, timeout_s=15, poll_interval_s=0.05, max_poll_interval_s=0.1)
    assert ready.id == file_id
    assert emulator.faults()["injected"] == {"429": 2}
    gaps = gaps_between_checks(emulator, file_id)
    assert len(gaps) == 2
    assert all(gap >= RETRY_AFTER_S - 0.05 for gap in gaps), gaps  # not the 0.05-0.1 s backoff


# -- log lines: what a user reads in the task log ---------------------------------------------------
# The task logger writes through structlog to stdout, not to the logging module.


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_sensor_logs_when_the_file_is_already_processed(
    emulator: EmulatorHandle, hook: FilesHook, capsys: pytest.CaptureFixture[str]
) -> None:
    uploaded = hook.upload_file(json.dumps(LINE).encode() + b"\n", "batch", filename="one.jsonl")
    wait_for_files(hook, [uploaded.id], timeout_s=15, poll_interval_s=0.1)  # processed now
    capsys.readouterr()
    sensor = UploadCompleteSensor(
        task_id="wait", file_id=uploaded.id, files_conn_id=CONN_ID, deferrable=False
    )
    sensor.execute({})
    ready = [line for line in log_lines(capsys) if "ready" in line]
    assert len(ready) == 1
    assert f"1 file(s) ready: file {uploaded.id} has status 'processed'" in ready[0]


def test_pending_lines_name_the_status_and_the_blocking_wait_ends_with_ready(
    emulator: EmulatorHandle, hook: FilesHook, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.set_processing_delay(0.5)
    uploaded = hook.upload_file(json.dumps(LINE).encode() + b"\n", "batch", filename="one.jsonl")
    capsys.readouterr()
    wait_for_files(hook, [uploaded.id], timeout_s=15, poll_interval_s=0.1)
    lines = [line for line in log_lines(capsys) if uploaded.id in line]
    pending = (
        f"0 of 1 file(s) ready; waiting for: file {uploaded.id} has status 'uploaded', not 'processed' yet"
    )
    assert pending in lines[0]
    assert not any(" is uploaded" in line for line in lines)
    assert f"Done waiting for file(s) {uploaded.id}: ready after " in lines[-1]
    assert "check(s) in" in lines[-1]
