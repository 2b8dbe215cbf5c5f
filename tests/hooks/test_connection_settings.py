"""Reading an ``openai_files`` connection: env-var JSON and URI forms, defaults, bad values, http safety."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_files.api import ClientSettings, ConfigurationError
from airflow_provider_files.api.gateways import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S
from airflow_provider_files.hooks.files import FilesHook
from tests.support import FilesConnection

KEY = "sk-hook-settings-key-5150"


def settings_of(conn_id: str) -> ClientSettings:
    return FilesHook(conn_id).settings


def test_json_connection_with_every_extra(files_connection: FilesConnection) -> None:
    files_connection.define(
        "files_json",
        {
            "host": "https://gw.example.test/v1",
            "password": KEY,
            "extra": {
                "gateway": "portkey",
                "organization": "org-1",
                "project": "proj-1",
                "portkey_provider": "@openai-prod",
                "portkey_virtual_key": "vk-abc",
                "portkey_config": "pc-xyz",
                "litellm_provider": "openai",
                "api_key_header": "x-portkey-api-key",
                "headers": {"X-Trace": "t-1", "X-Number": 7},
                "timeout_s": 30,
                "max_retries": 2,
                "verify_ssl": False,
                "allow_insecure_http": False,
                "api_version": "2024-10-21",
            },
        },
    )
    settings = settings_of("files_json")
    assert settings.api_key == KEY
    assert settings.gateway == "portkey"
    assert settings.resolved_base_url() == "https://gw.example.test/v1"
    assert (settings.organization, settings.project) == ("org-1", "proj-1")
    assert (settings.portkey_provider, settings.portkey_virtual_key, settings.portkey_config) == (
        "@openai-prod",
        "vk-abc",
        "pc-xyz",
    )
    assert settings.litellm_provider == "openai"
    assert settings.api_key_header == "x-portkey-api-key"
    assert dict(settings.headers) == {"X-Trace": "t-1", "X-Number": "7"}
    assert (settings.timeout_s, settings.max_retries, settings.verify_ssl) == (30.0, 2, False)
    assert settings.effective_retry_policy().max_attempts == 3
    assert settings.api_version == "2024-10-21"
    assert settings.context == "connection 'files_json'"


def test_uri_connection_with_string_extras(files_connection: FilesConnection) -> None:
    files_connection.define(
        "files_uri",
        f"openai-files://:{KEY}@api.example.test/v1?gateway=custom&timeout_s=5&max_retries=3"
        "&verify_ssl=false&allow_insecure_http=true&headers=%7B%22X-A%22%3A%20%221%22%7D",
    )
    settings = settings_of("files_uri")
    assert settings.gateway == "custom"
    assert settings.resolved_base_url() == "https://api.example.test/v1"
    assert (settings.timeout_s, settings.max_retries) == (5.0, 3)
    assert (settings.verify_ssl, settings.allow_insecure_http) == (False, True)
    assert dict(settings.headers) == {"X-A": "1"}


def test_uri_connection_with_encoded_base_url_and_port(files_connection: FilesConnection) -> None:
    files_connection.define("files_enc", f"openai-files://:{KEY}@https%3A%2F%2Fproxy.example.test%2Fllm%2Fv1")
    assert settings_of("files_enc").resolved_base_url() == "https://proxy.example.test/llm/v1"
    files_connection.define("files_port", f"openai-files://:{KEY}@127.0.0.1:8080/v1")
    assert settings_of("files_port").resolved_base_url() == "https://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "localhost", "port": 8000, "schema": "http"}, "http://localhost:8000"),
        ({"host": "http://127.0.0.1", "port": 9000}, "http://127.0.0.1:9000"),
        ({"host": "http://127.0.0.1/v1", "port": 9000}, "http://127.0.0.1:9000/v1"),
        ({"host": "http://127.0.0.1:7000/v1", "port": 9000}, "http://127.0.0.1:7000/v1"),
        ({"host": "api.example.test", "schema": "v1"}, "https://api.example.test/v1"),
        ({"host": " https://api.example.test/v1/ "}, "https://api.example.test/v1"),
    ],
)
def test_host_port_and_schema_fields(
    files_connection: FilesConnection, fields: dict[str, Any], base_url: str
) -> None:
    files_connection.define("files_parts", {"password": KEY, **fields})
    assert settings_of("files_parts").resolved_base_url() == base_url


def test_defaults(files_connection: FilesConnection) -> None:
    files_connection.define("files_min", {"password": f" {KEY}\n"})
    settings = settings_of("files_min")
    assert settings.gateway == "openai"
    assert settings.api_key == KEY
    assert settings.resolved_base_url() == "https://api.openai.com/v1"
    assert (settings.timeout_s, settings.max_retries) == (DEFAULT_TIMEOUT_S, DEFAULT_MAX_RETRIES)
    assert (settings.verify_ssl, settings.allow_insecure_http) == (True, False)
    assert dict(settings.headers) == {}
    assert settings.portkey_virtual_key is None


def test_legacy_prefixed_extra_keys_are_read(files_connection: FilesConnection) -> None:
    files_connection.define(
        "files_legacy",
        {
            "password": KEY,
            "extra": {"extra__openai_files__gateway": "respan", "extra__openai_files__timeout_s": "9"},
        },
    )
    settings = settings_of("files_legacy")
    assert (settings.gateway, settings.timeout_s) == ("respan", 9.0)
    assert settings.resolved_base_url() == "https://api.respan.ai/api"


def test_empty_strings_from_the_form_mean_unset(files_connection: FilesConnection) -> None:
    files_connection.define(
        "files_form",
        {"password": KEY, "extra": {"gateway": "", "organization": "", "timeout_s": "", "headers": ""}},
    )
    settings = settings_of("files_form")
    assert (settings.gateway, settings.organization, settings.timeout_s) == (
        "openai",
        None,
        DEFAULT_TIMEOUT_S,
    )


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timeout_s": "fast"}, "timeout_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"max_retries": "many"}, "max_retries"),
        ({"max_retries": -2}, "max_retries"),
        ({"verify_ssl": "perhaps"}, "verify_ssl"),
        ({"allow_insecure_http": "sure"}, "allow_insecure_http"),
        ({"headers": "{not json"}, "headers"),
        ({"headers": "[1, 2]"}, "headers"),
        ({"headers": {"": "x"}}, "headers"),
        ({"gateway": "bedrock"}, "gateway"),
    ],
)
def test_bad_values_name_the_connection_and_field(
    files_connection: FilesConnection, extra: dict[str, Any], field: str
) -> None:
    files_connection.define("files_bad", {"password": KEY, "extra": extra})
    with pytest.raises(ConfigurationError) as caught:
        settings_of("files_bad")
    message = str(caught.value)
    assert "connection 'files_bad'" in message
    assert field in message


def test_unknown_gateway_lists_the_known_ones(files_connection: FilesConnection) -> None:
    files_connection.define("files_gw", {"password": KEY, "extra": {"gateway": "Bedrock"}})
    with pytest.raises(ConfigurationError, match="openai, azure, portkey, respan, litellm, custom"):
        settings_of("files_gw")


@pytest.mark.parametrize("gateway", ["azure", "litellm", "custom"])
def test_gateways_without_a_default_need_a_host(files_connection: FilesConnection, gateway: str) -> None:
    files_connection.define("files_nohost", {"password": KEY, "extra": {"gateway": gateway}})
    hook = FilesHook("files_nohost")
    with pytest.raises(ConfigurationError, match=f"'{gateway}' gateway needs a base URL.*files_nohost"):
        _ = hook.client


def test_plain_http_to_a_remote_host_is_refused(files_connection: FilesConnection) -> None:
    files_connection.define("files_http", {"host": "http://files.example.test/v1", "password": KEY})
    with pytest.raises(ConfigurationError) as caught:
        _ = FilesHook("files_http").client
    message = str(caught.value)
    assert "http://files.example.test" in message
    assert "connection 'files_http'" in message
    assert "allow_insecure_http" in message
    assert KEY not in message


def test_plain_http_to_a_remote_host_with_allow_insecure_http(files_connection: FilesConnection) -> None:
    files_connection.define(
        "files_http_ok",
        {"host": "http://files.example.test/v1", "password": KEY, "extra": {"allow_insecure_http": "true"}},
    )
    assert FilesHook("files_http_ok").client.base_url == "http://files.example.test/v1"


@pytest.mark.parametrize(
    "host",
    ["http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1", "http://127.5.6.7/v1"],
)
def test_plain_http_to_loopback_is_allowed(files_connection: FilesConnection, host: str) -> None:
    files_connection.define("files_loop", {"host": host, "password": KEY})
    assert FilesHook("files_loop").client.base_url == host


@pytest.mark.parametrize(
    "host",
    ["ftp://files.example.test", "https://user:pw@files.example.test/v1", "http://localhost.evil.test/v1"],
)
def test_other_bad_base_urls(files_connection: FilesConnection, host: str) -> None:
    files_connection.define("files_url", {"host": host, "password": KEY})
    with pytest.raises(ConfigurationError, match="files_url"):
        _ = FilesHook("files_url").client
