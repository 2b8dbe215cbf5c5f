"""UploadCompleteTrigger against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from airflow_provider_files.api import RetryPolicy
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.triggers import files as trigger_module
from airflow_provider_files.triggers.files import UploadCompleteTrigger
from tests.support import FilesConnection

CONN_ID = "files_trigger_emulator"
GOOD_LINES: list[dict[str, Any]] = [
    {
        "custom_id": f"r{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": []},
    }
    for i in range(3)
]


@pytest.fixture
def conn_id(emulator: EmulatorHandle, files_connection: FilesConnection) -> str:
    return files_connection(emulator, conn_id=CONN_ID)


def upload(conn_id: str, content: bytes) -> str:
    hook = FilesHook(conn_id)
    try:
        return hook.upload_file(content, "batch", filename="requests.jsonl").id
    finally:
        hook.close()


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


@pytest.mark.asyncio
async def test_uploaded_then_processed(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.set_processing_delay(0.6)
    content = jsonl(GOOD_LINES)
    file_id = upload(conn_id, content)
    trigger = UploadCompleteTrigger(
        [file_id],
        conn_id,
        deadline=time.time() + 15,
        poll_interval_s=0.2,
        max_poll_interval_s=0.3,
        expected_bytes={file_id: len(content)},
    )
    event = await anext(trigger.run())
    assert event.payload["status"] == "success"
    (ready,) = event.payload["files"]
    assert ready["id"] == file_id
    assert ready["status"] == "processed"
    assert ready["bytes"] == len(content)
    polls = [r for r in emulator.request_log() if r["method"] == "GET" and file_id in r["path"]]
    assert len(polls) >= 2  # it was seen "uploaded" before "processed"


@pytest.mark.asyncio
async def test_invalid_batch_file_marked_error(emulator: EmulatorHandle, conn_id: str) -> None:
    emulator.configure(validate_batch=True)
    duplicate = [GOOD_LINES[0], GOOD_LINES[0]]
    file_id = upload(conn_id, jsonl(duplicate))
    trigger = UploadCompleteTrigger(
        [file_id], conn_id, deadline=time.time() + 15, poll_interval_s=0.1, max_poll_interval_s=0.2
    )
    event = await anext(trigger.run())
    assert event.payload["status"] == "error"
    assert event.payload["file_id"] == file_id
    assert event.payload["reason"] == "file_failed"
    assert "r0" in event.payload["message"]  # the emulator's status_details name the duplicate id


@pytest.mark.asyncio
async def test_deleted_file_fails_after_grace(emulator: EmulatorHandle, conn_id: str) -> None:
    file_id = upload(conn_id, jsonl(GOOD_LINES))
    FilesHook(conn_id).delete_file(file_id)
    trigger = UploadCompleteTrigger(
        [file_id],
        conn_id,
        deadline=time.time() + 15,
        poll_interval_s=0.1,
        max_poll_interval_s=0.2,
        not_found_grace_s=0.3,
    )
    event = await anext(trigger.run())
    assert event.payload["status"] == "error"
    assert "not found" in event.payload["message"]


@pytest.mark.asyncio
async def test_rides_out_injected_server_errors(emulator: EmulatorHandle, conn_id: str) -> None:
    file_id = upload(conn_id, jsonl(GOOD_LINES))
    emulator.set_processing_delay(0)
    emulator.set_faults("retrieve_file:503=x4,retrieve_file:drop=x2")
    trigger = UploadCompleteTrigger(
        [file_id],
        conn_id,
        deadline=time.time() + 20,
        poll_interval_s=0.1,
        max_poll_interval_s=0.2,
        max_consecutive_errors=3,
    )
    event = await anext(trigger.run())
    assert event.payload["status"] == "success"
    assert emulator.faults()["injected"] == {"503": 4, "drop": 2}


@pytest.mark.asyncio
async def test_honours_retry_after(
    emulator: EmulatorHandle, conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    retry_after_s = 0.8
    # No retry inside the client: each 429 reaches the trigger's poll loop.
    monkeypatch.setattr(trigger_module, "TRIGGER_RETRY_POLICY", RetryPolicy(max_attempts=1))
    emulator.set_processing_delay(0)
    file_id = upload(conn_id, jsonl(GOOD_LINES))
    emulator.set_faults(f"retrieve_file:429=x2,retry_after={retry_after_s}")
    trigger = UploadCompleteTrigger(
        [file_id], conn_id, deadline=time.time() + 15, poll_interval_s=0.05, max_poll_interval_s=0.1
    )
    event = await anext(trigger.run())
    assert event.payload["status"] == "success"
    assert emulator.faults()["injected"] == {"429": 2}
    times = [r["time"] for r in emulator.request_log() if r["method"] == "GET" and file_id in r["path"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    assert all(gap >= retry_after_s - 0.05 for gap in gaps), gaps  # not the 0.05-0.1 s backoff
