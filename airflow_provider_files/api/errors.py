"""One hierarchy for every failure of the API layer, and the one place that maps HTTP errors to it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import httpx

REDACTED = "***"
_BODY_EXCERPT_CHARS = 500
# A secret this long is masked wherever it appears; a shorter one (a local server's "sk-1234")
# only where it stands as a whole token, so that a key "1" does not turn "401" into "40***".
SUBSTRING_MASK_MIN_CHARS = 8
_TOKEN_CHARS = "A-Za-z0-9_\\-"  # what keys are made of


def _spellings(secret: str) -> set[str]:
    """The ways a secret can be written back: as is, escaped in a bytes repr, escaped in JSON."""
    return {secret, repr(secret.encode("utf-8"))[2:-1], json.dumps(secret)[1:-1]}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` (longest first).

    Secrets of :data:`SUBSTRING_MASK_MIN_CHARS` or more are replaced wherever they appear;
    shorter ones only as whole tokens (not next to a letter, digit, "-" or "_").
    """
    spellings = {spelling for secret in secrets if secret for spelling in _spellings(secret)}
    for secret in sorted(spellings, key=len, reverse=True):
        if len(secret) >= SUBSTRING_MASK_MIN_CHARS:
            text = text.replace(secret, REDACTED)
        else:
            pattern = rf"(?<![{_TOKEN_CHARS}]){re.escape(secret)}(?![{_TOKEN_CHARS}])"
            text = re.sub(pattern, REDACTED, text)
    return text


#: Fields of the API's objects that hold the server's words, quoted in errors and logs.
SERVER_TEXT_FIELDS = frozenset({"status_details", "message", "error"})


def mentions(raw: bytes, secrets: Iterable[str]) -> bool:
    """Whether ``raw`` (a body as received) contains any spelling of any secret (cheap pre-check)."""
    return any(spelling.encode() in raw for secret in secrets if secret for spelling in _spellings(secret))


def redact_server_text(data: Any, secrets: Iterable[str]) -> Any:
    """``data`` (parsed JSON) with the secrets masked in its free-text fields (:data:`SERVER_TEXT_FIELDS`).

    Only those fields: ids, names and sizes are data the caller relies on, and a short secret
    masked as a token could change them.
    """
    secrets = tuple(secrets)
    if isinstance(data, dict):
        return {
            key: redact(value, secrets)
            if key in SERVER_TEXT_FIELDS and isinstance(value, str)
            else redact_server_text(value, secrets)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact_server_text(item, secrets) for item in data]
    return data


class FilesApiError(Exception):
    """Base class of every error raised by :mod:`airflow_provider_files.api`."""


class ConfigurationError(FilesApiError, ValueError):
    """The client settings are invalid (unknown gateway, http:// to a remote host, bad header JSON ...)."""


class UnsupportedOperationError(FilesApiError):
    """The configured gateway does not offer this operation (e.g. the Uploads API on Respan)."""


class SourceNotReplayableError(FilesApiError):
    """A request failed after part of a one-shot stream was sent, so it cannot be retried safely."""


class ApiConnectionError(FilesApiError):
    """No HTTP response: connection refused or dropped, DNS failure, TLS failure.

    :param message: human message, already redacted.
    :param reached_server: whether the request may have reached the server (and had its
        effect); ``False`` when the connection was never made, so nothing was sent.
    :param retryable: whether sending the request again may succeed.
    """

    def __init__(self, message: str, *, reached_server: bool = True, retryable: bool = True) -> None:
        super().__init__(message)
        self.reached_server = reached_server
        self.retryable = retryable


class ApiTimeoutError(ApiConnectionError):
    """The request timed out (one read, or the whole request past its deadline)."""


class UnexpectedResponseError(FilesApiError):
    """A successful response whose body is not what the contract promises."""


class ApiStatusError(FilesApiError):
    """The server answered with an error status.

    :param message: human message, already redacted.
    :param status_code: HTTP status.
    :param error_type: ``error.type`` of the body, when present.
    :param code: ``error.code`` of the body, when present.
    :param param: ``error.param`` of the body, when present.
    :param request_id: the ``x-request-id`` response header, when present.
    :param server_message: ``error.message`` of the body (or a raw excerpt), redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        server_message: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.server_message = server_message
        self.retry_after_s = retry_after_s


class BadRequestError(ApiStatusError):
    """400: the request was malformed or broke a rule of the API."""


class AuthenticationError(ApiStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(ApiStatusError):
    """403: the key is valid but not allowed to do this."""


class NotFoundError(ApiStatusError):
    """404: unknown file or upload id, or a wrong base URL."""


class ConflictError(ApiStatusError):
    """409: conflicting state (OpenAI also uses it for lock timeouts, which are retried)."""


class PayloadTooLargeError(ApiStatusError):
    """413: the file or part is larger than the server accepts."""


class UnprocessableEntityError(ApiStatusError):
    """422: the request was understood but its content is invalid."""


class RateLimitError(ApiStatusError):
    """429: too many requests; transient."""


class QuotaExceededError(RateLimitError):
    """429 with code ``insufficient_quota``: billing or spend limit; retrying does not help."""


class ServerError(ApiStatusError):
    """5xx: the server failed."""


_STATUS_CLASSES: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_HINTS: dict[type[ApiStatusError], str] = {
    AuthenticationError: "Check the API key (the connection's password) and that the gateway setting matches the base URL",
    PermissionDeniedError: "Check the key's permissions, organization and project",
    NotFoundError: "Check the id, and that the base URL includes the API prefix (e.g. /v1)",
    QuotaExceededError: "The account is out of quota; retrying will not help",
}


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """Pull (type, code, param, message) from the error shapes the gateways use."""
    if not isinstance(body, dict):
        return None, None, None, None
    error = body.get("error")
    if isinstance(error, str):  # Respan: {"error": "Authentication credentials were not provided."}
        return None, None, None, error
    if isinstance(error, dict):  # OpenAI, Azure, LiteLLM

        def text(key: str) -> str | None:
            value = error.get(key)
            return None if value in (None, "None") else str(value)

        return text("type"), text("code"), text("param"), text("message")
    if "message" in body:  # Portkey: {"status": "failure", "message": "..."}
        return None, None, None, str(body["message"])
    return None, None, None, None


def _has_api_prefix(path: str) -> bool:
    """Whether a request path already carries an API prefix (``/v1``, ``/openai``, ``/api``)."""
    first = path.strip("/").split("/", 1)[0].lower()
    return bool(re.fullmatch(r"v\d+|openai|api", first))


def error_from_response(
    response: httpx.Response,
    *,
    secrets: Iterable[str] = (),
    context: str | None = None,
    retry_after_s: float | None = None,
    body: bytes | None = None,
) -> ApiStatusError:
    """Build the exception for an error response.

    :param body: the body as read (the clients read at most the start of it); ``None`` takes
        the response's own content, which must have been read.
    """
    secrets = tuple(secrets)
    raw = response.content if body is None else body
    text = raw.decode(response.charset_encoding or "utf-8", errors="replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    error_type, code, param, server_message = _error_fields(data)
    if server_message is None:  # redacted before it is cut, so that no part of a secret is left
        server_message = redact(text, secrets)[:_BODY_EXCERPT_CHARS].strip() or response.reason_phrase
    server_message = redact(server_message, secrets)
    status = response.status_code
    cls: type[ApiStatusError]
    if status == 429 and code == "insufficient_quota":
        cls = QuotaExceededError
    elif status >= 500:
        cls = ServerError
    else:
        cls = _STATUS_CLASSES.get(status, ApiStatusError)
    request_id = response.headers.get("x-request-id")
    request = response.request
    parts = [f"{status} {response.reason_phrase} from {request.method} {request.url.copy_with(query=None)}"]
    if context:
        parts.append(f" ({context})")
    parts.append(f": {server_message}")
    if code:
        parts.append(f" [code={code}]")
    if param:
        parts.append(f" [param={param}]")
    if request_id:
        parts.append(f" [request id {request_id}]")
    hint = next((h for c, h in _HINTS.items() if issubclass(cls, c)), None)
    if cls is NotFoundError and error_type is None and code is None and _has_api_prefix(request.url.path):
        # Not the API's own "no such object" error, and the prefix is there: the route itself is
        # missing behind this base URL (e.g. /v1/uploads on a LiteLLM proxy).
        hint = "Check the id, and that the server at this base URL offers this route"
    if hint:
        parts.append(f". {hint}.")
    message = redact("".join(parts), secrets)
    return cls(
        message,
        status_code=status,
        error_type=error_type,
        code=code,
        param=param,
        request_id=request_id,
        server_message=server_message,
        retry_after_s=retry_after_s,
    )
