"""Portkey (hosted and self-hosted), masked header names and Azure API Management keys, read from a
connection: where each credential travels, and that Airflow itself hides them (``***`` in the
REST API's connection answers, which the UI's connection editor shows; masked in task logs)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from airflow.api_fastapi.core_api.datamodels.connections import ConnectionResponse
from airflow.sdk._shared.secrets_masker.secrets_masker import _secrets_masker

from airflow_provider_files.api import AuthenticationError, FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from tests.support import FilesConnection

PORTKEY_KEY = "pk-GWCONN-portkey-key-1357"
PROVIDER_KEY = "sk-GWCONN-provider-key-2468"
VIRTUAL_KEY = "vk-GWCONN-virtual-9753"
CONFIG = '{"provider": "openai", "api_key": "sk-GWCONN-in-config-8642"}'
APIM_KEY = "apim-GWCONN-subscription-1122"
LISTED_SECRET = "listed-GWCONN-value-3344"


def headers_of(
    files_connection: FilesConnection, conn_id: str, host: str | None, password: str, **extra: object
) -> dict[str, str]:
    files_connection(host, conn_id=conn_id, password=password, **extra)
    return FilesHook(conn_id).settings.default_headers()


def test_self_hosted_portkey_sends_the_provider_key_as_authorization(
    files_connection: FilesConnection,
) -> None:
    headers = headers_of(
        files_connection,
        "pk_self_hosted",
        "http://127.0.0.1:8787/v1",
        PROVIDER_KEY,
        gateway="portkey",
        portkey_provider="openai",
        portkey_custom_host="https://api.openai.com/v1",
    )
    assert headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "x-portkey-api-key" not in headers
    assert headers["x-portkey-provider"] == "openai"
    assert headers["x-portkey-custom-host"] == "https://api.openai.com/v1"


def test_hosted_portkey_key_placement(files_connection: FilesConnection) -> None:
    slug = headers_of(
        files_connection,
        "pk_hosted_slug",
        None,
        PORTKEY_KEY,
        gateway="portkey",
        portkey_provider="@openai-prod",
    )
    assert slug["x-portkey-api-key"] == PORTKEY_KEY and "Authorization" not in slug
    both = headers_of(
        files_connection,
        "pk_hosted_raw",
        "https://api.portkey.ai/v1",
        PROVIDER_KEY,
        gateway="portkey",
        portkey_provider="openai",
        portkey_api_key=PORTKEY_KEY,
    )
    assert both["x-portkey-api-key"] == PORTKEY_KEY
    assert both["Authorization"] == f"Bearer {PROVIDER_KEY}"
    virtual = headers_of(
        files_connection,
        "pk_hosted_vk",
        None,
        PORTKEY_KEY,
        gateway="portkey",
        portkey_virtual_api_key=VIRTUAL_KEY,
    )
    assert virtual["x-portkey-virtual-key"] == VIRTUAL_KEY
    legacy = headers_of(
        files_connection,
        "pk_hosted_legacy",
        None,
        PORTKEY_KEY,
        gateway="portkey",
        portkey_virtual_key=VIRTUAL_KEY,
        portkey_config="pc-1",
    )
    assert legacy["x-portkey-virtual-key"] == VIRTUAL_KEY and legacy["x-portkey-config"] == "pc-1"


def test_self_hosted_portkey_round_trip_through_the_emulator(
    emulator_factory: Callable[..., EmulatorHandle], files_connection: FilesConnection
) -> None:
    strict = emulator_factory(api_key=PROVIDER_KEY)
    files_connection(
        strict.base_url,
        conn_id="pk_round_trip",
        password=PROVIDER_KEY,
        gateway="portkey",
        portkey_provider="openai",
        portkey_custom_host="https://api.openai.com/v1",
    )
    hook = FilesHook("pk_round_trip")
    file = hook.upload_file(b'{"a": 1}\n', "batch", filename="a.jsonl")
    assert hook.get_file(file.id).bytes == 9
    hook.close()


def test_airflow_shows_every_portkey_secret_as_stars() -> None:
    extra = {
        "gateway": "portkey",
        "portkey_provider": "openai",
        "portkey_api_key": PORTKEY_KEY,
        "portkey_virtual_api_key": VIRTUAL_KEY,
        "portkey_config_secret": CONFIG,
        "portkey_custom_host": "https://api.openai.com/v1",
        "masked_headers": "X-Listed",
    }
    response = ConnectionResponse.model_validate(
        {
            "conn_id": "portkey_ui",
            "conn_type": "openai_files",
            "description": None,
            "host": "https://api.portkey.ai/v1",
            "login": None,
            "schema": None,
            "port": None,
            "password": PROVIDER_KEY,
            "extra": json.dumps(extra),
            "team_name": None,
        }
    )
    shown = json.loads(response.extra or "{}")
    assert (
        shown["portkey_api_key"]
        == shown["portkey_virtual_api_key"]
        == shown["portkey_config_secret"]
        == "***"
    )
    assert shown["portkey_provider"] == "openai" and shown["masked_headers"] == "X-Listed"
    assert response.password == "***"
    text = response.model_dump_json()
    for secret in (PORTKEY_KEY, VIRTUAL_KEY, CONFIG, PROVIDER_KEY):
        assert secret not in text


def test_every_portkey_secret_and_listed_header_is_masked_in_logs(files_connection: FilesConnection) -> None:
    files_connection(
        "https://my-apim.azure-api.net",
        conn_id="gw_masked",
        password=PROVIDER_KEY,
        gateway="portkey",
        portkey_api_key=PORTKEY_KEY,
        portkey_virtual_api_key=VIRTUAL_KEY,
        portkey_config_secret=CONFIG,
        headers={"Ocp-Apim-Subscription-Key": APIM_KEY, "X-Listed": LISTED_SECRET, "X-Team": "data-eng"},
        masked_headers='["X-Listed"]',
    )
    line = f"{PORTKEY_KEY} {PROVIDER_KEY} {VIRTUAL_KEY} {CONFIG} {APIM_KEY} {LISTED_SECRET} team=data-eng"
    settings = FilesHook("gw_masked").settings  # registers the secrets
    redacted = _secrets_masker().redact(line)
    for secret in (PORTKEY_KEY, PROVIDER_KEY, VIRTUAL_KEY, CONFIG, APIM_KEY, LISTED_SECRET):
        assert secret not in redacted
    assert "team=data-eng" in redacted
    assert PORTKEY_KEY not in repr(settings) and APIM_KEY not in repr(settings)


def test_an_echoing_server_gets_no_listed_header_into_errors(files_connection: FilesConnection) -> None:
    files_connection(
        "https://apim.example.com/v1",
        conn_id="gw_echo",
        password=PROVIDER_KEY,
        headers={"Ocp-Apim-Subscription-Key": APIM_KEY, "X-Listed": LISTED_SECRET},
        masked_headers="X-Listed",
        max_retries=0,
    )
    settings = FilesHook("gw_echo").settings

    def echo(request: httpx.Request) -> httpx.Response:
        said = f"bad key {request.headers['ocp-apim-subscription-key']} {request.headers['x-listed']}"
        return httpx.Response(401, json={"error": {"message": said}})

    client = FilesClient(settings, transport=httpx.MockTransport(echo))
    with pytest.raises(AuthenticationError) as caught:
        client.list_files()
    assert APIM_KEY not in str(caught.value) and LISTED_SECRET not in str(caught.value)


def test_a_hosted_only_feature_means_hosted_portkey(files_connection: FilesConnection) -> None:
    """A virtual key or a config id at a custom URL (a private Portkey) keeps the Portkey key header."""
    virtual = headers_of(
        files_connection,
        "pk_private_vk",
        "https://portkey.internal.example/v1",
        PORTKEY_KEY,
        gateway="portkey",
        portkey_virtual_api_key=VIRTUAL_KEY,
    )
    assert virtual["x-portkey-api-key"] == PORTKEY_KEY and "Authorization" not in virtual
    config_id = headers_of(
        files_connection,
        "pk_private_cfg",
        "https://portkey.internal.example/v1",
        PORTKEY_KEY,
        gateway="portkey",
        portkey_config_secret="pc-saved-1",
    )
    assert config_id["x-portkey-api-key"] == PORTKEY_KEY


def test_self_hosted_portkey_without_provider_or_config_is_refused(files_connection: FilesConnection) -> None:
    from airflow_provider_files.api.errors import ConfigurationError

    files_connection(
        "http://127.0.0.1:8787/v1", conn_id="pk_no_route", password=PROVIDER_KEY, gateway="portkey"
    )
    with pytest.raises(ConfigurationError, match="needs portkey_provider") as caught:
        FilesHook("pk_no_route").settings.default_headers()
    assert PROVIDER_KEY not in str(caught.value)
    json_config = headers_of(
        files_connection,
        "pk_json_cfg",
        "http://127.0.0.1:8787/v1",
        PROVIDER_KEY,
        gateway="portkey",
        portkey_config_secret='{"provider": "openai"}',
    )
    assert json_config["Authorization"] == f"Bearer {PROVIDER_KEY}"
