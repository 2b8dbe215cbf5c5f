"""FilesHook and AsyncFilesHook against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.api import (
    AuthenticationError,
    FileObject,
    NotFoundError,
)
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import AsyncFilesHook, FilesHook
from tests.support import FilesConnection

CONN_ID = "files_emulator"
LINES = b"".join(
    json.dumps(
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini"},
        }
    ).encode()
    + b"\n"
    for i in range(20)
)


@pytest.fixture
def hook(emulator: EmulatorHandle, files_connection: FilesConnection) -> Any:
    files_connection(emulator, conn_id=CONN_ID, max_retries=1)
    files_hook = FilesHook(CONN_ID)
    yield files_hook
    files_hook.close()


def test_upload_file_from_path_fileobj_and_bytes(
    hook: FilesHook, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(LINES)
    from_path = hook.upload_file(path, "batch")
    from_object = hook.upload_file(io.BytesIO(LINES), "batch", filename="object.jsonl")
    from_bytes = hook.upload_file(LINES, "user_data", filename="bytes.jsonl", expires_after_s=3600)
    assert (from_path.filename, from_object.filename, from_bytes.filename) == (
        "requests.jsonl",
        "object.jsonl",
        "bytes.jsonl",
    )
    assert from_bytes.purpose == "user_data"
    assert from_bytes.expires_at is not None and from_bytes.created_at is not None
    assert from_bytes.expires_at - from_bytes.created_at == 3600
    md5 = hashlib.md5(LINES).hexdigest()
    for file in (from_path, from_object, from_bytes):
        assert file.id and file.bytes == len(LINES)
        assert emulator.file_md5(file.id) == md5


def test_list_files_follows_pagination(hook: FilesHook, emulator: EmulatorHandle) -> None:
    ids = {hook.upload_file(LINES, "batch", filename=f"f{i}.jsonl").id for i in range(5)}
    other = hook.upload_file(b"{}", "user_data", filename="other.json").id
    listed = hook.list_files("batch", page_size=2)
    assert {f.id for f in listed} == ids
    assert len(listed) == 5
    everything = hook.list_files(page_size=4)
    assert {f.id for f in everything} == ids | {other}
    list_calls = [e for e in emulator.request_log() if e["method"] == "GET" and e["path"].endswith("/files")]
    assert len(list_calls) == 3 + 2  # 5 batch files in pages of 2, then 6 files in pages of 4


def test_get_download_and_delete(hook: FilesHook, tmp_path: Path) -> None:
    file = hook.upload_file(LINES, "batch", filename="in.jsonl")
    fetched = hook.get_file(file.id)
    assert isinstance(fetched, FileObject)
    assert (fetched.id, fetched.bytes, fetched.filename, fetched.purpose) == (
        file.id,
        len(LINES),
        "in.jsonl",
        "batch",
    )
    target = tmp_path / "out" / "copy.jsonl"
    target.parent.mkdir()
    assert hook.download_file(file.id, target) == len(LINES)
    assert target.read_bytes() == LINES
    assert [p.name for p in target.parent.iterdir()] == ["copy.jsonl"]
    buffer = io.BytesIO()
    assert hook.download_file(file.id, buffer) == len(LINES)
    assert buffer.getvalue() == LINES
    deleted = hook.delete_file(file.id)
    assert (deleted.id, deleted.deleted) == (file.id, True)
    with pytest.raises(NotFoundError) as caught:
        hook.get_file(file.id)
    assert f"connection '{CONN_ID}'" in str(caught.value)
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(NotFoundError):
        hook.download_file(file.id, missing)
    assert not missing.exists()
    assert list(tmp_path.glob("*.part")) == []


def test_upload_parts_and_complete_with_md5(hook: FilesHook, emulator: EmulatorHandle) -> None:
    half = len(LINES) // 2
    upload = hook.create_upload("parts.jsonl", "batch", len(LINES), "text/jsonl")
    assert upload.status == "pending"
    first = hook.add_upload_part(upload.id, LINES[:half])
    second = hook.add_upload_part(upload.id, io.BytesIO(LINES[half:]))
    md5 = hashlib.md5(LINES).hexdigest()
    done = hook.complete_upload(upload.id, [first.id, second.id], md5=md5)
    assert done.status == "completed"
    assert done.file is not None
    assert done.file.bytes == len(LINES)
    assert emulator.file_md5(done.file.id) == md5
    downloaded = io.BytesIO()
    hook.download_file(done.file.id, downloaded)
    assert downloaded.getvalue() == LINES


def test_cancel_upload(hook: FilesHook) -> None:
    upload = hook.create_upload("cancel.jsonl", "batch", 10, "text/jsonl")
    hook.add_upload_part(upload.id, b"0123456789")
    cancelled = hook.cancel_upload(upload.id)
    assert (cancelled.id, cancelled.status) == (upload.id, "cancelled")
    assert hook.list_files() == []


def test_test_connection_success(hook: FilesHook, emulator: EmulatorHandle) -> None:
    hook.upload_file(b"{}", "user_data", filename="a.json")
    ok, message = hook.test_connection()
    assert ok is True
    assert message == f"Connected to {emulator.base_url} (openai); 1 file(s) listed"


def test_get_hook_returns_the_client(hook: FilesHook, emulator: EmulatorHandle) -> None:
    client = hook.get_conn()
    assert client is hook.client
    assert client.base_url == emulator.base_url


def test_auth_failure_names_the_connection(
    strict_emulator: EmulatorHandle, files_connection: FilesConnection
) -> None:
    wrong_key = "sk-the-wrong-key-999888777"
    files_connection(strict_emulator, conn_id="files_wrong_key", password=wrong_key, max_retries=1)
    hook = FilesHook("files_wrong_key")
    with pytest.raises(AuthenticationError) as caught:
        hook.get_file("file-1")
    message = str(caught.value)
    assert "connection 'files_wrong_key'" in message
    assert "Check the API key" in message
    assert wrong_key not in message and wrong_key not in repr(caught.value)
    ok, text = hook.test_connection()
    assert ok is False
    assert "401" in text and "files_wrong_key" in text and "Check the API key" in text
    assert wrong_key not in text
    hook.close()


def test_test_connection_reports_configuration_errors(files_connection: FilesConnection) -> None:
    files_connection(
        "http://files.example.test/v1", conn_id="files_remote_http", password="sk-abcdef123456", max_retries=1
    )
    ok, text = FilesHook("files_remote_http").test_connection()
    assert ok is False
    assert "allow_insecure_http" in text and "files_remote_http" in text


def test_test_connection_reports_an_unreachable_server(files_connection: FilesConnection) -> None:
    import socket

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    files_connection(
        f"http://127.0.0.1:{port}/v1", conn_id="files_down", password="sk-abcdef123456", max_retries=0
    )
    ok, text = FilesHook("files_down").test_connection()
    assert ok is False
    assert f"GET http://127.0.0.1:{port}/v1/files" in text
    assert "ConnectError" in text and "files_down" in text


@pytest.mark.asyncio
async def test_async_hook_get_file(hook: FilesHook, emulator: EmulatorHandle) -> None:
    file = hook.upload_file(LINES, "batch", filename="async.jsonl")
    async_hook = AsyncFilesHook(CONN_ID)
    fetched = await async_hook.get_file(file.id)
    assert (fetched.id, fetched.bytes, fetched.filename) == (file.id, len(LINES), "async.jsonl")
    settings = await async_hook.get_settings()
    assert settings.api_key == emulator.api_key
    assert settings.context == f"connection '{CONN_ID}'"
    client = await async_hook.get_async_client()
    async with client:
        page = await client.list_files()
    assert [f.id for f in page.data] == [file.id]
    with pytest.raises(NotFoundError, match=CONN_ID):
        await async_hook.get_file("file-does-not-exist")


def test_hook_retries_rate_limits_and_does_not_duplicate_a_lost_create(
    emulator: EmulatorHandle, files_connection: FilesConnection
) -> None:
    files_connection(emulator, conn_id="files_faulty", max_retries=3)
    hook = FilesHook("files_faulty")
    emulator.set_faults("create_file:drop_after=x1,retrieve_file:429=x2")
    file = hook.upload_file(LINES, "batch", filename="faulty.jsonl")
    assert hook.get_file(file.id).id == file.id
    stats = emulator.stats()
    assert stats["file_count"] == 1
    statuses = [(e["route"], e["status"]) for e in emulator.request_log()]
    assert statuses.count(("retrieve_file", 429)) == 2
    assert [r for r, _ in statuses].count("create_file") == 1
    hook.close()


@pytest.mark.parametrize(
    ("gateway", "host_of"),
    [
        ("azure", lambda e: e.azure_endpoint),
        ("respan", lambda e: e.respan_base_url),
        ("portkey", lambda e: e.base_url),
        ("litellm", lambda e: e.base_url),
    ],
)
def test_gateway_flavours_round_trip(
    gateway: str, host_of: Any, emulator: EmulatorHandle, files_connection: FilesConnection, tmp_path: Path
) -> None:
    extra: dict[str, Any] = {"gateway": gateway, "max_retries": 1}
    if gateway == "portkey":
        extra["portkey_provider"] = "openai"
    files_connection(host_of(emulator), conn_id=f"files_{gateway}", password=emulator.api_key, **extra)
    hook = FilesHook(f"files_{gateway}")
    file = hook.upload_file(LINES, "batch", filename=f"{gateway}.jsonl")
    assert file.bytes == len(LINES)
    assert hook.get_file(file.id).filename == f"{gateway}.jsonl"
    assert [f.id for f in hook.list_files("batch")] == [file.id]
    target = tmp_path / "copy.jsonl"
    hook.download_file(file.id, target)
    assert target.read_bytes() == LINES
    ok, message = hook.test_connection()
    assert ok, message
    log = emulator.request_log()
    assert log and all(entry["status"] < 400 for entry in log)
    if gateway == "azure":
        assert all(entry["query"].get("api-version") == "2024-10-21" for entry in log)
        assert [e["status"] for e in log if e["route"] == "create_file"] == [201]
        assert all(entry["path"].startswith("/openai/") for entry in log)
    if gateway == "respan":
        assert all(entry["path"].endswith("/") for entry in log)
    hook.close()


def test_test_connection_reports_a_missing_connection(files_connection: FilesConnection) -> None:
    files_connection.remove("no_such_files_conn")
    ok, message = FilesHook(files_conn_id="no_such_files_conn").test_connection()
    assert ok is False
    assert "no_such_files_conn" in message
