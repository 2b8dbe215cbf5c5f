"""Gateway profiles: the one place that knows how each OpenAI-compatible front door differs.

A profile decides the default base URL, how the API key travels, which extra headers and
query parameters every call carries, how paths are spelled and which operations exist.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_files import __version__
from airflow_provider_files.api.errors import ConfigurationError, UnsupportedOperationError
from airflow_provider_files.api.limits import BATCH_ENDPOINTS, validate_settings_text
from airflow_provider_files.api.retry import RetryPolicy

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_MAX_RETRIES = 5
USER_AGENT = f"airflow-provider-files/{__version__}"
AZURE_DEFAULT_API_VERSION = "2024-10-21"

PORTKEY_HOSTED_DOMAIN = "portkey.ai"

# Header names whose values are credentials: never logged, always masked.
# (``Ocp-Apim-Subscription-Key`` is Azure API Management's key header.)
_SECRET_HEADER_PATTERN = re.compile(
    r"(authorization|api[-_]?key|token|secret|cookie|password|virtual-key|config|subscription[-_]?key)",
    re.I,
)


def is_secret_header(name: str, extra_names: Iterable[str] = ()) -> bool:
    """Whether a header carries a credential: by its name, or because the connection lists it."""
    lowered = name.strip().lower()
    return bool(_SECRET_HEADER_PATTERN.search(name)) or any(lowered == n.strip().lower() for n in extra_names)


# Purposes a file can be created with (OpenAI's FilePurpose).
FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})


@dataclass(frozen=True)
class GatewayProfile:
    """How one gateway spells the API.

    :param name: gateway name as written in the connection (``openai``, ``azure`` ...).
    :param default_base_url: used when the connection has no host; ``None`` means a host is required.
    :param key_header: header that carries the API key by default (``Authorization`` means Bearer).
    :param trailing_slash: paths end with ``/`` (Django-style gateways such as Respan).
    :param supports_uploads: whether the Uploads API (``/uploads``) exists behind this gateway.
    :param paginates: whether ``GET /files`` honours ``limit``/``order``/``after``.
    :param uploads_hint: said after "not supported" when the Uploads API is missing.
    :param path_prefix: appended to a base URL given as a bare host (Azure: ``/openai``).
    :param default_api_version: ``api-version`` sent when the connection sets none, except to a
        base URL ending in ``/v1`` (the Azure v1 API takes no version).
    :param purposes: purposes accepted on create; ``None`` lets the server decide (``custom``).
        Checking them here refuses a misspelt purpose before a byte of the file is sent.
    :param supports_batches: whether the Batches API (``/batches``) exists behind this gateway.
    :param batches_hint: said after "not supported" when the Batches API is missing.
    :param batches_path: path segments of the batches collection under the base URL (Respan
        documents ``/api/v1/batches/`` beside ``/api/files/``).
    :param batch_endpoints: endpoints a batch may target; ``None`` lets the server decide.
    """

    name: str
    default_base_url: str | None
    key_header: str = "Authorization"
    trailing_slash: bool = False
    supports_uploads: bool = True
    paginates: bool = True
    uploads_hint: str = ""
    path_prefix: str = ""
    default_api_version: str | None = None
    purposes: frozenset[str] | None = FILE_PURPOSES
    supports_batches: bool = True
    batches_hint: str = ""
    batches_path: tuple[str, ...] = ("batches",)
    batch_endpoints: frozenset[str] | None = BATCH_ENDPOINTS

    def require_purpose(self, purpose: str) -> None:
        if not isinstance(purpose, str) or not purpose:
            raise ConfigurationError("purpose is required (e.g. 'batch')")
        if self.purposes is not None and purpose not in self.purposes:
            raise ConfigurationError(
                f"purpose {purpose!r} is not accepted by the '{self.name}' gateway; expected one of "
                f"{', '.join(sorted(self.purposes))} (use the 'custom' gateway to let the server decide)"
            )

    def path(self, *segments: str) -> str:
        path = "/" + "/".join(s.strip("/") for s in segments)
        return path + "/" if self.trailing_slash else path

    def require_uploads(self) -> None:
        if not self.supports_uploads:
            raise UnsupportedOperationError(
                f"the Uploads API is not supported by the '{self.name}' gateway{self.uploads_hint}; "
                "upload files up to 512 MB with a single request (POST /files) instead"
            )

    def require_batches(self) -> None:
        if not self.supports_batches:
            raise UnsupportedOperationError(
                f"the Batches API is not supported by the '{self.name}' gateway{self.batches_hint}"
            )

    def require_batch_endpoint(self, endpoint: str) -> None:
        """Refuse an endpoint this gateway does not run batches for, before anything is sent."""
        if not isinstance(endpoint, str) or not endpoint.startswith("/"):
            raise ConfigurationError(
                f"endpoint must be an API path such as '/v1/chat/completions', got {endpoint!r}"
            )
        if self.batch_endpoints is not None and endpoint not in self.batch_endpoints:
            raise ConfigurationError(
                f"endpoint {endpoint!r} is not accepted for batches by the '{self.name}' gateway; expected one "
                f"of {', '.join(sorted(self.batch_endpoints))} (use the 'custom' gateway to let the server decide)"
            )


PROFILES: dict[str, GatewayProfile] = {
    "openai": GatewayProfile("openai", "https://api.openai.com/v1"),
    "azure": GatewayProfile(
        "azure",
        None,
        key_header="api-key",
        paginates=False,
        path_prefix="/openai",
        default_api_version=AZURE_DEFAULT_API_VERSION,
    ),
    "portkey": GatewayProfile("portkey", "https://api.portkey.ai/v1", key_header="x-portkey-api-key"),
    "respan": GatewayProfile(
        "respan",
        "https://api.respan.ai/api",
        trailing_slash=True,
        supports_uploads=False,
        paginates=False,
        uploads_hint=" (Respan documents only /api/files/)",
        purposes=frozenset({"batch"}),
        batches_path=("v1", "batches"),
        batch_endpoints=frozenset({"/v1/chat/completions"}),
    ),
    "litellm": GatewayProfile(
        "litellm",
        None,
        supports_uploads=False,
        paginates=False,
        uploads_hint=" (the LiteLLM proxy has no /v1/uploads route; its /openai pass-through can be used "
        "as a 'custom' gateway)",
        purposes=FILE_PURPOSES - {"evals"},
    ),
    "custom": GatewayProfile("custom", None, purposes=None, batch_endpoints=None),
}


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client needs to reach one API. ``repr`` never shows a credential.

    :param api_key: the key that authenticates at the base URL (OpenAI key, Azure key, LiteLLM key
        ...). On the ``portkey`` gateway it is the Portkey API key (``x-portkey-api-key``) when the
        base URL is hosted Portkey's and no ``portkey_api_key`` is given; otherwise it is the
        upstream provider's key, sent as ``Authorization: Bearer`` (what a self-hosted gateway
        forwards).
    :param gateway: a key of :data:`PROFILES`.
    :param base_url: API root; empty means the gateway's default.
    :param api_key_header: header that carries the key, overriding the gateway's default
        (``Authorization`` sends ``Bearer <key>``).
    :param portkey_api_key: hosted Portkey's API key (``x-portkey-api-key``); with it, ``api_key``
        is the provider key.
    :param portkey_provider: ``x-portkey-provider`` (``openai``, or a hosted ``@slug``).
    :param portkey_virtual_key: ``x-portkey-virtual-key`` (hosted Portkey only).
    :param portkey_config: ``x-portkey-config``: a hosted config id or a JSON config.
    :param portkey_custom_host: ``x-portkey-custom-host``: the upstream a self-hosted gateway calls.
    :param headers: extra headers sent on every call; secret-looking ones are masked.
    :param secret_header_names: more header names whose values are masked (besides the names
        that look secret).
    :param context: words naming where the settings came from (e.g. a connection id), used in errors.
    """

    api_key: str | None = field(default=None, repr=False)
    gateway: str = "openai"
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    api_version: str | None = None
    portkey_provider: str | None = None
    portkey_virtual_key: str | None = field(default=None, repr=False)
    portkey_config: str | None = field(default=None, repr=False)
    portkey_api_key: str | None = field(default=None, repr=False)
    portkey_custom_host: str | None = None
    litellm_provider: str | None = None
    api_key_header: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_header_names: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    verify_ssl: bool = True
    allow_insecure_http: bool = False
    retry_policy: RetryPolicy | None = None
    context: str | None = None

    @property
    def profile(self) -> GatewayProfile:
        try:
            return PROFILES[self.gateway]
        except KeyError:
            raise ConfigurationError(
                f"unknown gateway {self.gateway!r}{self._where()}; expected one of {', '.join(PROFILES)}"
            ) from None

    def __post_init__(self) -> None:
        # A line break in a key or header value is refused here, before httpx quotes the value in an error.
        validate_settings_text(self, self._where())

    def _where(self) -> str:
        return f" in {self.context}" if self.context else ""

    def resolved_base_url(self) -> str:
        """The base URL, checked: http(s) only, and no plain http to a remote host unless allowed."""
        profile = self.profile
        url = (self.base_url or profile.default_base_url or "").strip()
        if not url:
            raise ConfigurationError(
                f"the '{profile.name}' gateway needs a base URL (the host){self._where()}"
            )
        if "://" not in url:
            url = "https://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"base URL {url!r}{self._where()} is not an http(s) URL")
        if parts.username or parts.password:
            raise ConfigurationError(
                f"the base URL{self._where()} must not carry credentials; put the API key in the password field"
            )
        if parts.scheme == "http" and not self.allow_insecure_http and not _is_loopback(parts.hostname):
            raise ConfigurationError(
                f"refusing to send the API key in clear text to http://{parts.hostname}{self._where()}: "
                "use https, or set allow_insecure_http to true if the link is trusted"
            )
        url = url.rstrip("/")
        if profile.path_prefix and parts.path.strip("/") == "":
            url += profile.path_prefix
        return url

    def with_retry_policy(self, policy: RetryPolicy) -> ClientSettings:
        return replace(self, retry_policy=policy)

    def effective_retry_policy(self) -> RetryPolicy:
        return self.retry_policy or RetryPolicy.from_max_retries(self.max_retries)

    def default_headers(self) -> dict[str, str]:
        """Headers sent on every call: user agent, credentials, gateway headers, then the extra headers."""
        self._require_portkey_routing()
        headers: dict[str, str] = {"User-Agent": USER_AGENT}
        api_key = (self.api_key or "").strip()
        if api_key:
            key_header = self.api_key_header or self._key_header()
            if key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {api_key}"
            else:
                headers[key_header] = api_key
        optional = {
            "x-portkey-api-key": (self.portkey_api_key or "").strip() or None,
            "x-portkey-custom-host": self.portkey_custom_host,
            "OpenAI-Organization": self.organization,
            "OpenAI-Project": self.project,
            "x-portkey-provider": self.portkey_provider,
            "x-portkey-virtual-key": self.portkey_virtual_key,
            "x-portkey-config": self.portkey_config,
            "custom-llm-provider": self.litellm_provider,
        }
        headers.update({name: value for name, value in optional.items() if value})
        headers.update(self.headers)
        return headers

    def _require_portkey_routing(self) -> None:
        """A self-hosted Portkey gateway answers 400 to every call that names no provider or config."""
        if self.profile.name != "portkey" or self.portkey_hosted:
            return
        names = {name.lower() for name in self.headers}
        if self.portkey_provider or self.portkey_config or names & {"x-portkey-provider", "x-portkey-config"}:
            return
        raise ConfigurationError(
            f"a self-hosted Portkey gateway{self._where()} needs portkey_provider (e.g. openai) or "
            "portkey_config; a virtual key is a hosted Portkey feature"
        )

    def _key_header(self) -> str:
        """Where the key goes by default. Portkey: its own header only for hosted Portkey without
        a separate ``portkey_api_key``; a self-hosted gateway reads the upstream key from
        ``Authorization`` and ignores ``x-portkey-api-key``."""
        profile = self.profile
        if profile.name == "portkey" and (self.portkey_api_key or not self.portkey_hosted):
            return "Authorization"
        return profile.key_header

    @property
    def portkey_hosted(self) -> bool:
        """Whether these settings are for hosted Portkey: a base URL under ``portkey.ai`` (or none),
        or a hosted-only feature in use (a virtual key, or a saved config's id rather than JSON)."""
        if self.portkey_virtual_key or (
            self.portkey_config and not self.portkey_config.lstrip().startswith("{")
        ):
            return True
        if not self.base_url:
            return True
        url = self.base_url if "://" in self.base_url else "https://" + self.base_url
        host = (urlsplit(url).hostname or "").lower()
        return host == PORTKEY_HOSTED_DOMAIN or host.endswith("." + PORTKEY_HOSTED_DOMAIN)

    def default_params(self) -> dict[str, str]:
        """Query parameters sent on every call (Azure's ``api-version``)."""
        version = self.api_version
        default = self.profile.default_api_version
        if not version and default and not urlsplit(self.resolved_base_url()).path.endswith("/v1"):
            version = default
        return {"api-version": version} if version else {}

    def secret_values(self) -> list[str]:
        """Every credential these settings carry, for redaction and Airflow's secrets masker."""
        values = [self.api_key, self.portkey_api_key, self.portkey_virtual_key, self.portkey_config]
        values += [v for k, v in self.headers.items() if is_secret_header(k, self.secret_header_names)]
        # A key pasted with a newline travels (and is echoed) without it, so mask both spellings.
        values += [v.strip() for v in values if v]
        return list(dict.fromkeys(v for v in values if v))


def json_object(
    value: Any, *, name: str | None, context: str | None = None, expected: str = "a JSON object"
) -> Mapping[str, Any]:
    """``value`` as a mapping: a mapping as it is, or the text of a JSON object parsed.

    :param name: the field, named in errors (``None``: the value is the whole of ``context``).
    :param context: where the field came from (e.g. a connection), named in errors.
    :param expected: what the field must be, in the error for another JSON value.
    :raises ConfigurationError: the text is not JSON, or the value is not an object.
    """
    where = f" in {context}" if context else ""
    subject = f"'{name}'{where}" if name is not None else str(context)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{subject} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{subject} must be {expected}")
    return value


def parse_headers(value: Any, *, context: str | None = None) -> dict[str, str]:
    """Extra headers from a connection: a JSON object (or its text). Values become strings."""
    where = f" in {context}" if context else ""
    if value in (None, "", {}):
        return {}
    value = json_object(
        value, name="headers", context=context, expected="a JSON object of header names to values"
    )
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"'headers'{where} has an empty header name")
        if header_value is None:
            continue
        headers[name.strip()] = str(header_value)
    return headers


def parse_header_names(
    value: Any, *, name: str = "secret_header_names", context: str | None = None
) -> tuple[str, ...]:
    """Header names from a connection: a JSON list (or its text) or comma-separated text."""
    where = f" in {context}" if context else ""
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"'{name}'{where} is not valid JSON: {exc.msg}") from None
        else:
            value = text.split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"'{name}'{where} must be a list of header names")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
