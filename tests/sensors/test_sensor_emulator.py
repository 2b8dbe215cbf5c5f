"""UploadCompleteSensor (poke mode) and wait_for_files against the emulator over real HTTP."""

from __future__ import annotations

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
