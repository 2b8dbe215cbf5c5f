"""The Batches API layer: the request of each operation for every gateway, the checks made before
anything is sent, and how a batch answer is read."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import httpx
import pytest

from airflow_provider_files.api import (
    TERMINAL_BATCH_STATUSES,
    AsyncFilesClient,
    Batch,
    BatchError,
    BatchList,
    BatchRequestCounts,
    BatchStatus,
    ClientSettings,
    ConfigurationError,
    FilesClient,
    UnexpectedResponseError,
    UnsupportedOperationError,
    gateways,
)
from airflow_provider_files.api.limits import BATCH_ENDPOINTS

from .support import KEY, PROFILES, Expected, Recorder, check_request

BATCH_ID = "batch_abc123"
BATCH_JSON: dict[str, Any] = {
    "id": BATCH_ID,
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "model": "gpt-5-2025-08-07",
    "errors": None,
    "input_file_id": "file-abc123",
    "completion_window": "24h",
    "status": "completed",
    "output_file_id": "file-cvaTdG",
    "error_file_id": "file-HOWS94",
    "created_at": 1711471533,
    "in_progress_at": 1711471538,
    "expires_at": 1711557933,
    "finalizing_at": 1711493133,
    "completed_at": 1711493163,
    "failed_at": None,
    "expired_at": None,
    "cancelling_at": None,
    "cancelled_at": None,
    "request_counts": {"total": 100, "completed": 95, "failed": 5},
    "usage": {
        "input_tokens": 1500,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 500,
        "output_tokens_details": {"reasoning_tokens": 300},
        "total_tokens": 2000,
    },
    "metadata": {"customer_id": "user_123456789", "batch_description": "Nightly eval job"},
    "vendor_extra": {"region": "eu"},
}
# Where the batches collection lives, under each profile's root (Respan: /api/v1/batches/).
BATCHES_ROUTE = {name: "/v1/batches" if name == "respan" else "/batches" for name in PROFILES}
ALL = list(PROFILES)


def batch_server(expected: Expected, route: str) -> Recorder:
    """A fake server for one profile's batch routes; anything else answers 599."""

    def respond(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith(expected.root + route) or not path.endswith(expected.slash):
            return httpx.Response(599, text=f"unexpected path {path}")
        rest = path[len(expected.root + route) :].rstrip("/")
        if (request.method, rest) == ("POST", ""):
            return httpx.Response(200, json={**BATCH_JSON, "status": "validating"})
        if (request.method, rest) == ("GET", ""):
            page = {"object": "list", "data": [BATCH_JSON], "first_id": BATCH_ID, "last_id": BATCH_ID}
            return httpx.Response(200, json={**page, "has_more": False})
        if (request.method, rest) == ("GET", f"/{BATCH_ID}"):
            return httpx.Response(200, json=BATCH_JSON)
        if (request.method, rest) == ("POST", f"/{BATCH_ID}/cancel"):
            return httpx.Response(200, json={**BATCH_JSON, "status": "cancelling"})
        return httpx.Response(599, text=f"unexpected route {request.method} {rest}")

    return Recorder(respond)


def client_for(name: str) -> tuple[FilesClient, Recorder, Expected]:
    expected = PROFILES[name]
    recorder = batch_server(expected, BATCHES_ROUTE[name])
    return (
        FilesClient(expected.settings, transport=recorder.transport, sleep=lambda s: None),
        recorder,
        expected,
    )


# -- request shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_create_batch_sends_the_contracts_json(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        batch = client.create_batch("file-abc123", "/v1/chat/completions")
    request = recorder.last
    check_request(request, expected, "POST", BATCHES_ROUTE[name])
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "input_file_id": "file-abc123",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    assert (batch.id, batch.status) == (BATCH_ID, "validating")


@pytest.mark.parametrize("name", ALL)
def test_create_batch_with_metadata_and_output_expiry(name: str) -> None:
    client, recorder, _ = client_for(name)
    with client:
        client.create_batch(
            "file-abc123",
            "/v1/chat/completions",
            metadata={"airflow_run": "dag.task.run.0"},
            output_expires_after_s=7 * 86400,
        )
    body = json.loads(recorder.last.content)
    assert body["metadata"] == {"airflow_run": "dag.task.run.0"}
    assert body["output_expires_after"] == {"anchor": "created_at", "seconds": 604800}


@pytest.mark.parametrize("name", ALL)
def test_retrieve_list_and_cancel(name: str) -> None:
    client, recorder, expected = client_for(name)
    route = BATCHES_ROUTE[name]
    with client:
        retrieved = client.retrieve_batch(BATCH_ID)
        check_request(recorder.last, expected, "GET", f"{route}/{BATCH_ID}")
        page = client.list_batches(after="batch_0", limit=100)
        check_request(recorder.last, expected, "GET", route, {"after": "batch_0", "limit": "100"})
        client.list_batches()
        check_request(recorder.last, expected, "GET", route)
        cancelled = client.cancel_batch(BATCH_ID)
        check_request(recorder.last, expected, "POST", f"{route}/{BATCH_ID}/cancel")
    assert recorder.last.content == b""
    assert retrieved.status == "completed" and cancelled.status == "cancelling"
    assert [b.id for b in page.data] == [BATCH_ID] and not page.has_more


def test_azure_classic_paths_carry_the_api_version_and_v1_carries_none() -> None:
    urls = []
    for base_url, version in [
        ("https://r.openai.azure.com", None),
        ("https://r.openai.azure.com/openai", "2025-04-01-preview"),
        ("https://r.openai.azure.com/openai/v1", None),
    ]:
        settings = ClientSettings(api_key=KEY, gateway="azure", base_url=base_url, api_version=version)
        recorder = Recorder(lambda r: httpx.Response(200, json=BATCH_JSON))
        with FilesClient(settings, transport=recorder.transport) as client:
            client.create_batch("file-1", "/v1/chat/completions")
            client.cancel_batch(BATCH_ID)
        urls += [str(r.url) for r in recorder.requests]
        assert all(r.headers["api-key"] == KEY for r in recorder.requests)
    assert urls == [
        "https://r.openai.azure.com/openai/batches?api-version=2024-10-21",
        f"https://r.openai.azure.com/openai/batches/{BATCH_ID}/cancel?api-version=2024-10-21",
        "https://r.openai.azure.com/openai/batches?api-version=2025-04-01-preview",
        f"https://r.openai.azure.com/openai/batches/{BATCH_ID}/cancel?api-version=2025-04-01-preview",
        "https://r.openai.azure.com/openai/v1/batches",
        f"https://r.openai.azure.com/openai/v1/batches/{BATCH_ID}/cancel",
    ]


def test_iter_batches_follows_has_more_and_last_id() -> None:
    pages = {
        None: {"data": [{**BATCH_JSON, "id": "batch_3"}, {**BATCH_JSON, "id": "batch_2"}], "has_more": True},
        "batch_2": {"data": [{**BATCH_JSON, "id": "batch_1"}], "has_more": False},
    }
    recorder = Recorder(lambda r: httpx.Response(200, json=pages[r.url.params.get("after")]))
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        ids = [b.id for b in client.iter_batches(limit=2)]
    assert ids == ["batch_3", "batch_2", "batch_1"]
    assert [dict(r.url.params) for r in recorder.requests] == [
        {"limit": "2"},
        {"after": "batch_2", "limit": "2"},
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ALL)
async def test_async_client_sends_the_same_batch_requests(name: str) -> None:
    expected = PROFILES[name]
    route = BATCHES_ROUTE[name]
    recorder = batch_server(expected, route)

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return recorder(request)

    async with AsyncFilesClient(expected.settings, transport=httpx.MockTransport(handler)) as client:
        created = await client.create_batch(
            "file-abc123", "/v1/embeddings" if name != "respan" else "/v1/chat/completions"
        )
        check_request(recorder.last, expected, "POST", route)
        await client.retrieve_batch(BATCH_ID)
        check_request(recorder.last, expected, "GET", f"{route}/{BATCH_ID}")
        listed = [b.id async for b in client.iter_batches(limit=50)]
        check_request(recorder.last, expected, "GET", route, {"limit": "50"})
        cancelled = await client.cancel_batch(BATCH_ID)
        check_request(recorder.last, expected, "POST", f"{route}/{BATCH_ID}/cancel")
    assert created.status == "validating" and cancelled.status == "cancelling" and listed == [BATCH_ID]


# -- refused before sending ----------------------------------------------------------------------


BATCH_CALLS = [
    lambda c: c.create_batch("file-1", "/v1/chat/completions"),
    lambda c: c.retrieve_batch(BATCH_ID),
    lambda c: c.list_batches(),
    lambda c: c.cancel_batch(BATCH_ID),
]
BATCH_CALL_IDS = ["create", "retrieve", "list", "cancel"]


@pytest.fixture
def gateway_without_batches(monkeypatch: pytest.MonkeyPatch) -> ClientSettings:
    profile = replace(gateways.PROFILES["openai"], name="nobatches", supports_batches=False)
    monkeypatch.setitem(gateways.PROFILES, "nobatches", profile)
    return ClientSettings(api_key=KEY, gateway="nobatches")


@pytest.mark.parametrize("call", BATCH_CALLS, ids=BATCH_CALL_IDS)
def test_gateway_without_batches_is_refused_with_no_request(
    gateway_without_batches: ClientSettings, call: Any
) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=BATCH_JSON))
    with (
        FilesClient(gateway_without_batches, transport=recorder.transport) as client,
        pytest.raises(
            UnsupportedOperationError, match="Batches API is not supported by the 'nobatches' gateway"
        ),
    ):
        call(client)
    assert recorder.requests == []


@pytest.mark.asyncio
async def test_async_gateway_without_batches_is_refused_with_no_request(
    gateway_without_batches: ClientSettings,
) -> None:
    sent: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=BATCH_JSON)

    async with AsyncFilesClient(gateway_without_batches, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UnsupportedOperationError):
            await client.create_batch("file-1", "/v1/chat/completions")
        with pytest.raises(UnsupportedOperationError):
            [b async for b in client.iter_batches()]
    assert sent == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"endpoint": "/v1/chat/complete"},
            ConfigurationError,
            "endpoint '/v1/chat/complete' is not accepted",
        ),
        ({"endpoint": "v1/embeddings"}, ConfigurationError, "must be an API path"),
        ({"completion_window": "48h"}, ConfigurationError, "completion_window must be one of 24h, got '48h'"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, ConfigurationError, "at most 16 pairs, got 17"),
        ({"metadata": {"k" * 65: "v"}}, ConfigurationError, "65 characters long; the limit is 64"),
        ({"metadata": {"k": "v" * 513}}, ConfigurationError, "513 characters long; the limit is 512"),
        ({"metadata": {"k": 3}}, ConfigurationError, "must be strings"),
        ({"output_expires_after_s": 60}, ConfigurationError, "output_expires_after_s must be between 3600"),
        ({"output_expires_after_s": 2_592_001}, ConfigurationError, "output_expires_after_s must be between"),
        ({"input_file_id": ""}, ValueError, "input_file_id must be a non-empty id"),
    ],
)
def test_bad_create_arguments_are_refused_before_sending(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"input_file_id": "file-1", "endpoint": "/v1/chat/completions", **kwargs}
    recorder = Recorder(lambda r: httpx.Response(200, json=BATCH_JSON))
    with (
        FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client,
        pytest.raises(error, match=re.escape(message)),
    ):
        client.create_batch(arguments.pop("input_file_id"), arguments.pop("endpoint"), **arguments)
    assert recorder.requests == []
    assert issubclass(error, ValueError)


def test_edge_values_are_accepted() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=BATCH_JSON))
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        for endpoint in sorted(BATCH_ENDPOINTS):
            client.create_batch("file-1", endpoint, metadata=metadata, output_expires_after_s=3600)
    assert len(recorder.requests) == len(BATCH_ENDPOINTS)
    assert json.loads(recorder.last.content)["metadata"] == metadata


def test_each_gateway_judges_endpoints_its_own_way() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=BATCH_JSON))
    respan = ClientSettings(api_key=KEY, gateway="respan")
    with (
        FilesClient(respan, transport=recorder.transport) as client,
        pytest.raises(ConfigurationError, match="not accepted for batches by the 'respan' gateway"),
    ):
        client.create_batch("file-1", "/v1/embeddings")
    custom = ClientSettings(api_key=KEY, gateway="custom", base_url="https://gw.example.test/v1")
    with FilesClient(custom, transport=recorder.transport) as client:
        client.create_batch("file-1", "/v1/ocr")
    assert [json.loads(r.content)["endpoint"] for r in recorder.requests] == ["/v1/ocr"]


@pytest.mark.parametrize("limit", [0, 101])
def test_list_limit_out_of_range_is_refused(limit: int) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=BATCH_JSON))
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        with pytest.raises(ValueError, match="limit must be between 1 and 100"):
            client.list_batches(limit=limit)
        with pytest.raises(ValueError, match="batch_id must be a non-empty id without '/'"):
            client.retrieve_batch("batch/1")
    assert recorder.requests == []


# -- reading answers -----------------------------------------------------------------------------


def test_a_full_batch_is_read_field_by_field() -> None:
    batch = Batch.from_dict(BATCH_JSON)
    assert (batch.id, batch.status, batch.endpoint, batch.model) == (
        BATCH_ID,
        BatchStatus.COMPLETED.value,
        "/v1/chat/completions",
        "gpt-5-2025-08-07",
    )
    assert (batch.input_file_id, batch.output_file_id, batch.error_file_id) == (
        "file-abc123",
        "file-cvaTdG",
        "file-HOWS94",
    )
    assert batch.completion_window == "24h"
    assert (batch.created_at, batch.in_progress_at, batch.finalizing_at, batch.completed_at) == (
        1711471533,
        1711471538,
        1711493133,
        1711493163,
    )
    assert batch.expires_at == 1711557933 and batch.failed_at is None and batch.cancelled_at is None
    assert batch.request_counts == BatchRequestCounts(total=100, completed=95, failed=5)
    assert batch.errors == ()
    assert batch.metadata["batch_description"] == "Nightly eval job"
    assert batch.usage is not None and batch.usage["input_tokens_details"]["cached_tokens"] == 1024
    assert batch.is_terminal


def test_unknown_fields_survive_and_the_dict_round_trips() -> None:
    batch = Batch.from_dict(BATCH_JSON)
    data = batch.to_dict()
    assert data["vendor_extra"] == {"region": "eu"} and batch.raw["vendor_extra"] == {"region": "eu"}
    assert json.loads(json.dumps(data)) == data
    assert Batch.from_dict(data) == batch


def test_an_unknown_status_is_kept_and_is_not_terminal() -> None:
    batch = Batch.from_dict({**BATCH_JSON, "status": "paused_for_quota"})
    assert batch.status == "paused_for_quota" and not batch.is_terminal
    assert batch.to_dict()["status"] == "paused_for_quota"


def test_statuses_and_terminal_set() -> None:
    assert [s.value for s in BatchStatus] == [
        "validating",
        "failed",
        "in_progress",
        "finalizing",
        "completed",
        "expired",
        "cancelling",
        "cancelled",
    ]
    assert {"failed", "completed", "expired", "cancelled"} == TERMINAL_BATCH_STATUSES
    for status in BatchStatus:
        assert Batch.from_dict({"id": "b", "status": status.value}).is_terminal == (
            status.value in TERMINAL_BATCH_STATUSES
        )


def test_failed_batch_errors_name_the_lines() -> None:
    errors = {
        "object": "list",
        "data": [
            {"code": "invalid_json_line", "message": "Line 3 is not JSON", "param": None, "line": 3},
            {"code": "mismatched_model", "message": "one model per file", "line": None, "extra": 1},
        ],
    }
    batch = Batch.from_dict({**BATCH_JSON, "status": "failed", "errors": errors})
    assert batch.errors == (
        BatchError("invalid_json_line", "Line 3 is not JSON", None, 3),
        BatchError("mismatched_model", "one model per file", None, None),
    )
    assert batch.to_dict()["errors"]["data"][0] == {
        "code": "invalid_json_line",
        "message": "Line 3 is not JSON",
        "param": None,
        "line": 3,
    }
    bare = Batch.from_dict({"id": "b", "status": "failed", "errors": [{"code": "x"}, "gateway said no"]})
    assert bare.errors == (BatchError("x", None, None, None), BatchError(None, "gateway said no", None, None))


def test_a_sparse_gateway_listing_is_tolerated() -> None:
    # Respan's listing leaves out input_file_id, timestamps and more.
    page = BatchList.from_dict(
        {
            "object": "list",
            "data": [
                {
                    "id": "batch_1",
                    "object": "batch",
                    "status": "in_progress",
                    "request_counts": {"total": 50},
                },
                {"id": "batch_2", "status": "completed", "metadata": None, "usage": None},
            ],
        }
    )
    assert [b.id for b in page.data] == ["batch_1", "batch_2"]
    assert (page.first_id, page.last_id, page.has_more) == ("batch_1", "batch_2", False)
    first = page.data[0]
    assert first.input_file_id == "" and first.created_at is None and first.metadata == {}
    assert first.request_counts == BatchRequestCounts(total=50, completed=0, failed=0)
    assert page.data[1].request_counts is None and page.data[1].usage is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "completed"}, "batch without an 'id'"),
        ({"id": BATCH_ID}, "without a 'status'"),
        ([], "expected a JSON object"),
    ],
)
def test_malformed_batches_raise_unexpected_response(body: Any, message: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=message):
        Batch.from_dict(body)
    with pytest.raises(UnexpectedResponseError, match="'data' array"):
        BatchList.from_dict({"object": "list"})
