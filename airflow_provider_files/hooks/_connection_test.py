"""How a connection test names the connection it tests."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_files.api.connections import base_url_of

_TRANSIENT_ID = re.compile(r"[A-Za-z0-9]{8}")


def _public_url(conn: Any) -> str:
    """The connection's base URL as settings read it, shown without user info, query or fragment."""
    raw = base_url_of(conn)
    if not raw:
        gateway = str((conn.extra_dejson or {}).get("gateway") or "openai")
        return f"the {gateway} gateway's default base URL"
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _is_transient_test_id(conn_id: str) -> bool:
    """Airflow's API server tests a connection from the UI under a random 8-character id that it
    puts in an ``AIRFLOW_CONN_*`` variable for the duration of the test; that id means nothing to
    the user."""
    return bool(_TRANSIENT_ID.fullmatch(conn_id)) and f"AIRFLOW_CONN_{conn_id.upper()}" in os.environ


def connection_test_label(conn: Any) -> str:
    """The words that name ``conn`` in a connection test's messages: always its base URL."""
    url = _public_url(conn)
    if _is_transient_test_id(conn.conn_id or ""):
        return f"the connection to {url}"
    return f"connection '{conn.conn_id}' ({url})"
