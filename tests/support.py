"""Helpers shared by every test folder; fixtures live in ``conftest.py`` files.

Layout of ``tests/``: every folder is a package; a folder's shared helpers live in its
``support.py`` (imported as ``from .support import ...``), its fixtures in its ``conftest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle

DEFAULT_CONN_ID = "openai_files_default"
TEST_API_KEY = "sk-files-tests"


def connection_variable(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class FilesConnection:
    """Defines Airflow connections through their ``AIRFLOW_CONN_*`` variables for one test.

    ``files_connection(emulator)`` points the default connection at an emulator (with its key);
    ``files_connection("https://host/v1", conn_id="x", password="sk-...", gateway="portkey")``
    sets host, key and extras; ``files_connection.define(conn_id, value)`` takes any JSON
    fields or a URI. Each call returns the connection id.

    :param monkeypatch: the test's monkeypatch, which removes the variables afterwards.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __call__(
        self,
        host: str | EmulatorHandle | None,
        *,
        conn_id: str = DEFAULT_CONN_ID,
        password: str | None = None,
        **extra: Any,
    ) -> str:
        if isinstance(host, EmulatorHandle):
            password = password or host.api_key
            host = host.base_url
        value: dict[str, Any] = {"password": password or TEST_API_KEY}
        if host is not None:
            value["host"] = host
        if extra:
            value["extra"] = extra
        return self.define(conn_id, value)

    def define(self, conn_id: str, value: str | Mapping[str, Any]) -> str:
        """Connection ``conn_id`` from a URI or JSON fields (``conn_type`` defaults to ``openai_files``)."""
        text = value if isinstance(value, str) else json.dumps({"conn_type": "openai_files", **value})
        self._monkeypatch.setenv(connection_variable(conn_id), text)
        return conn_id

    def remove(self, conn_id: str) -> str:
        """Make sure no connection ``conn_id`` is defined."""
        self._monkeypatch.delenv(connection_variable(conn_id), raising=False)
        return conn_id


# -- batches ----------------------------------------------------------------------------------------

CHAT_ENDPOINT: Final = "/v1/chat/completions"


def chat_request_line(custom_id: str, model: str = "gpt-4o-mini") -> bytes:
    """One Batch JSONL line for the chat completions endpoint."""
    body = {"model": model, "messages": [{"role": "user", "content": f"hello {custom_id}"}]}
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT_ENDPOINT, "body": body}
    return json.dumps(line).encode() + b"\n"


def chat_requests(count: int, prefix: str = "r") -> bytes:
    """``count`` chat completion requests, ids ``r0``, ``r1`` ..."""
    return b"".join(chat_request_line(f"{prefix}{i}") for i in range(count))


# Lines 2 and 3 break the rules: invalid JSON, a custom_id seen before.
BAD_REQUESTS = chat_request_line("a") + b"{not json\n" + chat_request_line("a") + chat_request_line("b")


def start_batch(conn_id: str, payload: bytes) -> str:
    """Upload ``payload`` and create a chat completions batch of it through a hook; the batch id."""
    from airflow_provider_files.hooks.files import FilesHook

    hook = FilesHook(conn_id)
    try:
        file_id = hook.upload_file(payload, "batch", filename="requests.jsonl").id
        return hook.create_batch(file_id, CHAT_ENDPOINT).id
    finally:
        hook.close()
