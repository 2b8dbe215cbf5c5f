"""UploadCompleteTrigger run to its first event against a mocked API (respx)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import respx
from airflow.sdk import serde
from airflow.triggers.base import TriggerEvent

from airflow_provider_files.triggers.files import UploadCompleteTrigger
from tests.support import FilesConnection


def file_json(file_id: str = "file-1", status: str | None = "processed", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": file_id,
        "object": "file",
        "bytes": 120,
        "created_at": int(time.time()),
        "filename": "batch.jsonl",
        "purpose": "batch",
        "status": status,
    }
    data.update(fields)
    return data


def make_trigger(conn_id: str, **overrides: Any) -> UploadCompleteTrigger:
    kwargs: dict[str, Any] = {
        "file_ids": ["file-1"],
        "files_conn_id": conn_id,
        "deadline": time.time() + 10,
        "poll_interval_s": 0.05,
        "max_poll_interval_s": 0.1,
        "not_found_grace_s": 5.0,
        "max_consecutive_errors": 3,
    }
    kwargs.update(overrides)
    return UploadCompleteTrigger(**kwargs)


async def first_event(trigger: UploadCompleteTrigger) -> dict[str, Any]:
    generator = trigger.run()
    event = await anext(generator)
    assert isinstance(event, TriggerEvent)
    with pytest.raises(StopAsyncIteration):  # exactly one event
        await anext(generator)
    # The event crosses the triggerer/worker boundary: plain JSON data only.
    json.dumps(event.payload)
    return dict(event.payload)


@pytest.mark.asyncio
async def test_success_after_uploaded(files_conn: str, api: respx.MockRouter) -> None:
    route = api.get("/files/file-1").mock(
        side_effect=[
            httpx.Response(200, json=file_json(status="uploaded")),
            httpx.Response(200, json=file_json(status="uploaded")),
            httpx.Response(200, json=file_json(status="processed")),
        ]
    )
    event = await first_event(make_trigger(files_conn))
    assert event["status"] == "success"
    assert [f["id"] for f in event["files"]] == ["file-1"]
    assert event["files"][0]["status"] == "processed"
    assert route.call_count == 3


@pytest.mark.asyncio
async def test_several_files_keep_their_order(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-b").mock(return_value=httpx.Response(200, json=file_json("file-b")))
    api.get("/files/file-a").mock(
        side_effect=[
            httpx.Response(200, json=file_json("file-a", status="uploaded")),
            httpx.Response(200, json=file_json("file-a")),
        ]
    )
    event = await first_event(make_trigger(files_conn, file_ids=["file-b", "file-a"]))
    assert event["status"] == "success"
    assert [f["id"] for f in event["files"]] == ["file-b", "file-a"]


@pytest.mark.asyncio
async def test_error_status_gives_error_event_with_status_details(
    files_conn: str, api: respx.MockRouter
) -> None:
    api.get("/files/file-1").mock(
        side_effect=[
            httpx.Response(200, json=file_json(status="uploaded")),
            httpx.Response(
                200,
                json=file_json(status="error", status_details="Line 3: custom_id 'a' is not unique."),
            ),
        ]
    )
    event = await first_event(make_trigger(files_conn))
    assert event["status"] == "error"
    assert event["file_id"] == "file-1"
    assert event["reason"] == "file_failed"
    assert "Line 3: custom_id 'a' is not unique." in event["message"]


@pytest.mark.asyncio
async def test_deleted_file_fails_at_once(files_conn: str, api: respx.MockRouter) -> None:
    route = api.get("/files/file-1").mock(return_value=httpx.Response(200, json=file_json(status="deleted")))
    event = await first_event(make_trigger(files_conn))
    assert event["status"] == "error"
    assert event["reason"] == "file_failed"
    assert "deleted" in event["message"]
    assert route.call_count == 1


@pytest.mark.asyncio
async def test_deadline_gives_timeout_event(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=httpx.Response(200, json=file_json(status="uploaded")))
    started = time.time()
    event = await first_event(make_trigger(files_conn, deadline=started + 0.4))
    assert event["status"] == "timeout"
    assert event["pending"] == ["file-1"]
    assert "file-1 has status 'uploaded'" in event["message"]
    assert time.time() >= started + 0.4


@pytest.mark.asyncio
async def test_deadline_already_past_still_checks_once(files_conn: str, api: respx.MockRouter) -> None:
    """After a triggerer restart past the deadline, one last check decides; the wait is not extended."""
    api.get("/files/file-1").mock(return_value=httpx.Response(200, json=file_json()))
    event = await first_event(make_trigger(files_conn, deadline=time.time() - 100))
    assert event["status"] == "success"

    api.get("/files/file-1").mock(return_value=httpx.Response(200, json=file_json(status="uploaded")))
    event = await first_event(make_trigger(files_conn, deadline=time.time() - 100))
    assert event["status"] == "timeout"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"error": {"message": "overloaded", "type": "server_error"}}),
        httpx.Response(429, json={"error": {"message": "slow down", "type": "rate_limit"}}),
        httpx.ConnectError("connection refused"),
    ],
    ids=["503", "429", "connect-error"],
)
async def test_transient_errors_then_success(
    files_conn: str, api: respx.MockRouter, failure: httpx.Response | Exception
) -> None:
    # The client makes 2 attempts per poll: 6 failures are 3 failed polls, the tolerated maximum.
    api.get("/files/file-1").mock(side_effect=[failure] * 6 + [httpx.Response(200, json=file_json())])
    event = await first_event(make_trigger(files_conn, max_consecutive_errors=3))
    assert event["status"] == "success"


@pytest.mark.asyncio
async def test_too_many_consecutive_errors_give_error_event_naming_the_last(
    files_conn: str, api: respx.MockRouter
) -> None:
    api.get("/files/file-1").mock(
        return_value=httpx.Response(502, json={"error": {"message": "bad gateway upstream", "type": "x"}})
    )
    event = await first_event(make_trigger(files_conn, max_consecutive_errors=2))
    assert event["status"] == "error"
    assert event["reason"] == "api_error"
    assert "3 consecutive API errors" in event["message"]
    assert "bad gateway upstream" in event["message"]


@pytest.mark.asyncio
async def test_errors_count_only_when_consecutive(files_conn: str, api: respx.MockRouter) -> None:
    error = httpx.Response(500, json={"error": {"message": "boom"}})
    uploaded = httpx.Response(200, json=file_json(status="uploaded"))
    api.get("/files/file-1").mock(
        side_effect=[error, error, uploaded, error, error, uploaded, httpx.Response(200, json=file_json())]
    )
    event = await first_event(make_trigger(files_conn, max_consecutive_errors=1))
    assert event["status"] == "success"


@pytest.mark.asyncio
@pytest.mark.parametrize("status_code", [400, 401, 403])
async def test_non_transient_error_ends_at_once(
    files_conn: str, api: respx.MockRouter, status_code: int
) -> None:
    route = api.get("/files/file-1").mock(
        return_value=httpx.Response(status_code, json={"error": {"message": "no way", "type": "invalid"}})
    )
    event = await first_event(make_trigger(files_conn))
    assert event["status"] == "error"
    assert event["reason"] == "api_error"
    assert str(status_code) in event["message"]
    assert "sk-unit-secret" not in event["message"]
    assert route.call_count == 1


@pytest.mark.asyncio
async def test_not_found_tolerated_within_grace(files_conn: str, api: respx.MockRouter) -> None:
    not_found = httpx.Response(404, json={"error": {"message": "No such File object: file-1"}})
    api.get("/files/file-1").mock(side_effect=[not_found, not_found, httpx.Response(200, json=file_json())])
    event = await first_event(make_trigger(files_conn, not_found_grace_s=5))
    assert event["status"] == "success"


@pytest.mark.asyncio
async def test_not_found_beyond_grace_fails(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        return_value=httpx.Response(404, json={"error": {"message": "No such File"}})
    )
    started = time.time()
    event = await first_event(make_trigger(files_conn, not_found_grace_s=0.3))
    assert event["status"] == "error"
    assert event["reason"] == "file_failed"
    assert "not found" in event["message"]
    assert time.time() >= started + 0.3


@pytest.mark.asyncio
async def test_grace_counts_from_missing_since_handed_over(files_conn: str, api: respx.MockRouter) -> None:
    """A 404 first seen before deferring (or before a restart) does not get a fresh grace period."""
    route = api.get("/files/file-1").mock(
        return_value=httpx.Response(404, json={"error": {"message": "nope"}})
    )
    trigger = make_trigger(files_conn, not_found_grace_s=60, missing_since={"file-1": time.time() - 61})
    event = await first_event(trigger)
    assert event["status"] == "error"
    assert route.call_count == 1


@pytest.mark.asyncio
async def test_gateway_without_status_ready_when_size_matches(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        side_effect=[
            httpx.Response(200, json=file_json(status=None, bytes=10)),
            httpx.Response(200, json={"id": "file-1", "bytes": 120}),
        ]
    )
    event = await first_event(make_trigger(files_conn, expected_bytes={"file-1": 120}))
    assert event["status"] == "success"
    assert event["files"][0]["bytes"] == 120


@pytest.mark.asyncio
async def test_missing_connection_gives_error_event(files_connection: FilesConnection) -> None:
    event = await first_event(make_trigger(files_connection.remove("no_such_files_conn")))
    assert event["status"] == "error"
    assert "no_such_files_conn" in event["message"]


def test_serialize_round_trip(files_conn: str) -> None:
    trigger = make_trigger(
        files_conn,
        file_ids=["file-1", "file-2"],
        expected_bytes={"file-1": 120},
        missing_since={"file-2": 1_700_000_000.5},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_files.triggers.files.UploadCompleteTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain data only
    serde.serialize(kwargs)  # what the task runner does when deferring (Airflow 3.2+)
    restored = serde.deserialize(serde.serialize(kwargs))
    assert isinstance(restored, dict)
    rebuilt = UploadCompleteTrigger(**restored)
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    "bad",
    [
        {"file_ids": []},
        {"file_ids": "file-1"},
        {"file_ids": ["file-1", ""]},
        {"poll_interval_s": 0},
        {"poll_interval_s": 10, "max_poll_interval_s": 1},
        {"max_consecutive_errors": -1},
    ],
)
def test_bad_arguments_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_trigger("files_unit", **bad)
