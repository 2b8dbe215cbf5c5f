"""Packaging: Airflow finds the provider, its connection type, the form fields and the hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_files import __version__
from airflow_provider_files.get_provider_info import (
    CONN_FIELDS,
    GATEWAY_NAMES,
    GATEWAYS,
    PORT_LABEL,
    get_provider_info,
)
from airflow_provider_files.hooks.files import FilesHook
from tests.support import TEST_API_KEY, FilesConnection

AIRFLOW = Path(sys.executable).with_name("airflow")
SENSITIVE_FIELDS = {"portkey_api_key", "portkey_virtual_api_key", "portkey_config_secret"}
# Fields Airflow masks as "***" for their names: the form would show (and save) a default as "***".
MASKED_BY_NAME = {*SENSITIVE_FIELDS, "api_key_header"}


def test_airflow_providers_list_shows_the_provider() -> None:
    result = subprocess.run(
        [str(AIRFLOW), "providers", "list", "--output", "json"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (table,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]  # log lines precede it
    providers = {p["package_name"]: p for p in json.loads(table)}
    assert "airflow-provider-files" in providers
    assert providers["airflow-provider-files"]["version"] == __version__


def test_provider_info_declares_the_connection_type() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-files"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "openai_files"
    assert conn_type["hook-class-name"] == "airflow_provider_files.hooks.files.FilesHook"
    assert conn_type["hook-name"] == FilesHook.hook_name
    assert FilesHook.conn_type == "openai_files"
    assert FilesHook.conn_name_attr == "files_conn_id"
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key", "port": PORT_LABEL}
    assert "password" not in behaviour["hidden-fields"] and "host" not in behaviour["hidden-fields"]
    # The UI's Test button round-trips the port: it must be on the form (issue 14, item 9).
    assert "port" not in behaviour["hidden-fields"]
    assert (
        CONN_FIELDS["gateway"]["schema"]["enum"]
        == GATEWAYS
        == [
            "openai",
            "azure",
            "portkey",
            "respan",
            "litellm",
            "custom",
        ]
    )


def test_every_extra_the_hook_reads_is_on_the_form() -> None:
    read_by_hook = {
        "gateway",
        "organization",
        "project",
        "api_version",
        "portkey_api_key",
        "portkey_provider",
        "portkey_virtual_api_key",  # also read under its older name portkey_virtual_key
        "portkey_config_secret",  # also read under its older name portkey_config
        "portkey_custom_host",
        "litellm_provider",
        "api_key_header",
        "headers",
        "masked_headers",
        "timeout_s",
        "max_retries",
        "verify_ssl",
        "allow_insecure_http",
    }
    assert set(CONN_FIELDS) == read_by_hook
    for name, spec in CONN_FIELDS.items():
        assert spec["label"] and spec["description"], name
        assert "type" in spec["schema"], name


def test_the_form_offers_no_null_and_fills_no_null() -> None:
    """No "null" gateway in the dropdown, and a default for every field but the secret ones, so the
    extra JSON of a new connection holds no null there (issue 14, item 11). Airflow's form shows the
    default of a field whose name looks secret as "***" and would save that text, so those have none."""
    gateway = CONN_FIELDS["gateway"]["schema"]
    assert None not in gateway["enum"] and "null" not in gateway["type"]
    assert gateway["default"] == "openai"
    assert set(gateway["values_display"]) == set(GATEWAYS) == set(GATEWAY_NAMES)
    for name, spec in CONN_FIELDS.items():
        if name in MASKED_BY_NAME:
            assert "default" not in spec["schema"], name
        else:
            assert spec["schema"].get("default") is not None, name


def test_each_gateway_field_says_its_gateway_and_sits_in_its_section() -> None:
    sections = {name: spec["schema"].get("section") for name, spec in CONN_FIELDS.items()}
    for name, section in sections.items():
        description = CONN_FIELDS[name]["description"]
        if name.startswith("portkey_"):
            assert section == "Portkey only" and description.startswith("Portkey only:"), name
        if name.startswith("litellm_"):
            assert section == "LiteLLM only" and description.startswith("LiteLLM only:"), name
    assert sections["api_version"] == "Azure OpenAI only"
    assert CONN_FIELDS["organization"]["description"].startswith("OpenAI only:")
    # Airflow's form draws no extra field at all when every field has a section.
    assert sections["gateway"] is None


def test_the_form_defaults_read_as_an_empty_connection(files_connection: FilesConnection) -> None:
    """What the UI saves for a new connection (every field at its default) reads like no extras."""
    from airflow_provider_files.api.connections import settings_from_connection

    defaults = {name: spec["schema"].get("default") for name, spec in CONN_FIELDS.items()}
    conn_id = files_connection("http://127.0.0.1:9/v1", conn_id="files_form_defaults", **defaults)
    from airflow.sdk import BaseHook

    settings = settings_from_connection(BaseHook.get_connection(conn_id))
    plain = settings_from_connection(_Conn(conn_id))
    assert settings == plain


class _Conn:
    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.host = "http://127.0.0.1:9/v1"
        self.schema = None
        self.port = None
        self.password = TEST_API_KEY
        self.extra_dejson: dict[str, object] = {}


@pytest.fixture(scope="module")
def providers_manager():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    return manager


def test_providers_manager_exposes_hook_and_form(providers_manager) -> None:
    metadata = {m.connection_type: m for m in providers_manager.iter_connection_type_hook_ui_metadata()}
    ours = metadata["openai_files"]
    assert ours.hook_name == "OpenAI-compatible Files"
    assert ours.hook_class_name == "airflow_provider_files.hooks.files.FilesHook"
    assert ours.field_behaviour["relabeling"]["password"] == "API key"
    widgets = {
        info.field_name: info
        for key, info in providers_manager._connection_form_widgets_from_metadata.items()
        if key.startswith("extra__openai_files__")
    }
    assert set(widgets) == set(CONN_FIELDS)
    assert {name for name, info in widgets.items() if info.is_sensitive} == SENSITIVE_FIELDS
    assert widgets["gateway"].field["value"] == "openai"
    assert widgets["gateway"].field["schema"]["title"] == "Gateway"
    assert widgets["allow_insecure_http"].field["value"] is False


def test_base_hook_get_hook_builds_a_files_hook(files_connection: FilesConnection) -> None:
    from airflow.sdk import BaseHook

    files_connection("http://127.0.0.1:9/v1", conn_id="files_via_get_hook", password="sk-get-hook-123456")
    hook = BaseHook.get_hook("files_via_get_hook")
    assert isinstance(hook, FilesHook)
    assert hook.files_conn_id == "files_via_get_hook"
    assert hook.settings.resolved_base_url() == "http://127.0.0.1:9/v1"


def test_every_sensor_and_trigger_module_is_declared_and_imports() -> None:
    import importlib

    info = get_provider_info()
    declared = {
        kind: [m for entry in info[kind] for m in entry["python-modules"]] for kind in ("sensors", "triggers")
    }
    assert "airflow_provider_files.sensors.batches" in declared["sensors"]
    assert "airflow_provider_files.triggers.batches" in declared["triggers"]
    for module in declared["sensors"] + declared["triggers"]:
        importlib.import_module(module)
