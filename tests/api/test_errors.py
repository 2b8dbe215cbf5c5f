"""One error hierarchy: class per status, fields from every gateway's error shape, useful messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_files.api import (
    ApiStatusError,
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    ConflictError,
    FilesApiError,
    FilesClient,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnprocessableEntityError,
)

from .support import Recorder

KEY = "sk-errors-test-key-777"
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def fail_with(
    status: int,
    body: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    gateway: str = "openai",
    base_url: str | None = None,
    context: str | None = "connection 'files_prod'",
) -> ApiStatusError:
    def respond(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    recorder = Recorder(respond)
    settings = ClientSettings(
        api_key=KEY, gateway=gateway, base_url=base_url, retry_policy=ONE_ATTEMPT, context=context
    )
    with (
        FilesClient(settings, transport=recorder.transport) as client,
        pytest.raises(ApiStatusError) as caught,
    ):
        client.retrieve_file("file-1")
    return caught.value


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (418, ApiStatusError),
        (405, ApiStatusError),
    ],
)
def test_status_maps_to_its_class(status: int, error_class: type[ApiStatusError]) -> None:
    error = fail_with(status, {"error": {"message": "boom"}})
    assert type(error) is error_class
    assert isinstance(error, FilesApiError)
    assert error.status_code == status


def test_openai_error_fields_and_request_id() -> None:
    body = {
        "error": {
            "message": "Invalid file format for Batch API. Must be .jsonl",
            "type": "invalid_request_error",
            "param": "file",
            "code": "invalid_file_format",
        }
    }
    error = fail_with(400, body, headers={"x-request-id": "req_abc123"})
    assert (error.error_type, error.code, error.param, error.request_id) == (
        "invalid_request_error",
        "invalid_file_format",
        "file",
        "req_abc123",
    )
    assert error.server_message == "Invalid file format for Batch API. Must be .jsonl"
    assert str(error) == error.message
    assert str(error) == (
        "400 Bad Request from GET https://api.openai.com/v1/files/file-1 (connection 'files_prod'): "
        "Invalid file format for Batch API. Must be .jsonl [code=invalid_file_format] [param=file] "
        "[request id req_abc123]"
    )


def test_quota_429_is_its_own_class_with_a_hint() -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }
    error = fail_with(429, body)
    assert type(error) is QuotaExceededError
    assert isinstance(error, RateLimitError)
    assert "retrying will not help" in str(error)


def test_auth_failure_names_the_connection_and_what_to_check() -> None:
    error = fail_with(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
    text = str(error)
    assert "connection 'files_prod'" in text
    assert "Check the API key (the connection's password)" in text
    assert "gateway" in text


def test_not_found_hints_at_the_base_url() -> None:
    error = fail_with(
        404, {"error": {"message": "No such File object: file-1", "type": "invalid_request_error"}}
    )
    assert "No such File object: file-1" in str(error)
    assert "/v1" in str(error).split("Check", 1)[1]


def test_respan_string_error() -> None:
    error = fail_with(401, {"error": "Authentication credentials were not provided."}, gateway="respan")
    assert type(error) is AuthenticationError
    assert (error.error_type, error.code, error.param) == (None, None, None)
    assert error.server_message == "Authentication credentials were not provided."
    assert "https://api.respan.ai/api/files/file-1/" in str(error)


def test_portkey_failure_shape() -> None:
    body = {"status": "failure", "message": "Invalid virtual key"}
    error = fail_with(401, body, gateway="portkey")
    assert error.server_message == "Invalid virtual key"
    assert type(error) is AuthenticationError


def test_azure_error_shape_and_query_dropped_from_message() -> None:
    body = {
        "error": {
            "code": "jsonlValidationFailed",
            "message": "Validation of jsonl file failed.",
            "target": "file",
            "details": [],
            "innererror": {"code": "invalidPayload"},
        }
    }
    error = fail_with(400, body, gateway="azure", base_url="https://res.openai.azure.com")
    assert (error.code, error.error_type, error.server_message) == (
        "jsonlValidationFailed",
        None,
        "Validation of jsonl file failed.",
    )
    assert "GET https://res.openai.azure.com/openai/files/file-1 (connection" in str(error)
    assert "api-version" not in str(error)


def test_litellm_none_strings_become_none() -> None:
    body = {"error": {"message": "Invalid purpose: evals", "type": "None", "param": "None", "code": "400"}}
    error = fail_with(400, body, gateway="litellm", base_url="http://localhost:4000")
    assert (error.error_type, error.param, error.code) == (None, None, "400")
    assert "[param=" not in str(error)
    assert error.server_message == "Invalid purpose: evals"


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (502, "<html><body>502 Bad Gateway nginx</body></html>", "502 Bad Gateway nginx"),
        (500, "", "Internal Server Error"),
        (503, "upstream connect error " + "x" * 2000, "upstream connect error"),
    ],
)
def test_non_json_error_bodies_fall_back_to_the_text(status: int, text: str, expected: str) -> None:
    error = fail_with(status, text=text)
    assert type(error) is ServerError
    assert expected in error.server_message  # type: ignore[operator]
    assert len(error.server_message or "") <= 500
    assert expected in str(error)


def test_json_without_error_key_falls_back_to_the_raw_body() -> None:
    error = fail_with(400, {"detail": "Not authenticated"})
    assert error.server_message == '{"detail":"Not authenticated"}'


def test_message_without_context() -> None:
    error = fail_with(403, {"error": {"message": "Project not allowed"}}, context=None)
    assert str(error).startswith(
        "403 Forbidden from GET https://api.openai.com/v1/files/file-1: Project not allowed"
    )
    assert "Check the key's permissions, organization and project" in str(error)
