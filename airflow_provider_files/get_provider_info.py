"""Provider metadata read by Airflow's providers manager (``apache_airflow_provider`` entry point).

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``, Airflow 3.2+),
so the API server never imports the hook to draw it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_files import __version__

GATEWAYS = ["openai", "azure", "portkey", "respan", "litellm", "custom"]
GATEWAY_NAMES = {
    "openai": "OpenAI",
    "azure": "Azure OpenAI",
    "portkey": "Portkey",
    "respan": "Respan",
    "litellm": "LiteLLM proxy",
    "custom": "Custom (any OpenAI-compatible base URL)",
}

# Airflow 3.3's form cannot show a field for one gateway only: each gateway's fields get a section of
# their own (collapsed until opened) and say which gateway they are for. Every field but the secret
# ones has a default, so a new connection's extra JSON holds no nulls for them; the hook reads "" as
# unset. The fields whose names Airflow takes for secrets (the password ones, and api_key_header for
# its name) keep none: the form would show the default as "***" and save that text as the value.
PORT_LABEL = "Port (for the Test button)"
SECTION_AZURE = "Azure OpenAI only"
SECTION_PORTKEY = "Portkey only"
SECTION_LITELLM = "LiteLLM only"
SECTION_ADVANCED = "Headers, timeouts and retries (any gateway)"


def _field(
    label: str, description: str, schema: dict[str, Any], section: str | None = None
) -> dict[str, Any]:
    if section is not None:
        schema = {**schema, "section": section}
    return {"label": label, "description": description, "schema": schema}


def _text(default: str | None = "", **schema: Any) -> dict[str, Any]:
    if default is not None:
        schema["default"] = default
    return {"type": ["string", "null"], **schema}


def _secret() -> dict[str, Any]:
    return {"type": ["string", "null"], "format": "password"}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "gateway": _field(
        "Gateway",
        "Which API sits at the base URL. The sections below hold each gateway's own settings.",
        {"type": "string", "enum": GATEWAYS, "default": "openai", "values_display": GATEWAY_NAMES},
    ),
    "organization": _field(
        "Organization (OpenAI)",
        "OpenAI only: organization id, sent as OpenAI-Organization. Leave empty otherwise.",
        _text(),
    ),
    "project": _field(
        "Project (OpenAI)", "OpenAI only: project id, sent as OpenAI-Project. Leave empty otherwise.", _text()
    ),
    "api_version": _field(
        "API version",
        "Azure OpenAI only: the api-version query parameter, e.g. 2024-10-21 (empty for the Azure v1 API).",
        _text(examples=["2024-10-21"]),
        SECTION_AZURE,
    ),
    "portkey_api_key": _field(
        "Portkey API key (hosted)",
        "Portkey only: hosted Portkey's key, sent as x-portkey-api-key. With it, the API key field holds "
        "the upstream provider's key (sent as Authorization). Leave empty for a self-hosted gateway.",
        _secret(),
        SECTION_PORTKEY,
    ),
    "portkey_provider": _field(
        "Portkey provider",
        "Portkey only: x-portkey-provider: openai (self-hosted or hosted, with the provider key in the "
        "API key field) or a hosted @provider-slug.",
        _text(examples=["openai"]),
        SECTION_PORTKEY,
    ),
    "portkey_virtual_api_key": _field(
        "Portkey virtual key (hosted)",
        "Portkey only: x-portkey-virtual-key (hosted Portkey's legacy equivalent of a provider slug; a "
        "self-hosted gateway refuses it).",
        _secret(),
        SECTION_PORTKEY,
    ),
    "portkey_config_secret": _field(
        "Portkey config",
        "Portkey only: x-portkey-config, a hosted config id or a JSON config (may hold keys: shown as ***).",
        _secret(),
        SECTION_PORTKEY,
    ),
    "portkey_custom_host": _field(
        "Portkey custom host",
        "Portkey only: x-portkey-custom-host, the upstream base URL a self-hosted gateway calls, e.g. "
        "https://api.openai.com/v1.",
        _text(),
        SECTION_PORTKEY,
    ),
    "litellm_provider": _field(
        "LiteLLM provider",
        "LiteLLM only: the custom-llm-provider header (empty sends none; the proxy then uses openai).",
        _text(examples=["openai", "azure"]),
        SECTION_LITELLM,
    ),
    "api_key_header": _field(
        "API key header",
        "Any gateway: header that carries the API key instead of the gateway's default, e.g. "
        "x-litellm-api-key (Authorization sends 'Bearer <key>'). Empty: the gateway's default.",
        _text(None, examples=["Authorization", "api-key", "x-litellm-api-key"]),
        SECTION_ADVANCED,
    ),
    "headers": _field(
        "Extra headers",
        "Any gateway: JSON object of extra headers sent on every request. Values of headers whose names "
        "look secret (authorization, api-key, token, secret, subscription-key ...) are masked in logs.",
        {"type": ["object", "null"], "default": {}},
        SECTION_ADVANCED,
    ),
    "masked_headers": _field(
        "Masked header names",
        "Any gateway: more header names (JSON list or comma-separated) whose values in Extra headers are "
        "credentials, masked in logs and errors.",
        _text(),
        SECTION_ADVANCED,
    ),
    "timeout_s": _field(
        "Timeout (s)",
        "Any gateway: read/write timeout of one request, in seconds.",
        {"type": ["number", "null"], "default": 600},
        SECTION_ADVANCED,
    ),
    "max_retries": _field(
        "Max retries",
        "Any gateway: retries of a failed request (429, 5xx, connection errors) before giving up. The "
        "connection test never retries.",
        {"type": ["integer", "null"], "default": 5, "minimum": 0},
        SECTION_ADVANCED,
    ),
    "verify_ssl": _field(
        "Verify TLS",
        "Any gateway: verify the server's TLS certificate.",
        {"type": ["boolean", "null"], "default": True},
        SECTION_ADVANCED,
    ),
    "allow_insecure_http": _field(
        "Allow http:// to a remote host",
        "Any gateway: send the API key over plain http to a host that is not loopback. Off by default.",
        {"type": ["boolean", "null"], "default": False},
        SECTION_ADVANCED,
    ),
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-files",
        "name": "OpenAI-compatible Files",
        "description": "Upload files, above all Batch JSONL files, to OpenAI-compatible Files and Uploads APIs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "OpenAI-compatible Files",
                "external-doc-url": "https://platform.openai.com/docs/api-reference/files",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "OpenAI-compatible Files",
                "python-modules": [
                    "airflow_provider_files.operators.files",
                    "airflow_provider_files.operators.batches",
                    "airflow_provider_files.operators.batch_results",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "OpenAI-compatible Files",
                "python-modules": [
                    "airflow_provider_files.sensors.files",
                    "airflow_provider_files.sensors.batches",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "OpenAI-compatible Files",
                "python-modules": ["airflow_provider_files.hooks.files"],
            }
        ],
        "triggers": [
            {
                "integration-name": "OpenAI-compatible Files",
                "python-modules": [
                    "airflow_provider_files.triggers.files",
                    "airflow_provider_files.triggers.batches",
                ],
            }
        ],
        "config": {
            "openai_files": {
                "description": "Settings of the OpenAI-compatible Files provider.",
                "options": {
                    "checkpoint_folder": {
                        "description": "Folder (local path or object storage URL such as s3://bucket/prefix) "
                        "where upload checkpoints are kept so a task retry resumes its upload. Use shared "
                        "storage when retries may run on another worker (CeleryExecutor, KubernetesExecutor): "
                        "the default, $AIRFLOW_HOME/upload_checkpoints, is local.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://my-bucket/airflow/upload-checkpoints",
                        "default": None,
                    },
                    "checkpoint_retention_days": {
                        "description": "A task instance's checkpoints are removed once it has succeeded; "
                        "those left by tries that failed for good are removed after this many days (checked "
                        "when a task first uses the folder). 0 keeps them for ever.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "30",
                        "default": "7",
                    },
                    "spool_folder": {
                        "description": "Local folder where an upload from object storage (s3://, gs:// ...) "
                        "keeps its one copy of the object: it is fetched once into a temporary file there, "
                        "which validation, the md5 and the parts all read, and removed when the upload ends. "
                        "The folder needs the object's size free (checked before the first byte is fetched). "
                        "Empty: the system's temporary folder (TMPDIR).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/mnt/scratch/airflow-spool",
                        "default": None,
                    },
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "openai_files",
                "hook-class-name": "airflow_provider_files.hooks.files.FilesHook",
                "hook-name": "OpenAI-compatible Files",
                "ui-field-behaviour": {
                    # The port stays on the form: Airflow 3.3's list-view Test button posts the
                    # stored port as a number (0 when it is empty), and the API server refuses a
                    # test whose port differs from the stored one. A port it can send back as it is
                    # (0: the port of the base URL) makes that button work.
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key", "port": PORT_LABEL},
                    "placeholders": {
                        "host": "https://api.openai.com/v1",
                        "port": "0 = the port of the base URL",
                        "password": "sk-...",
                        "extra": '{"gateway": "openai"}',
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
