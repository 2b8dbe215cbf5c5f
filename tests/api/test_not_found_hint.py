"""A 404 names the likely cause: a missing API prefix only when the base URL has none."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_files.api import ClientSettings, FilesClient, NotFoundError


def not_found(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"detail": "Not Found"})


def test_a_route_missing_behind_a_right_base_url_gets_no_prefix_hint() -> None:
    client = FilesClient(
        ClientSettings(api_key="sk-hint-123456", base_url="http://127.0.0.1:4000/v1", max_retries=0),
        transport=httpx.MockTransport(not_found),
    )
    with pytest.raises(NotFoundError) as caught:
        client.create_upload("a.jsonl", "batch", 3, "text/jsonl")
    message = str(caught.value)
    assert "/v1/uploads" in message
    assert "API prefix" not in message
    assert "offers this route" in message


def test_a_base_url_without_prefix_gets_the_prefix_hint() -> None:
    client = FilesClient(
        ClientSettings(api_key="sk-hint-123456", base_url="http://127.0.0.1:4000", max_retries=0),
        transport=httpx.MockTransport(not_found),
    )
    with pytest.raises(NotFoundError, match=r"API prefix \(e.g. /v1\)"):
        client.list_files()
