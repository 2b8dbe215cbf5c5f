"""FilesHook and AsyncFilesHook batch methods: the connection's settings, the client's operations.

The emulator does not serve ``/v1/batches`` yet, so these answer through ``httpx.MockTransport``.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import httpx
import pytest

from airflow_provider_files.api import AsyncFilesClient, Batch, FilesClient
from airflow_provider_files.hooks.files import AsyncFilesHook, FilesHook
from tests.support import FilesConnection

CONN_ID = "files_batches"
KEY = "sk-hook-batches-123456"


def batch(batch_id: str, status: str = "in_progress") -> dict[str, Any]:
    return {"id": batch_id, "object": "batch", "status": status, "endpoint": "/v1/embeddings"}


class BatchServer:
    """``total`` batches, newest first, served in pages of the requested size."""

    def __init__(self, total: int) -> None:
        self.ids = [f"batch_{n:03d}" for n in range(total, 0, -1)]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path == "/v1/batches":
            after = request.url.params.get("after")
            size = int(request.url.params.get("limit", "20"))
            start = self.ids.index(after) + 1 if after else 0
            chunk = self.ids[start : start + size]
            more = start + size < len(self.ids)
            return httpx.Response(
                200, json={"object": "list", "data": [batch(i) for i in chunk], "has_more": more}
            )
        if request.method == "POST" and path == "/v1/batches":
            body = json.loads(request.content)
            return httpx.Response(200, json={**batch("batch_new", "validating"), **body})
        if request.method == "GET" and path.startswith("/v1/batches/"):
            return httpx.Response(200, json=batch(path.rsplit("/", 1)[1], "completed"))
        if request.method == "POST" and path.endswith("/cancel"):
            return httpx.Response(200, json=batch(path.split("/")[-2], "cancelling"))
        return httpx.Response(599)


@pytest.fixture
def connection(files_connection: FilesConnection) -> None:
    files_connection("https://api.openai.com/v1", conn_id=CONN_ID, password=KEY)


def sync_hook(server: BatchServer) -> FilesHook:
    hook = FilesHook(CONN_ID)
    hook.__dict__["client"] = FilesClient(hook.settings, transport=httpx.MockTransport(server))
    return hook


@pytest.mark.usefixtures("connection")
def test_create_get_and_cancel_go_through_the_connections_client() -> None:
    server = BatchServer(0)
    hook = sync_hook(server)
    created = hook.create_batch("file-1", "/v1/embeddings", metadata={"run": "r1"})
    got = hook.get_batch("batch_new")
    cancelled = hook.cancel_batch("batch_new")
    hook.close()
    assert isinstance(created, Batch) and created.status == "validating" and created.metadata == {"run": "r1"}
    assert (got.status, cancelled.status) == ("completed", "cancelling")
    assert [(r.method, r.url.path) for r in server.requests] == [
        ("POST", "/v1/batches"),
        ("GET", "/v1/batches/batch_new"),
        ("POST", "/v1/batches/batch_new/cancel"),
    ]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


@pytest.mark.usefixtures("connection")
def test_list_batches_reads_every_page_in_pages_of_100() -> None:
    server = BatchServer(230)
    batches = sync_hook(server).list_batches()
    assert [b.id for b in batches] == server.ids
    assert [r.url.params.get("limit") for r in server.requests] == ["100", "100", "100"]


@pytest.mark.usefixtures("connection")
@pytest.mark.parametrize(
    ("limit", "pages"), [(3, ["3"]), (150, ["100", "100"]), (500, ["100", "100", "100"])]
)
def test_list_batches_stops_at_the_limit(limit: int, pages: list[str]) -> None:
    server = BatchServer(230)
    batches = sync_hook(server).list_batches(limit=limit)
    assert [b.id for b in batches] == server.ids[:limit]
    assert [r.url.params.get("limit") for r in server.requests] == pages


@pytest.mark.usefixtures("connection")
@pytest.mark.parametrize("limit", [0, -1, True])
def test_list_batches_refuses_a_bad_limit_before_sending(limit: Any) -> None:
    server = BatchServer(5)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        sync_hook(server).list_batches(limit=limit)
    assert server.requests == []


@pytest.mark.asyncio
@pytest.mark.usefixtures("connection")
async def test_async_hook_batch_methods_open_and_close_one_client_per_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = BatchServer(130)
    hook = AsyncFilesHook(CONN_ID)
    opened: list[AsyncFilesClient] = []

    async def get_async_client(**_: Any) -> AsyncFilesClient:
        client = AsyncFilesClient(await hook.get_settings(), transport=httpx.MockTransport(server))
        opened.append(client)
        return client

    monkeypatch.setattr(hook, "get_async_client", get_async_client)
    created = await hook.create_batch("file-1", "/v1/embeddings")
    got = await hook.get_batch("batch_007")
    cancelled = await hook.cancel_batch("batch_007")
    every = await hook.list_batches()
    some = await hook.list_batches(limit=101)
    assert (created.status, got.id, cancelled.status) == ("validating", "batch_007", "cancelling")
    assert [b.id for b in every] == server.ids and [b.id for b in some] == server.ids[:101]
    assert len(opened) == 5 and all(c._http.is_closed for c in opened)


def test_batch_methods_have_the_clients_signatures() -> None:
    for hook in (FilesHook("any"), AsyncFilesHook("any")):
        assert list(inspect.signature(hook.create_batch).parameters) == [
            "input_file_id",
            "endpoint",
            "completion_window",
            "metadata",
            "output_expires_after_s",
        ]
        assert list(inspect.signature(hook.get_batch).parameters) == ["batch_id"]
        assert list(inspect.signature(hook.cancel_batch).parameters) == ["batch_id"]
        assert list(inspect.signature(hook.list_batches).parameters) == ["limit"]
