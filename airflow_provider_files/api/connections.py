"""An ``openai_files`` connection read into :class:`~airflow_provider_files.api.ClientSettings`.

The one home of that reading: the hook passes Airflow's connection object, ``airflow-files``
passes a :class:`ConnectionFields` read from ``AIRFLOW_CONN_<ID>`` (JSON or URI form, with
Airflow's own rules for both) or from ``--conn-json``, so the CLI needs no Airflow import when
the connection is in the environment. No Airflow import here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from airflow_provider_files.api.errors import ConfigurationError
from airflow_provider_files.api.gateways import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    PROFILES,
    ClientSettings,
    json_object,
    parse_header_names,
    parse_headers,
)

#: Airflow's environment-variable secrets backend reads ``AIRFLOW_CONN_<CONN_ID upper-cased>``.
CONN_ENV_PREFIX = "AIRFLOW_CONN_"
#: A URI query holding this key carries the whole extra as JSON (Airflow's ``Connection.EXTRA_KEY``).
URI_EXTRA_KEY = "__extra__"
#: The fields of Airflow's JSON connection form.
JSON_FIELDS = frozenset({"conn_type", "description", "host", "schema", "login", "password", "port", "extra"})

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class ConnectionLike(Protocol):
    """What :func:`settings_from_connection` reads: Airflow's ``Connection`` or :class:`ConnectionFields`."""

    @property
    def conn_id(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def schema(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def extra_dejson(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ConnectionFields:
    """A connection's fields as Airflow stores them, read without Airflow.

    :param conn_id: the connection id.
    :param conn_type: the type, ``-`` in a URI scheme read as ``_`` (``openai_files``).
    :param host: the host field (for us, the base URL).
    :param schema: the schema field (a URI's path).
    :param login: the login field.
    :param password: the password field (the API key); never shown in the repr.
    :param port: the port field.
    :param extra_dejson: the extras as a mapping; never shown in the repr.
    """

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra_dejson: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _conn_type(scheme: str) -> str:
    """Airflow's normalisation of a connection type."""
    return "postgres" if scheme == "postgresql" else scheme.replace("-", "_")


def _uri_hostname(parts: SplitResult) -> str:
    """The host of a URI as Airflow reads it: a percent-encoded host may hold a whole base URL."""
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:
        hostname = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


def connection_from_uri(uri: str, *, conn_id: str, source: str) -> ConnectionFields:
    """A connection in Airflow's URI form, read with the rules of Airflow's ``Connection.from_uri``.

    ``openai-files://:KEY@api.example.com/v1?gateway=portkey`` gives host ``api.example.com``,
    schema ``v1``, password ``KEY`` and the extra ``{"gateway": "portkey"}``; a host with its own
    scheme is written ``openai-files://:KEY@https://api.example.com/v1`` or percent-encoded.

    :param source: where the URI came from, named in errors (never the URI: it holds the key).
    :raises ConfigurationError: not a connection URI Airflow would read.
    """
    schemes = uri.count("://")
    if schemes > 2:
        raise ConfigurationError(f"{source} is not a valid connection URI: more than two '://'")
    host_with_protocol = schemes == 2
    try:
        conn_type = urlsplit(uri).scheme
        rest = uri.replace(f"{conn_type}://", "" if host_with_protocol else "//")
        parts = urlsplit(rest)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL": the message holds no part of the URI
        raise ConfigurationError(f"{source} is not a valid connection URI: {exc}") from None
    if host_with_protocol:
        before = rest.split("://", 1)[0]
        if "@" in before or ":" in before:
            raise ConfigurationError(
                f"{source} is not a valid connection URI: the host's scheme is misplaced"
            )
    host = _uri_hostname(parts)
    if host and host_with_protocol:
        host = f"{parts.scheme}://{host}"
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{source} is not a valid connection URI: bad port") from None
    extra: Mapping[str, Any] = {}
    if parts.query:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra = (
            json_object(query[URI_EXTRA_KEY], name=URI_EXTRA_KEY, context=source)
            if URI_EXTRA_KEY in query
            else query
        )
    return ConnectionFields(
        conn_id=conn_id,
        conn_type=_conn_type(conn_type),
        host=host,
        schema=unquote(parts.path[1:]),
        login=unquote(parts.username) if parts.username else parts.username,
        password=unquote(parts.password) if parts.password else parts.password,
        port=port,
        extra_dejson=dict(extra),
    )


def connection_from_json(text: str, *, conn_id: str, source: str) -> ConnectionFields:
    """A connection in Airflow's JSON form (``{"host": ..., "password": ..., "extra": {...}}``),
    read with the rules of Airflow's ``Connection.from_json``: ``extra`` an object or its text,
    ``port`` an integer or its text.

    :param source: where the JSON came from, named in errors.
    :raises ConfigurationError: not JSON, not an object, an unknown field, a bad port or extra.
    """
    fields = json_object(
        text, name=None, context=source, expected="a JSON object (host, password, extra ...)"
    )
    unknown = sorted(set(fields) - JSON_FIELDS)
    if unknown:
        raise ConfigurationError(
            f"{source} has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(sorted(JSON_FIELDS))}"
        )
    extra = json_object(fields["extra"], name="extra", context=source) if fields.get("extra") else {}
    port = fields.get("port")
    if port:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise ConfigurationError(f"'port' in {source} must be an integer, got {port!r}") from None
    conn_type = fields.get("conn_type")
    return ConnectionFields(
        conn_id=conn_id,
        conn_type=_conn_type(conn_type) if conn_type else None,
        host=fields.get("host"),
        schema=fields.get("schema"),
        login=fields.get("login"),
        password=fields.get("password"),
        port=port or None,
        extra_dejson=dict(extra),
    )


def connection_from_env(conn_id: str, environ: Mapping[str, str] | None = None) -> ConnectionFields | None:
    """The connection ``AIRFLOW_CONN_<CONN_ID>`` defines (JSON or URI form), or ``None`` when that
    variable is unset or empty (then only Airflow can find the connection)."""
    name = CONN_ENV_PREFIX + conn_id.upper()
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        return None
    value = value.strip()
    if value.startswith("{"):
        return connection_from_json(value, conn_id=conn_id, source=f"the variable {name}")
    return connection_from_uri(value, conn_id=conn_id, source=f"the variable {name}")


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


def base_url_of(conn: ConnectionLike) -> str | None:
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


def settings_from_connection(conn: ConnectionLike, *, context: str | None = None) -> ClientSettings:
    """Read an ``openai_files`` connection: host = base URL, password = API key, extras as documented.

    Portkey's virtual key and config are read from ``portkey_virtual_api_key`` and
    ``portkey_config_secret`` (names Airflow hides as ``***``), or from the older
    ``portkey_virtual_key`` and ``portkey_config``. ``context`` names the connection in errors
    (default: its id). A port of 0 (what the UI's Test button sends for an empty port) is no port.
    """
    context = context or f"connection '{conn.conn_id}'"
    extra: Mapping[str, Any] = conn.extra_dejson or {}
    gateway = str(_extra(extra, "gateway") or "openai").strip().lower()
    if gateway not in PROFILES:
        raise ConfigurationError(
            f"unknown gateway {gateway!r} in {context}; expected one of {', '.join(PROFILES)}"
        )
    base_url = base_url_of(conn)

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


__all__ = [
    "CONN_ENV_PREFIX",
    "ConnectionFields",
    "ConnectionLike",
    "connection_from_env",
    "connection_from_json",
    "connection_from_uri",
    "settings_from_connection",
]
