"""An ``openai_files`` connection read into :class:`~airflow_provider_files.api.ClientSettings`.

No Airflow import here: the hook and ``airflow-files upload --base-url`` (which builds a
connection-like object from its flags) read connections the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_files.api import ClientSettings
from airflow_provider_files.api.errors import ConfigurationError
from airflow_provider_files.api.gateways import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    PROFILES,
    parse_header_names,
    parse_headers,
)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _extra(extra: Mapping[str, Any], name: str, conn_type: str = "openai_files") -> Any:
    """A connection extra by its plain name, or the legacy ``extra__<type>__<name>`` key."""
    value = extra.get(name)
    if value is None:
        value = extra.get(f"extra__{conn_type}__{name}")
    return None if value == "" else value


def _as_bool(value: Any, name: str, default: bool, context: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"'{name}' in {context} must be true or false, got {value!r}")


def _as_number(value: Any, name: str, default: float, context: str) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"'{name}' in {context} must be a number, got {value!r}") from None
    if number < 0:
        raise ConfigurationError(f"'{name}' in {context} must not be negative, got {value!r}")
    return number


def _base_url(conn: Any) -> str | None:
    """The base URL from host, plus the port and schema fields when the host leaves them out.

    ``schema`` is a scheme when it is ``http``/``https`` and otherwise the path: the URI form
    ``openai-files://:KEY@api.example.com/v1`` stores ``v1`` there.
    """
    base_url = (conn.host or "").strip()
    if not base_url:
        return None
    schema = (conn.schema or "").strip().strip("/")
    scheme = ""
    if "://" in base_url:
        scheme, base_url = base_url.split("://", 1)
    elif schema.lower() in ("http", "https"):
        scheme, schema = schema.lower(), ""
    host, slash, path = base_url.partition("/")
    if conn.port and ":" not in host.rsplit("]", 1)[-1]:
        host = f"{host}:{conn.port}"
    if schema and not path.strip("/"):
        path, slash = schema, "/"
    return (f"{scheme}://" if scheme else "") + host + slash + path


def settings_from_connection(conn: Any, *, context: str | None = None) -> ClientSettings:
    """Read an ``openai_files`` connection: host = base URL, password = API key, extras as documented.

    Portkey's virtual key and config are read from ``portkey_virtual_api_key`` and
    ``portkey_config_secret`` (names Airflow hides as ``***``), or from the older
    ``portkey_virtual_key`` and ``portkey_config``. ``context`` names the connection in errors
    (default: its id).
    """
    context = context or f"connection '{conn.conn_id}'"
    extra: Mapping[str, Any] = conn.extra_dejson or {}
    gateway = str(_extra(extra, "gateway") or "openai").strip().lower()
    if gateway not in PROFILES:
        raise ConfigurationError(
            f"unknown gateway {gateway!r} in {context}; expected one of {', '.join(PROFILES)}"
        )
    base_url = _base_url(conn)

    def text(name: str) -> str | None:
        value = _extra(extra, name)
        return None if value is None else str(value).strip() or None

    def secret(name: str, legacy: str) -> str | None:
        # Airflow shows an extra as *** only when its name looks secret; the legacy names do not.
        return text(name) or text(legacy)

    timeout_s = _as_number(_extra(extra, "timeout_s"), "timeout_s", DEFAULT_TIMEOUT_S, context)
    if timeout_s == 0:
        raise ConfigurationError(f"'timeout_s' in {context} must be greater than 0")
    return ClientSettings(
        api_key=(conn.password or "").strip() or None,
        gateway=gateway,
        base_url=base_url,
        organization=text("organization"),
        project=text("project"),
        api_version=text("api_version"),
        portkey_provider=text("portkey_provider"),
        portkey_virtual_key=secret("portkey_virtual_api_key", "portkey_virtual_key"),
        portkey_config=secret("portkey_config_secret", "portkey_config"),
        portkey_api_key=text("portkey_api_key"),
        portkey_custom_host=text("portkey_custom_host"),
        litellm_provider=text("litellm_provider"),
        api_key_header=text("api_key_header"),
        headers=parse_headers(_extra(extra, "headers"), context=context),
        secret_header_names=parse_header_names(
            _extra(extra, "masked_headers"), name="masked_headers", context=context
        ),
        timeout_s=timeout_s,
        max_retries=int(
            _as_number(_extra(extra, "max_retries"), "max_retries", DEFAULT_MAX_RETRIES, context)
        ),
        verify_ssl=_as_bool(_extra(extra, "verify_ssl"), "verify_ssl", True, context),
        allow_insecure_http=_as_bool(
            _extra(extra, "allow_insecure_http"), "allow_insecure_http", False, context
        ),
        context=context,
    )
