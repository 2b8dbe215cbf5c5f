"""Provider metadata read by Airflow's providers manager (``apache_airflow_provider`` entry point).

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``, Airflow 3.2+),
so the API server never imports the hook to draw it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_files import __version__

GATEWAYS = ["openai", "azure", "portkey", "respan", "litellm", "custom"]


def _field(label: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "gateway": _field(
        "Gateway",
        "Which API sits at the base URL: openai, azure, portkey, respan, litellm or custom.",
        {"type": ["string", "null"], "enum": [*GATEWAYS, None], "default": "openai"},
    ),
    "organization": _field(
        "Organization", "OpenAI organization id, sent as OpenAI-Organization.", {"type": ["string", "null"]}
    ),
    "project": _field("Project", "OpenAI project id, sent as OpenAI-Project.", {"type": ["string", "null"]}),
    "api_version": _field(
        "API version (Azure)",
        "api-version query parameter for Azure OpenAI (empty for the Azure v1 API).",
        {"type": ["string", "null"]},
    ),
    "portkey_api_key": _field(
        "Portkey API key (hosted)",
        "Hosted Portkey's key, sent as x-portkey-api-key. With it, the API key field holds the upstream "
        "provider's key (sent as Authorization). Leave empty for a self-hosted gateway.",
        {"type": ["string", "null"], "format": "password"},
    ),
    "portkey_provider": _field(
        "Portkey provider",
        "x-portkey-provider: openai (self-hosted or hosted, with the provider key in the API key field) "
        "or a hosted @provider-slug.",
        {"type": ["string", "null"]},
    ),
    "portkey_virtual_api_key": _field(
        "Portkey virtual key (hosted)",
        "x-portkey-virtual-key (hosted Portkey's legacy equivalent of a provider slug; a self-hosted "
        "gateway refuses it).",
        {"type": ["string", "null"], "format": "password"},
    ),
    "portkey_config_secret": _field(
        "Portkey config",
        "x-portkey-config: a hosted config id or a JSON config (may hold keys: shown as ***).",
        {"type": ["string", "null"], "format": "password"},
    ),
    "portkey_custom_host": _field(
        "Portkey custom host",
        "x-portkey-custom-host: the upstream base URL a self-hosted gateway calls, e.g. "
        "https://api.openai.com/v1.",
        {"type": ["string", "null"]},
    ),
    "litellm_provider": _field(
        "LiteLLM provider",
        "custom-llm-provider header for a LiteLLM proxy (default openai).",
        {"type": ["string", "null"]},
    ),
    "api_key_header": _field(
        "API key header",
        "Header that carries the API key instead of the gateway's default, e.g. x-litellm-api-key "
        "(Authorization sends 'Bearer <key>').",
        {"type": ["string", "null"]},
    ),
    "headers": _field(
        "Extra headers",
        "JSON object of extra headers sent on every request. Values of headers whose names look secret "
        "(authorization, api-key, token, secret, subscription-key ...) are masked in logs.",
        {"type": ["object", "null"], "format": "json"},
    ),
    "masked_headers": _field(
        "Masked header names",
        "More header names (JSON list or comma-separated) whose values in Extra headers are credentials, "
        "masked in logs and errors.",
        {"type": ["string", "null"]},
    ),
    "timeout_s": _field(
        "Timeout (s)",
        "Read/write timeout of one request, in seconds.",
        {"type": ["number", "null"], "default": 600},
    ),
    "max_retries": _field(
        "Max retries",
        "Retries of a failed request (429, 5xx, connection errors) before giving up.",
        {"type": ["integer", "null"], "default": 5, "minimum": 0},
    ),
    "verify_ssl": _field(
        "Verify TLS", "Verify the server's TLS certificate.", {"type": ["boolean", "null"], "default": True}
    ),
    "allow_insecure_http": _field(
        "Allow http:// to a remote host",
        "Send the API key over plain http to a host that is not loopback. Off by default.",
        {"type": ["boolean", "null"], "default": False},
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
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "openai_files",
                "hook-class-name": "airflow_provider_files.hooks.files.FilesHook",
                "hook-name": "OpenAI-compatible Files",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.openai.com/v1",
                        "password": "sk-...",
                        "extra": '{"gateway": "openai"}',
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
