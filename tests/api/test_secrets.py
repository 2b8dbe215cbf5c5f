"""Credentials never reach a log record, an exception's text or repr, or a settings/client repr."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable

import httpx
import pytest

from airflow_provider_files.api import (
    ApiConnectionError,
    AuthenticationError,
    ClientSettings,
    FilesApiError,
    FilesClient,
    RetryPolicy,
)

from .support import Recorder

# Values used by no other test, so that no secrets masker set up elsewhere can hide a leak here.
KEY = "sk-proj-LEAKCHECK-4f9a1c2e7b"
VIRTUAL_KEY = "vk-LEAKCHECK-portkey-31337"
HEADER_SECRET = "hdr-LEAKCHECK-token-8080"
SECRETS = (KEY, VIRTUAL_KEY, HEADER_SECRET)


def settings(api_key: str = KEY) -> ClientSettings:
    return ClientSettings(
        api_key=api_key,
        gateway="portkey",
        portkey_provider="openai",
        portkey_virtual_key=VIRTUAL_KEY,
        headers={"X-Gateway-Token": HEADER_SECRET, "X-Tenant": "team-a"},
        retry_policy=RetryPolicy(max_attempts=3, random_fraction=lambda: 0.0),
        context="connection 'leak_check'",
    )


def echo_secrets(request: httpx.Request) -> str:
    """What a careless server says back: every credential it received."""
    return (
        f"Incorrect API key provided: {request.headers.get('x-portkey-api-key')}. "
        f"virtual key {request.headers.get('x-portkey-virtual-key')} "
        f"token {request.headers.get('x-gateway-token')}"
    )


def assert_clean(texts: Iterable[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret leaked into: {text[:300]}"


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    return texts


def error_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    texts += [str(value) for value in vars(error).values()]
    return texts


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "airflow_provider_files"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_auth_failure_echoing_the_key_leaks_nothing(debug_logs: pytest.LogCaptureFixture) -> None:
    calls = iter([503, 401])

    def respond(request: httpx.Request) -> httpx.Response:
        status = next(calls)
        body = {
            "error": {
                "message": echo_secrets(request),
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
        return httpx.Response(status, json=body, headers={"x-request-id": "req_1", "x-echo": KEY})

    recorder = Recorder(respond)
    client = FilesClient(settings(), transport=recorder.transport, sleep=lambda s: None)
    with client, pytest.raises(AuthenticationError) as caught:
        client.retrieve_file("file-1")
    assert len(recorder.requests) == 2
    assert recorder.last.headers["x-portkey-api-key"] == KEY  # the key did travel
    error = caught.value
    assert "***" in error.server_message  # type: ignore[operator]
    assert "connection 'leak_check'" in str(error)
    assert any("retry 1 of 2" in text for text in log_texts(debug_logs))  # the retry was logged
    assert_clean(error_texts(error))
    assert_clean(log_texts(debug_logs))
    assert_clean([repr(client), str(client), repr(client.settings), str(client.settings)])


def test_non_json_error_echoing_the_key_leaks_nothing(debug_logs: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(lambda r: httpx.Response(401, text=f"<html>bad key {KEY} / {VIRTUAL_KEY}</html>"))
    client = FilesClient(settings(), transport=recorder.transport, sleep=lambda s: None)
    with client, pytest.raises(AuthenticationError) as caught:
        client.list_files()
    assert_clean(error_texts(caught.value))
    assert_clean(log_texts(debug_logs))


def test_transport_error_mentioning_the_key_leaks_nothing(debug_logs: pytest.LogCaptureFixture) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused header {HEADER_SECRET} for key {KEY}")

    client = FilesClient(settings(), transport=Recorder(respond).transport, sleep=lambda s: None)
    with client, pytest.raises(ApiConnectionError) as caught:
        client.delete_file("file-1")
    assert "ConnectError" in str(caught.value)
    assert_clean(error_texts(caught.value))
    assert_clean(log_texts(debug_logs))


def test_key_pasted_with_a_newline_is_sent_trimmed_and_masked(debug_logs: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(lambda r: httpx.Response(401, json={"error": {"message": echo_secrets(r)}}))
    client = FilesClient(settings(api_key=KEY + "\n"), transport=recorder.transport)
    with client, pytest.raises(AuthenticationError) as caught:
        client.retrieve_file("file-1")
    assert recorder.last.headers["x-portkey-api-key"] == KEY
    assert_clean(error_texts(caught.value))
    assert_clean(log_texts(debug_logs))


def test_settings_repr_and_secret_values() -> None:
    value = settings()
    assert_clean([repr(value), str(value), repr(value.with_retry_policy(RetryPolicy()))])
    assert "portkey" in repr(value)
    assert set(value.secret_values()) == set(SECRETS)
    assert "team-a" not in value.secret_values()


def test_every_error_class_is_a_files_api_error() -> None:
    assert issubclass(AuthenticationError, FilesApiError)
    assert issubclass(ApiConnectionError, FilesApiError)


@pytest.mark.parametrize("key", ["1", "ab", "sk-1234"])
def test_a_short_key_is_masked_only_as_a_whole_token(key: str) -> None:
    """A key too short to be unique ("sk-1234" is LiteLLM's documented example) is masked where it
    stands alone, so that "401" or "request 1001" stay readable."""

    def respond(request: httpx.Request) -> httpx.Response:
        message = f"Incorrect API key provided: {key}. You sent 'Bearer {key}'. See docs/1001-{key}x"
        return httpx.Response(401, json={"error": {"message": message}}, headers={"x-request-id": "req_101"})

    settings = ClientSettings(api_key=key, retry_policy=RetryPolicy(max_attempts=1))
    client = FilesClient(settings, transport=Recorder(respond).transport)
    with client, pytest.raises(AuthenticationError) as caught:
        client.retrieve_file("file-1")
    text = str(caught.value)
    assert text.startswith("401 Unauthorized from GET https://api.openai.com/v1/files/file-1")
    assert "provided: ***. You sent 'Bearer ***'" in text
    assert f"docs/1001-{key}x" in text  # inside a longer token: not the key
    assert "[request id req_101]" in text


def test_a_key_of_eight_characters_or_more_is_masked_anywhere() -> None:
    key = "sk-12345"
    recorder = Recorder(lambda r: httpx.Response(401, json={"error": {"message": f"bad key x{key}x"}}))
    settings = ClientSettings(api_key=key, retry_policy=RetryPolicy(max_attempts=1))
    client = FilesClient(settings, transport=recorder.transport)
    with client, pytest.raises(AuthenticationError) as caught:
        client.retrieve_file("file-1")
    assert key not in str(caught.value) and "x***x" in str(caught.value)
