"""Inputs refused before a byte is sent: header text with line breaks, ids that would change the
URL, content types that would break the multipart body. Messages never quote a credential."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_files.api import ApiConnectionError, ClientSettings, ConfigurationError, FilesClient

from .support import Recorder

KEY = "sk-proj-REFUSED-7a6b5c4d3e2f1a0b"
FILE_JSON = {"id": "file-1", "object": "file"}


def recorder() -> Recorder:
    return Recorder(lambda r: httpx.Response(200, json=FILE_JSON))


# -- header text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"api_key": KEY + "\r\nX-Injected: 1"}, "api_key"),
        ({"api_key": "sk-proj-REFUSED\n" + KEY}, "api_key"),
        ({"api_key": KEY + "\x00"}, "api_key"),
        ({"gateway": "portkey", "portkey_virtual_key": "vk-REFUSED-1234\n" + KEY}, "portkey_virtual_key"),
        ({"gateway": "portkey", "portkey_config": '{"a":\n"' + KEY + '"}'}, "portkey_config"),
        ({"headers": {"X-Gateway-Token": "tok\r\n" + KEY}}, "header 'X-Gateway-Token'"),
        ({"headers": {"X-Api-Key\r\nX-Evil": KEY}}, "a header name"),
        ({"organization": "org-1\nX: y"}, "organization"),
        ({"api_key": KEY + "\u2019"}, "non-ASCII"),
    ],
)
def test_header_text_with_line_breaks_is_refused_when_settings_are_built(
    fields: dict[str, Any], named: str
) -> None:
    arguments = {"api_key": KEY, "context": "connection 'refused'", **fields}
    with pytest.raises(ConfigurationError) as caught:
        ClientSettings(**arguments)
    message = str(caught.value)
    assert named in message and "connection 'refused'" in message
    assert KEY[:12] not in message and KEY[-8:] not in message
    assert KEY[:12] not in repr(caught.value)


def test_a_key_pasted_with_a_trailing_newline_is_still_accepted() -> None:
    rec = recorder()
    with FilesClient(ClientSettings(api_key=f" {KEY}\r\n"), transport=rec.transport) as client:
        client.retrieve_file("file-1")
    assert rec.last.headers["authorization"] == f"Bearer {KEY}"


def test_text_fields_that_are_not_headers_may_be_any_script() -> None:
    settings = ClientSettings(
        api_key=KEY, base_url="https://gateway.example.test/v1", context="connexión 'ñ'"
    )
    assert settings.context == "connexión 'ñ'"


# -- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_id", [".", "..", "a\\b", "file 1", "file-1\n", "file-1\r\nX: y", "\x00"])
def test_ids_that_would_change_the_url_are_refused(file_id: str) -> None:
    rec = recorder()
    with FilesClient(ClientSettings(api_key=KEY), transport=rec.transport) as client:
        for call in (client.retrieve_file, client.delete_file, client.cancel_upload, client.retrieve_batch):
            with pytest.raises(ValueError, match="must be an id"):
                call(file_id)
        with pytest.raises(ValueError, match="must be an id"):
            client.download_file(file_id, __import__("io").BytesIO())
    assert rec.requests == []


def test_delete_of_dot_no_longer_becomes_delete_of_the_collection() -> None:
    rec = recorder()
    with FilesClient(ClientSettings(api_key=KEY), transport=rec.transport) as client:
        with pytest.raises(ValueError):
            client.delete_file(".")
        client.retrieve_file(".hidden-but-fine")
    assert [r.url.path for r in rec.requests] == ["/v1/files/.hidden-but-fine"]


# -- content types -------------------------------------------------------------------------------


@pytest.mark.parametrize("mime_type", ["text/jsonl\r\nX-Injected: 1", "text/jsonl\n", "text/jsonl\x00"])
def test_content_types_with_line_breaks_are_refused(mime_type: str) -> None:
    rec = recorder()
    with FilesClient(ClientSettings(api_key=KEY), transport=rec.transport) as client:
        with pytest.raises(ConfigurationError, match="mime_type"):
            client.create_upload("a.jsonl", "batch", 3, mime_type)
        with pytest.raises(ConfigurationError, match="content_type"):
            client.create_file(b"abc", "batch", filename="a.jsonl", content_type=mime_type)
    assert rec.requests == []


def test_a_request_httpx_cannot_write_is_not_retried() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError("Illegal header value")

    rec = Recorder(respond)
    sleeps: list[float] = []
    client = FilesClient(ClientSettings(api_key=KEY), transport=rec.transport, sleep=sleeps.append)
    with client, pytest.raises(ApiConnectionError, match="could not be written") as caught:
        client.retrieve_file("file-1")
    assert (len(rec.requests), sleeps) == (1, [])
    assert not caught.value.retryable
