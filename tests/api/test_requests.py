"""The exact request of every operation, for every gateway profile, and how its answer is read."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_files.api import (
    AsyncFilesClient,
    ClientSettings,
    ConfigurationError,
    FileRange,
    FilesClient,
    UnexpectedResponseError,
    UnsupportedOperationError,
)

from .support import KEY, PROFILES, Expected, Recorder, check_request, parse_multipart

FILE_ID = "file-abc123"
UPLOAD_ID = "upload_abc123"
PART_ID = "part_def456"
CONTENT = b'{"custom_id": "r1"}\n{"custom_id": "r2"}\n'

FILE_JSON: dict[str, Any] = {
    "id": FILE_ID,
    "object": "file",
    "bytes": 120000,
    "created_at": 1677610602,
    "filename": "batch_input.jsonl",
    "purpose": "batch",
    "status": "processed",
    "status_details": None,
    "expires_at": 1680202602,
    "vendor_extra": {"region": "eu"},
}
UPLOAD_JSON: dict[str, Any] = {
    "id": UPLOAD_ID,
    "object": "upload",
    "bytes": 2147483648,
    "created_at": 1719184911,
    "filename": "training_examples.jsonl",
    "purpose": "batch",
    "status": "pending",
    "expires_at": 1719127296,
    "file": None,
}


ALL = list(PROFILES)
WITH_UPLOADS = [name for name, p in PROFILES.items() if p.uploads]
WITHOUT_UPLOADS = [name for name, p in PROFILES.items() if not p.uploads]


def answer(expected: Expected) -> Recorder:
    """A fake server for one profile; unknown routes answer 599 so a wrong path fails loudly."""

    def respond(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith(expected.root) or not path.endswith(expected.slash):
            return httpx.Response(599, text=f"unexpected path {path}")
        route = path[len(expected.root) :].rstrip("/")
        method = request.method
        if (method, route) == ("POST", "/files"):
            headers = {"location": f"{expected.origin}{expected.root}/files/{FILE_ID}"}
            return httpx.Response(expected.create_status, json=FILE_JSON, headers=headers)
        if (method, route) == ("GET", "/files"):
            second = {**FILE_JSON, "id": "file-2", "status": "uploaded"}
            page: dict[str, Any] = {"object": "list", "data": [FILE_JSON, second]}
            if expected.paginates:
                page.update(first_id=FILE_ID, last_id="file-2", has_more=False)
            return httpx.Response(200, json=page)
        if (method, route) == ("GET", f"/files/{FILE_ID}"):
            return httpx.Response(200, json=FILE_JSON, headers={"x-request-id": "req_1"})
        if (method, route) == ("DELETE", f"/files/{FILE_ID}"):
            return httpx.Response(200, json={"id": FILE_ID, "object": "file", "deleted": True})
        if (method, route) == ("GET", f"/files/{FILE_ID}/content"):
            return httpx.Response(200, content=CONTENT, headers={"content-type": "application/octet-stream"})
        if (method, route) == ("POST", "/uploads"):
            return httpx.Response(expected.create_status, json=UPLOAD_JSON)
        if (method, route) == ("POST", f"/uploads/{UPLOAD_ID}/parts"):
            part = {"id": PART_ID, "object": "upload.part", "created_at": 1719185911, "upload_id": UPLOAD_ID}
            return httpx.Response(200, json={**part, "azure_block_id": "blk=="})
        if (method, route) == ("POST", f"/uploads/{UPLOAD_ID}/complete"):
            done = {**UPLOAD_JSON, "status": "completed", "file": {**FILE_JSON, "id": "file-xyz321"}}
            return httpx.Response(200, json=done)
        if (method, route) == ("POST", f"/uploads/{UPLOAD_ID}/cancel"):
            return httpx.Response(200, json={**UPLOAD_JSON, "status": "cancelled"})
        return httpx.Response(599, text=f"unexpected route {method} {route}")

    return Recorder(respond)


def client_for(name: str) -> tuple[FilesClient, Recorder, Expected]:
    expected = PROFILES[name]
    recorder = answer(expected)
    client = FilesClient(expected.settings, transport=recorder.transport, sleep=lambda s: None)
    return client, recorder, expected


def check_file(file: Any) -> None:
    assert file.id == FILE_ID
    assert file.bytes == 120000
    assert file.created_at == 1677610602
    assert file.filename == "batch_input.jsonl"
    assert file.purpose == "batch"
    assert file.status == "processed"
    assert file.expires_at == 1680202602
    assert file.raw["vendor_extra"] == {"region": "eu"}
    assert file.to_dict()["vendor_extra"] == {"region": "eu"}


# -- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_create_file_multipart(name: str, tmp_path: Path) -> None:
    client, recorder, expected = client_for(name)
    source = tmp_path / "batch_input.jsonl"
    source.write_bytes(CONTENT)
    with client:
        result = client.create_file(source, "batch", expires_after_s=7200)
    request = recorder.last
    check_request(request, expected, "POST", "/files")
    parts = parse_multipart(request)
    assert [p.name for p in parts] == ["purpose", "expires_after[anchor]", "expires_after[seconds]", "file"]
    assert [p.data for p in parts[:3]] == [b"batch", b"created_at", b"7200"]
    assert all(p.filename is None for p in parts[:3])
    assert parts[3].filename == "batch_input.jsonl"
    assert parts[3].content_type == "application/octet-stream"
    assert parts[3].data == CONTENT
    check_file(result)


@pytest.mark.parametrize("name", ALL)
def test_create_file_from_bytes_and_fileobj_without_expiry(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        client.create_file(CONTENT, "batch", filename="from-bytes.jsonl")
        handle = io.BytesIO(b"ignored-prefix" + CONTENT)
        handle.seek(len(b"ignored-prefix"))
        second_purpose = "batch" if name == "respan" else "user_data"
        client.create_file(handle, second_purpose, filename="from-object.jsonl")
    first, second = (parse_multipart(r) for r in recorder.requests)
    assert [(p.name, p.filename, p.data) for p in first] == [
        ("purpose", None, b"batch"),
        ("file", "from-bytes.jsonl", CONTENT),
    ]
    assert [(p.name, p.filename, p.data) for p in second] == [
        ("purpose", None, second_purpose.encode()),
        ("file", "from-object.jsonl", CONTENT),
    ]
    for request in recorder.requests:
        check_request(request, expected, "POST", "/files")


@pytest.mark.parametrize("name", ALL)
def test_list_files_query(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        page = client.list_files(purpose="batch", limit=2, order="asc", after="file-0")
    paging = {"limit": "2", "order": "asc", "after": "file-0"} if expected.paginates else {}
    check_request(recorder.last, expected, "GET", "/files", {"purpose": "batch", **paging})
    assert recorder.bodies[-1] == b""
    assert [f.id for f in page.data] == [FILE_ID, "file-2"]
    check_file(page.data[0])
    assert page.data[1].status == "uploaded"
    assert page.has_more is False
    assert page.last_id == "file-2"


@pytest.mark.parametrize("name", ALL)
def test_list_files_without_arguments_sends_no_query(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        client.list_files()
    check_request(recorder.last, expected, "GET", "/files", {})


@pytest.mark.parametrize("name", ALL)
def test_retrieve_file(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        result = client.retrieve_file(FILE_ID)
    check_request(recorder.last, expected, "GET", f"/files/{FILE_ID}")
    check_file(result)


@pytest.mark.parametrize("name", ALL)
def test_delete_file(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        result = client.delete_file(FILE_ID)
    check_request(recorder.last, expected, "DELETE", f"/files/{FILE_ID}")
    assert (result.id, result.deleted) == (FILE_ID, True)


@pytest.mark.parametrize("name", ALL)
def test_download_file_content(name: str, tmp_path: Path) -> None:
    client, recorder, expected = client_for(name)
    target = io.BytesIO()
    path = tmp_path / "out.jsonl"
    with client:
        written = client.download_file(FILE_ID, target)
        written_to_path = client.download_file(FILE_ID, path)
    for request in recorder.requests:
        check_request(request, expected, "GET", f"/files/{FILE_ID}/content")
        assert request.headers["accept"] == "application/binary"
    assert written == written_to_path == len(CONTENT)
    assert target.getvalue() == CONTENT
    assert path.read_bytes() == CONTENT
    assert list(tmp_path.iterdir()) == [path]


# -- uploads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_UPLOADS)
def test_create_upload_json(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        result = client.create_upload(
            "training_examples.jsonl", "batch", 2147483648, "text/jsonl", expires_after_s=7200
        )
    request = recorder.last
    check_request(request, expected, "POST", "/uploads")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "filename": "training_examples.jsonl",
        "purpose": "batch",
        "bytes": 2147483648,
        "mime_type": "text/jsonl",
        "expires_after": {"anchor": "created_at", "seconds": 7200},
    }
    assert (result.id, result.status, result.bytes, result.file) == (UPLOAD_ID, "pending", 2147483648, None)


@pytest.mark.parametrize("name", WITH_UPLOADS)
def test_create_upload_without_expiry_has_no_expires_after(name: str) -> None:
    client, recorder, _ = client_for(name)
    with client:
        client.create_upload("a.jsonl", "batch", 10, "text/jsonl")
    assert "expires_after" not in json.loads(recorder.last.content)


@pytest.mark.parametrize("name", WITH_UPLOADS)
def test_add_upload_part_field_data(name: str, tmp_path: Path) -> None:
    client, recorder, expected = client_for(name)
    source = tmp_path / "big.bin"
    source.write_bytes(b"0123456789" * 10)
    with client:
        from_bytes = client.add_upload_part(UPLOAD_ID, b"part-bytes")
        client.add_upload_part(UPLOAD_ID, io.BytesIO(b"part-object"))
        client.add_upload_part(UPLOAD_ID, FileRange(source, 25, 30))
    sent = []
    for request in recorder.requests:
        check_request(request, expected, "POST", f"/uploads/{UPLOAD_ID}/parts")
        assert "content-length" in request.headers
        (part,) = parse_multipart(request)
        assert part.name == "data"
        assert part.filename
        sent.append(part.data)
    assert sent == [b"part-bytes", b"part-object", (b"0123456789" * 10)[25:55]]
    assert (from_bytes.id, from_bytes.upload_id, from_bytes.created_at) == (PART_ID, UPLOAD_ID, 1719185911)
    assert from_bytes.raw["azure_block_id"] == "blk=="


@pytest.mark.parametrize("name", WITH_UPLOADS)
def test_complete_upload_with_md5(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        result = client.complete_upload(
            UPLOAD_ID, ["part_1", "part_2"], md5="d41d8cd98f00b204e9800998ecf8427e"
        )
        client.complete_upload(UPLOAD_ID, ("part_1",))
    first, second = recorder.requests
    check_request(first, expected, "POST", f"/uploads/{UPLOAD_ID}/complete")
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.content) == {
        "part_ids": ["part_1", "part_2"],
        "md5": "d41d8cd98f00b204e9800998ecf8427e",
    }
    assert json.loads(second.content) == {"part_ids": ["part_1"]}
    assert result.status == "completed"
    assert result.file is not None and result.file.id == "file-xyz321"
    assert result.file.bytes == 120000


@pytest.mark.parametrize("name", WITH_UPLOADS)
def test_cancel_upload(name: str) -> None:
    client, recorder, expected = client_for(name)
    with client:
        result = client.cancel_upload(UPLOAD_ID)
    check_request(recorder.last, expected, "POST", f"/uploads/{UPLOAD_ID}/cancel")
    assert recorder.bodies[-1] == b""
    assert (result.id, result.status) == (UPLOAD_ID, "cancelled")


@pytest.mark.parametrize("name", WITHOUT_UPLOADS)
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_upload("a.jsonl", "batch", 10, "text/jsonl"),
        lambda c: c.add_upload_part(UPLOAD_ID, b"x"),
        lambda c: c.complete_upload(UPLOAD_ID, ["part_1"]),
        lambda c: c.cancel_upload(UPLOAD_ID),
    ],
    ids=["create", "part", "complete", "cancel"],
)
def test_uploads_not_supported_by_gateway(name: str, call: Any) -> None:
    client, recorder, _ = client_for(name)
    with client, pytest.raises(UnsupportedOperationError, match=f"not supported by the '{name}' gateway"):
        call(client)
    assert recorder.requests == []


# -- variants ------------------------------------------------------------------------------------


def test_litellm_key_in_x_litellm_api_key_header() -> None:
    settings = ClientSettings(
        api_key=KEY, gateway="litellm", base_url="http://localhost:4000", api_key_header="x-litellm-api-key"
    )
    recorder = Recorder(lambda r: httpx.Response(200, json=FILE_JSON))
    with FilesClient(settings, transport=recorder.transport) as client:
        client.retrieve_file(FILE_ID)
    assert recorder.last.headers["x-litellm-api-key"] == KEY
    assert "authorization" not in recorder.last.headers
    assert str(recorder.last.url) == f"http://localhost:4000/files/{FILE_ID}"


def test_azure_explicit_api_version_and_full_base_url() -> None:
    settings = ClientSettings(
        api_key=KEY,
        gateway="azure",
        base_url="https://r.openai.azure.com/openai/",
        api_version="2025-04-01-preview",
    )
    recorder = Recorder(lambda r: httpx.Response(200, json={"object": "list", "data": []}))
    with FilesClient(settings, transport=recorder.transport) as client:
        client.list_files(purpose="batch", limit=5)
    assert str(recorder.last.url) == (
        "https://r.openai.azure.com/openai/files?api-version=2025-04-01-preview&purpose=batch"
    )


def test_azure_v1_api_sends_no_api_version() -> None:
    settings = ClientSettings(api_key=KEY, gateway="azure", base_url="https://r.openai.azure.com/openai/v1")
    recorder = Recorder(lambda r: httpx.Response(200, json=FILE_JSON))
    with FilesClient(settings, transport=recorder.transport) as client:
        client.retrieve_file(FILE_ID)
    assert str(recorder.last.url) == f"https://r.openai.azure.com/openai/v1/files/{FILE_ID}"
    assert recorder.last.headers["api-key"] == KEY


def test_extra_headers_override_defaults_and_key_whitespace_is_dropped() -> None:
    settings = ClientSettings(api_key=f"  {KEY}\n", headers={"User-Agent": "my-agent/1"})
    recorder = Recorder(lambda r: httpx.Response(200, json=FILE_JSON))
    with FilesClient(settings, transport=recorder.transport) as client:
        client.retrieve_file(FILE_ID)
    assert recorder.last.headers["authorization"] == f"Bearer {KEY}"
    assert recorder.last.headers["user-agent"] == "my-agent/1"


def test_ids_are_opaque_and_quoted_as_one_segment() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={"id": "x", "object": "file"}))
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        client.retrieve_file("bGl0ZWxsbTp1bmlmaWVk==")
        client.retrieve_file("odd?id#1")
        with pytest.raises(ValueError, match="file_id"):
            client.retrieve_file("a/b")
        with pytest.raises(ValueError, match="upload_id"):
            client.cancel_upload("")
    paths = [r.url.raw_path.decode() for r in recorder.requests]
    assert paths == ["/v1/files/bGl0ZWxsbTp1bmlmaWVk==", "/v1/files/odd%3Fid%231"]


def test_iter_files_follows_has_more_and_last_id() -> None:
    pages = {
        None: {"data": [{"id": "f1"}, {"id": "f2"}], "has_more": True, "last_id": "f2"},
        "f2": {"data": [{"id": "f3"}], "has_more": False, "last_id": "f3"},
    }
    recorder = Recorder(lambda r: httpx.Response(200, json=pages[r.url.params.get("after")]))
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        ids = [f.id for f in client.iter_files(purpose="batch", page_size=2)]
    assert ids == ["f1", "f2", "f3"]
    assert [dict(r.url.params) for r in recorder.requests] == [
        {"purpose": "batch", "limit": "2"},
        {"purpose": "batch", "limit": "2", "after": "f2"},
    ]


def test_iter_files_stops_when_the_server_repeats_its_cursor() -> None:
    page = {"data": [{"id": "f1"}], "has_more": True, "last_id": "f1"}
    recorder = Recorder(lambda r: httpx.Response(200, json=page))
    client = FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport)
    with client, pytest.raises(UnexpectedResponseError, match="no new cursor"):
        list(client.iter_files())
    assert len(recorder.requests) == 2


def test_iter_files_ignores_has_more_when_the_gateway_does_not_paginate() -> None:
    page = {"data": [{"id": "f1"}], "has_more": True, "last_id": "f1"}
    recorder = Recorder(lambda r: httpx.Response(200, json=page))
    with FilesClient(ClientSettings(api_key=KEY, gateway="respan"), transport=recorder.transport) as client:
        assert [f.id for f in client.iter_files()] == ["f1"]
    assert len(recorder.requests) == 1


# -- parsing -------------------------------------------------------------------------------------


def test_minimal_and_null_fields_are_tolerated() -> None:
    bodies = {
        "/v1/files/file-min": {"id": "file-min"},
        "/v1/files/file-null": {"id": "file-null", "bytes": None, "status": None, "created_at": "soon"},
        "/v1/files": {"data": [{"id": "only-id"}]},
    }
    recorder = Recorder(lambda r: httpx.Response(200, json=bodies[r.url.path]))
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        minimal = client.retrieve_file("file-min")
        nulls = client.retrieve_file("file-null")
        page = client.list_files()
    assert (minimal.id, minimal.bytes, minimal.status, minimal.filename, minimal.expires_at) == (
        "file-min",
        None,
        None,
        None,
        None,
    )
    assert (nulls.bytes, nulls.created_at) == (None, None)
    assert nulls.raw["created_at"] == "soon"
    assert (page.has_more, page.first_id, page.last_id) == (False, "only-id", "only-id")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"object": "file"}, "without an 'id'"),
        ([1, 2], "expected a JSON object"),
        ({"object": "list"}, "'data' array"),
    ],
)
def test_malformed_success_bodies_raise_unexpected_response(body: Any, message: str) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=body))
    with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
        call = client.list_files if "data" in message else lambda: client.retrieve_file(FILE_ID)
        with pytest.raises(UnexpectedResponseError, match=message):
            call()


def test_non_json_success_body_raises_unexpected_response() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, text="<html>login page</html>"))
    client = FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport)
    with client, pytest.raises(UnexpectedResponseError, match=r"not JSON.*login page"):
        client.retrieve_file(FILE_ID)


# -- async twin ----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ALL)
async def test_async_client_sends_the_same_requests(name: str) -> None:
    expected = PROFILES[name]
    recorder = answer(expected)

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return recorder(request)

    target = io.BytesIO()
    async with AsyncFilesClient(expected.settings, transport=httpx.MockTransport(handler)) as client:
        created = await client.create_file(CONTENT, "batch", filename="a.jsonl", expires_after_s=3600)
        retrieved = await client.retrieve_file(FILE_ID)
        page = await client.list_files(purpose="batch", limit=3)
        deleted = await client.delete_file(FILE_ID)
        written = await client.download_file(FILE_ID, target)
        if expected.uploads:
            upload = await client.create_upload("a.jsonl", "batch", 3, "text/jsonl")
            part = await client.add_upload_part(UPLOAD_ID, io.BytesIO(b"abc"))
            done = await client.complete_upload(UPLOAD_ID, [PART_ID], md5="abc")
            cancelled = await client.cancel_upload(UPLOAD_ID)
            assert (upload.id, part.id, done.status, cancelled.status) == (
                UPLOAD_ID,
                PART_ID,
                "completed",
                "cancelled",
            )
    check_file(created)
    check_file(retrieved)
    assert [f.id for f in page.data] == [FILE_ID, "file-2"]
    assert deleted.deleted is True
    assert written == len(CONTENT) and target.getvalue() == CONTENT
    requests = recorder.requests
    paging = {"limit": "3"} if expected.paginates else {}
    check_request(requests[0], expected, "POST", "/files")
    assert [p.name for p in parse_multipart(requests[0])] == [
        "purpose",
        "expires_after[anchor]",
        "expires_after[seconds]",
        "file",
    ]
    check_request(requests[1], expected, "GET", f"/files/{FILE_ID}")
    check_request(requests[2], expected, "GET", "/files", {"purpose": "batch", **paging})
    check_request(requests[3], expected, "DELETE", f"/files/{FILE_ID}")
    check_request(requests[4], expected, "GET", f"/files/{FILE_ID}/content")
    assert requests[4].headers["accept"] == "application/binary"
    if expected.uploads:
        check_request(requests[5], expected, "POST", "/uploads")
        check_request(requests[6], expected, "POST", f"/uploads/{UPLOAD_ID}/parts")
        assert parse_multipart(requests[6])[0].data == b"abc"
        check_request(requests[7], expected, "POST", f"/uploads/{UPLOAD_ID}/complete")
        assert json.loads(requests[7].content) == {"part_ids": [PART_ID], "md5": "abc"}
        check_request(requests[8], expected, "POST", f"/uploads/{UPLOAD_ID}/cancel")
    assert len(requests) == (9 if expected.uploads else 5)


@pytest.mark.parametrize(
    ("name", "purpose"),
    [
        ("openai", "batches"),
        ("openai", ""),
        ("respan", "fine-tune"),
        ("litellm", "evals"),
        ("azure", "fine_tune"),
    ],
)
def test_unknown_purpose_is_refused_before_sending(name: str, purpose: str) -> None:
    client, recorder, _ = client_for(name)
    with client, pytest.raises(ConfigurationError, match="purpose"):
        client.create_file(CONTENT, purpose, filename="x.jsonl")
    if client.endpoints.profile.supports_uploads:
        with pytest.raises(ConfigurationError, match="purpose"):
            client.create_upload("x.jsonl", purpose, 10, "text/jsonl")
    assert recorder.requests == []


def test_custom_gateway_lets_the_server_judge_the_purpose() -> None:
    client, recorder, _ = client_for("custom")
    with client:
        client.create_file(CONTENT, "my-own-purpose", filename="x.jsonl")
    assert [p.data for p in parse_multipart(recorder.requests[0]) if p.name == "purpose"] == [
        b"my-own-purpose"
    ]
