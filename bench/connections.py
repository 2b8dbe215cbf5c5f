"""Airflow connections of both suites, as the ``AIRFLOW_CONN_*`` variables Airflow reads them from."""

from __future__ import annotations

import json
from typing import Any


def connection_json(base_url: str, api_key: str, *, conn_type: str = "openai_files", **extra: Any) -> str:
    """A connection (``openai_files`` unless told) as the JSON an ``AIRFLOW_CONN_*`` variable holds."""
    if conn_type == "openai_files":
        extra.setdefault("gateway", "openai")
    return json.dumps({"conn_type": conn_type, "host": base_url, "password": api_key, "extra": extra})


def connection_variable(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def connection_env(conn_id: str, base_url: str, api_key: str, **extra: Any) -> dict[str, str]:
    """``{AIRFLOW_CONN_<ID>: json}``: connection ``conn_id`` for an environment (arguments as
    :func:`connection_json`)."""
    return {connection_variable(conn_id): connection_json(base_url, api_key, **extra)}
