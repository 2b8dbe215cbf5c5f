"""The one table of operations: every operation reaches both clients and the hook with one signature,
and lost-response recovery behaves (and logs) the same in the blocking and the async client."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import httpx
import pytest

from airflow_provider_files.api import AsyncFilesClient, ClientSettings, FilesClient, RetryPolicy
from airflow_provider_files.api.async_client import awaiting
from airflow_provider_files.api.limits import (
    EXPIRES_AFTER_MAX_S,
    EXPIRES_AFTER_MIN_S,
    MAX_PART_SIZE_BYTES,
    MIN_PART_SIZE_BYTES,
    validate_expires_after_s,
    validate_part_size,
)
from airflow_provider_files.api.operations import Operation, Operations
from airflow_provider_files.api.sync_client import blocking

from .support import Recorder

KEY = "sk-test-table-0123456789"
NO_WAIT = RetryPolicy(max_attempts=3, initial_delay_s=0.0, jitter=0.0)
FILE_JSON: dict[str, Any] = {
    "id": "file-mine",
    "object": "file",
    "bytes": 6,
    "created_at": 2_000_000_000,
    "filename": "in.jsonl",
    "purpose": "batch",
}


def table_operations() -> list[str]:
    """Names of the table's methods that build an :class:`Operation`."""
    names = []
    for name, member in inspect.getmembers(Operations, inspect.isfunction):
        if not name.startswith("_") and "Operation[" in str(inspect.signature(member).return_annotation):
            names.append(name)
    return names


def test_the_table_lists_the_files_uploads_and_batches_operations() -> None:
    assert {
        "create_file",
        "list_files",
        "retrieve_file",
        "delete_file",
        "create_upload",
        "add_upload_part",
        "complete_upload",
        "cancel_upload",
        "create_batch",
        "retrieve_batch",
        "list_batches",
        "cancel_batch",
    } <= set(table_operations())


@pytest.mark.parametrize("name", table_operations())
def test_each_operation_is_a_method_of_both_clients_with_the_tables_signature(name: str) -> None:
    build = getattr(Operations, name)
    sync_member = inspect.getattr_static(FilesClient, name)
    async_member = inspect.getattr_static(AsyncFilesClient, name)
    assert isinstance(sync_member, blocking) and sync_member._build is build
    assert isinstance(async_member, awaiting) and async_member._build is build
    client = FilesClient(ClientSettings(api_key=KEY))
    try:
        bound = getattr(client, name)
        assert bound.__doc__ == build.__doc__ and bound.__doc__
        assert bound.__name__ == name
    finally:
        client.close()


def failing_lookup(posts: list[int]) -> Recorder:
    """The first create dies with a 503; the search for its file gets a 401; the retried create works."""

    def respond(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(401, json={"error": {"message": "no listing for you"}})
        posts.append(1)
        return httpx.Response(503) if len(posts) == 1 else httpx.Response(200, json=FILE_JSON)

    return Recorder(respond)


def test_blocking_recovery_logs_a_failed_lookup_then_retries(caplog: pytest.LogCaptureFixture) -> None:
    posts: list[int] = []
    recorder = failing_lookup(posts)
    settings = ClientSettings(api_key=KEY, retry_policy=NO_WAIT)
    caplog.set_level(logging.WARNING, logger="airflow_provider_files")
    with FilesClient(settings, transport=recorder.transport, sleep=lambda _: None) as client:
        file = client.create_file(b"abcdef", "batch", filename="in.jsonl")
    assert file.id == "file-mine" and len(posts) == 2
    assert [r.method for r in recorder.requests] == ["POST", "GET", "POST"]
    assert "could not check for a file stored by the failed attempt" in caplog.text


@pytest.mark.asyncio
async def test_async_recovery_logs_the_same_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow_provider_files.api.async_client as async_module

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(async_module.asyncio, "sleep", no_sleep)
    posts: list[int] = []
    recorder = failing_lookup(posts)
    settings = ClientSettings(api_key=KEY, retry_policy=NO_WAIT)
    caplog.set_level(logging.WARNING, logger="airflow_provider_files")

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return recorder(request)

    async with AsyncFilesClient(settings, transport=httpx.MockTransport(handler)) as client:
        file = await client.create_file(b"abcdef", "batch", filename="in.jsonl")
    assert file.id == "file-mine" and len(posts) == 2
    assert [r.method for r in recorder.requests] == ["POST", "GET", "POST"]
    assert "could not check for a file stored by the failed attempt" in caplog.text


@pytest.mark.asyncio
async def test_async_recovery_takes_the_stored_file_when_its_md5_matches() -> None:
    stored = {**FILE_JSON, "id": "file-stored"}
    posts: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=b"abcdef")
        if request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [stored], "has_more": False})
        posts.append(1)
        return httpx.Response(503)

    settings = ClientSettings(api_key=KEY, retry_policy=NO_WAIT)
    async with AsyncFilesClient(settings, transport=httpx.MockTransport(handler)) as client:
        file = await client.create_file(b"abcdef", "batch", filename="in.jsonl")
    assert file.id == "file-stored" and len(posts) == 1


# -- one validator per range ---------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [EXPIRES_AFTER_MIN_S - 1, EXPIRES_AFTER_MAX_S + 1, 0, -5])
def test_expiry_out_of_range_is_refused_with_one_message(seconds: int) -> None:
    with pytest.raises(ValueError, match=r"expires_after_s must be between 3600 \(1 hour\) and 2592000"):
        validate_expires_after_s(seconds)


def test_expiry_in_range_passes_and_none_means_the_servers_default() -> None:
    assert validate_expires_after_s(EXPIRES_AFTER_MIN_S) == EXPIRES_AFTER_MIN_S
    assert validate_expires_after_s(EXPIRES_AFTER_MAX_S) == EXPIRES_AFTER_MAX_S
    assert validate_expires_after_s(None) is None
    with pytest.raises(ValueError, match="output_expires_after_s must be between"):
        validate_expires_after_s(1, name="output_expires_after_s")


def test_part_size_bounds() -> None:
    assert validate_part_size(MIN_PART_SIZE_BYTES) == MIN_PART_SIZE_BYTES
    assert validate_part_size(MAX_PART_SIZE_BYTES) == MAX_PART_SIZE_BYTES
    with pytest.raises(ValueError, match="part_size_bytes must be between"):
        validate_part_size(MAX_PART_SIZE_BYTES + 1)
    with pytest.raises(TypeError):
        validate_part_size(True)


@pytest.mark.parametrize("surface", ["client", "engine"])
def test_every_surface_uses_the_same_expiry_check(surface: str) -> None:
    from airflow_provider_files.uploads import ChunkedUploader

    with (
        FilesClient(ClientSettings(api_key=KEY)) as client,
        pytest.raises(ValueError, match="expires_after_s must be between 3600") as caught,
    ):
        if surface == "client":
            client.create_file(b"x", "batch", expires_after_s=60)
        else:
            ChunkedUploader(client, expires_after_s=60)
    assert str(caught.value).endswith("got 60")


def test_operation_values_are_built_without_sending() -> None:
    operation = Operations(ClientSettings(api_key=KEY)).retrieve_file("file-1")
    assert isinstance(operation, Operation)
    assert (operation.spec.method, operation.spec.path) == ("GET", "/files/file-1")
