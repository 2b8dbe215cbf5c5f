"""Each gateway seed document (../shared/seeds/) works as it shows: same request, same answers read."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from airflow_provider_files.api import (
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    FilesClient,
)

from .support import Recorder, parse_multipart

RESPAN_KEY = "rsp-key-00112233445566"
FASTAPI_KEY = "fk-key-99887766554433"
PORTKEY_KEY = "pk-key-abcdefabcdef"
PORTKEY_VIRTUAL_KEY = "PROVIDER_VIRTUAL_KEY"

BATCH_LINES = (
    b'{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "gpt-4", "messages": [{"role": "user", "content": "Hello!"}]}}\n'
)

# Response bodies exactly as the seed documents print them.
RESPAN_FILE = {
    "id": "file-abc123",
    "object": "file",
    "bytes": 1024,
    "created_at": 1677610602,
    "filename": "batch_input.jsonl",
    "purpose": "batch",
}
FASTAPI_PENDING_UPLOAD = """{
  "id": "upload_abc123",
  "object": "upload",
  "bytes": 2147483648,
  "created_at": 1719184911,
  "filename": "training_examples.jsonl",
  "purpose": "fine-tune",
  "status": "pending",
  "expires_at": 1719127296
}"""
# The document's "upload object" example, minus the trailing comma that makes it invalid JSON.
FASTAPI_COMPLETED_UPLOAD = """{
  "id": "upload_abc123",
  "object": "upload",
  "bytes": 2147483648,
  "created_at": 1719184911,
  "filename": "training_examples.jsonl",
  "purpose": "fine-tune",
  "status": "completed",
  "expires_at": 1719127296,
  "file": {
    "id": "file-xyz321",
    "object": "file",
    "bytes": 2147483648,
    "created_at": 1719186911,
    "filename": "training_examples.jsonl",
    "purpose": "fine-tune"
  }
}"""


@pytest.fixture
def batch_file(tmp_path: Path) -> Path:
    path = tmp_path / "batch_input.jsonl"
    path.write_bytes(BATCH_LINES)
    return path


# -- Respan ----------------------------------------------------------------------------------------


def test_respan_upload_file_request_and_response(batch_file: Path) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=RESPAN_FILE))
    settings = ClientSettings(api_key=RESPAN_KEY, gateway="respan")
    with FilesClient(settings, transport=recorder.transport) as client:
        file = client.create_file(batch_file, "batch")
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == "https://api.respan.ai/api/files/"
    assert request.headers["authorization"] == f"Bearer {RESPAN_KEY}"
    parts = parse_multipart(request)
    assert [(p.name, p.filename) for p in parts] == [("purpose", None), ("file", "batch_input.jsonl")]
    assert parts[0].data == b"batch"
    assert parts[1].data == BATCH_LINES
    # The documented file object has no status: it is read, not rejected.
    assert (file.id, file.bytes, file.filename, file.purpose, file.status) == (
        "file-abc123",
        1024,
        "batch_input.jsonl",
        "batch",
        None,
    )


@pytest.mark.parametrize(
    ("status", "body", "error_class", "server_message"),
    [
        (400, {"error": "OpenAI API key not configured"}, BadRequestError, "OpenAI API key not configured"),
        (
            400,
            {
                "error": {
                    "message": "Invalid value for 'purpose': must be one of ['batch', ...]",
                    "type": "invalid_request_error",
                }
            },
            BadRequestError,
            "Invalid value for 'purpose': must be one of ['batch', ...]",
        ),
        (
            401,
            {"error": "Authentication credentials were not provided."},
            AuthenticationError,
            "Authentication credentials were not provided.",
        ),
    ],
)
def test_respan_documented_errors(
    batch_file: Path, status: int, body: dict[str, object], error_class: type[Exception], server_message: str
) -> None:
    recorder = Recorder(lambda r: httpx.Response(status, json=body))
    settings = ClientSettings(api_key=RESPAN_KEY, gateway="respan", context="connection 'respan_default'")
    with FilesClient(settings, transport=recorder.transport) as client, pytest.raises(error_class) as caught:
        client.create_file(batch_file, "batch")
    error = caught.value
    assert type(error) is error_class
    assert error.server_message == server_message  # type: ignore[attr-defined]
    assert error.status_code == status  # type: ignore[attr-defined]
    assert server_message in str(error)
    assert "connection 'respan_default'" in str(error)
    assert "https://api.respan.ai/api/files/" in str(error)
    assert len(recorder.requests) == 1  # 400 and 401 are not retried


# -- api.fastapi.ai --------------------------------------------------------------------------------


@pytest.mark.parametrize("gateway", ["custom", "openai"])
def test_fastapi_create_upload_request_and_response(gateway: str) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, content=FASTAPI_PENDING_UPLOAD.encode()))
    settings = ClientSettings(api_key=FASTAPI_KEY, gateway=gateway, base_url="https://api.fastapi.ai/v1")
    with FilesClient(settings, transport=recorder.transport) as client:
        upload = client.create_upload("training_examples.jsonl", "fine-tune", 2147483648, "text/jsonl")
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == "https://api.fastapi.ai/v1/uploads"
    assert request.headers["authorization"] == f"Bearer {FASTAPI_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "purpose": "fine-tune",
        "filename": "training_examples.jsonl",
        "bytes": 2147483648,
        "mime_type": "text/jsonl",
    }
    assert (upload.id, upload.status, upload.bytes, upload.purpose, upload.expires_at, upload.file) == (
        "upload_abc123",
        "pending",
        2147483648,
        "fine-tune",
        1719127296,
        None,
    )


def test_fastapi_completed_upload_object_parses_with_its_file() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, content=FASTAPI_COMPLETED_UPLOAD.encode()))
    settings = ClientSettings(api_key=FASTAPI_KEY, gateway="custom", base_url="https://api.fastapi.ai/v1")
    with FilesClient(settings, transport=recorder.transport) as client:
        upload = client.complete_upload("upload_abc123", ["part_1"])
    assert str(recorder.last.url) == "https://api.fastapi.ai/v1/uploads/upload_abc123/complete"
    assert upload.status == "completed"
    assert upload.file is not None
    assert (upload.file.id, upload.file.bytes, upload.file.status) == ("file-xyz321", 2147483648, None)


# -- Portkey ---------------------------------------------------------------------------------------


def test_portkey_files_create_with_virtual_key(batch_file: Path) -> None:
    portkey_file = {
        "id": "file-pk1",
        "bytes": len(BATCH_LINES),
        "created_at": 1719186911,
        "filename": "mydata.jsonl",
        "object": "file",
        "purpose": "batch",
        "status": "uploaded",
    }
    recorder = Recorder(lambda r: httpx.Response(200, json=portkey_file))
    settings = ClientSettings(api_key=PORTKEY_KEY, gateway="portkey", portkey_virtual_key=PORTKEY_VIRTUAL_KEY)
    with FilesClient(settings, transport=recorder.transport) as client:
        file = client.create_file(batch_file, "batch", filename="mydata.jsonl")
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == "https://api.portkey.ai/v1/files"
    assert request.headers["x-portkey-api-key"] == PORTKEY_KEY
    assert request.headers["x-portkey-virtual-key"] == PORTKEY_VIRTUAL_KEY
    assert "authorization" not in request.headers
    parts = parse_multipart(request)
    assert [(p.name, p.filename, p.data) for p in parts] == [
        ("purpose", None, b"batch"),
        ("file", "mydata.jsonl", BATCH_LINES),
    ]
    assert (file.id, file.status, file.bytes) == ("file-pk1", "uploaded", len(BATCH_LINES))


def test_portkey_gateway_failure_body() -> None:
    body = {
        "status": "failure",
        "message": "Either x-portkey-config or x-portkey-provider header is required",
    }
    recorder = Recorder(lambda r: httpx.Response(400, json=body))
    settings = ClientSettings(api_key=PORTKEY_KEY, gateway="portkey")
    with (
        FilesClient(settings, transport=recorder.transport) as client,
        pytest.raises(BadRequestError) as caught,
    ):
        client.list_files()
    assert caught.value.server_message == body["message"]
    assert body["message"] in str(caught.value)
