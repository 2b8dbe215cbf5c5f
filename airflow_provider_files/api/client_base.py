"""What the blocking and the async clients share: settings, request building, error mapping, retry waits."""

from __future__ import annotations

import inspect
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload
from urllib.parse import urlsplit

import httpx

from airflow_provider_files.api.bodies import MultipartBody
from airflow_provider_files.api.errors import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    FilesApiError,
    SourceNotReplayableError,
    UnexpectedResponseError,
    error_from_response,
    mentions,
    redact,
    redact_server_text,
)
from airflow_provider_files.api.gateways import ClientSettings
from airflow_provider_files.api.limits import KIB
from airflow_provider_files.api.operations import Operation, Operations, RequestSpec
from airflow_provider_files.api.retry import RetryState, parse_retry_after
from airflow_provider_files.api.transfer import (
    MAX_ERROR_BODY_BYTES,
    MAX_JSON_RESPONSE_BYTES,
    MIN_TRANSFER_RATE_BYTES_PER_S,
    CappedBody,
    Deadline,
    DeadlineExceeded,
    ResponseTooLarge,
)

if TYPE_CHECKING:
    from airflow_provider_files.api.async_client import AsyncFilesClient
    from airflow_provider_files.api.sync_client import FilesClient

log = logging.getLogger(__name__)

# No longer used to chunk downloads (chunks are taken as they arrive); kept for imports.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 16
# Longest message quoting what a server sent (after redaction).
SERVER_TEXT_MAX_CHARS = 500
# What OpenSSL says when the other end answers a TLS hello in plain HTTP (3.0; 3.2 and later).
_PLAIN_HTTP_SSL_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"})

P = ParamSpec("P")
T = TypeVar("T")
ItemT_co = TypeVar("ItemT_co", covariant=True)


class Page(Protocol[ItemT_co]):
    """One page of a list answer (files or batches)."""

    @property
    def data(self) -> Sequence[ItemT_co]: ...

    @property
    def has_more(self) -> bool: ...

    @property
    def last_id(self) -> str | None: ...


def next_cursor(page: Page[Any], previous: str | None, paginates: bool = True) -> str | None:
    """The ``after`` cursor of the next page, or ``None`` when this was the last page."""
    if not paginates or not page.has_more or not page.data:
        return None
    cursor = page.last_id
    if cursor is None or cursor == previous:
        raise UnexpectedResponseError(f"the server said has_more but gave no new cursor after {previous!r}")
    return cursor


def operation_signature(build: Callable[..., Any]) -> inspect.Signature:
    """The signature of an operation of the table as a client method shows it: its own result unsaid."""
    return inspect.signature(build).replace(return_annotation=inspect.Signature.empty)


def bound_signature(method: Callable[..., Any]) -> inspect.Signature:
    """``method``'s signature without its first (client or self) parameter, for runtime introspection."""
    signature = inspect.signature(method)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


class client_operation(Generic[P, T]):
    """Exposes an operation of :class:`Operations` as a method of both clients, with its signature.

    ``create_file = client_operation(Operations.create_file)`` in :class:`ClientBase` makes
    ``FilesClient(...).create_file(...)`` build the request, send it with retries and parse the
    answer, and ``await AsyncFilesClient(...).create_file(...)`` do the same without blocking.
    """

    def __init__(self, build: Callable[Concatenate[Operations, P], Operation[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__
        self.__signature__ = operation_signature(build)

    @overload
    def __get__(self, client: None, owner: type[Any]) -> client_operation[P, T]: ...

    @overload
    def __get__(self, client: FilesClient, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(self, client: AsyncFilesClient, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, client: ClientBase | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        call = client._bind(self)
        call.__name__ = call.__qualname__ = self.__name__
        call.__doc__ = self.__doc__
        call.__signature__ = bound_signature(self)  # type: ignore[attr-defined]
        return call

    @overload
    def __call__(self, client: FilesClient, /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    @overload
    def __call__(
        self, client: AsyncFilesClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]: ...

    def __call__(self, client: Any, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Send the operation with ``client``: its result, or (async client) a coroutine of it."""
        return client._call(self._build(client.operations, *args, **kwargs))


class DownloadTarget:
    """Where a download writes: the same start on every attempt, cut to what the last one wrote.

    :param handle: a binary file object; one that cannot seek allows a single attempt.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._seekable = handle.seekable()
        self._start = handle.tell() if self._seekable else 0
        self._attempts = 0
        self.written = 0

    def begin(self) -> None:
        """An attempt got its answer: write from the start again."""
        self._attempts += 1
        if self._attempts > 1:
            if not self._seekable:
                raise SourceNotReplayableError(
                    "the download failed midway and the destination cannot be rewound"
                )
            self._handle.seek(self._start)
        self.written = 0

    def write(self, chunk: bytes, deadline: Deadline) -> None:
        """One chunk as it arrives: the attempt's deadline grows with the bytes received."""
        deadline.received(len(chunk))
        deadline.check()
        self._handle.write(chunk)
        self.written += len(chunk)

    def finish(self) -> int:
        """The attempt read the whole body: bytes written."""
        if self._seekable:
            self._handle.truncate()
        return self.written


def shorten(text: str, limit: int = SERVER_TEXT_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def parse_json(body: bytes, response: httpx.Response) -> Any:
    """The JSON of a successful answer's body (read by the client, at most ``MAX_JSON_RESPONSE_BYTES``).

    The error quotes the body whole: the client redacts it, then shortens it.
    """
    try:
        return json.loads(body)
    except ValueError:
        text = body.decode(response.charset_encoding or "utf-8", errors="replace")
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} "
            f"with a body that is not JSON: {text!r}"
        ) from None


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind a transport error, if there is one."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class ClientBase:
    """Settings, request building and error mapping common to :class:`FilesClient` and :class:`AsyncFilesClient`.

    :param settings: where and how to connect.
    """

    _http: httpx.Client | httpx.AsyncClient

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.operations = Operations(settings)
        self.base_url = settings.resolved_base_url()
        self._secrets = tuple(settings.secret_values())
        self._policy = settings.effective_retry_policy()
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)

    @property
    def endpoints(self) -> Operations:
        """The table of operations (the name it had before the split)."""
        return self.operations

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gateway={self.settings.gateway!r}, base_url={self.base_url!r})"

    # -- the operations of the table, methods of both clients ---------------------------------

    create_file = client_operation(Operations.create_file)
    list_files = client_operation(Operations.list_files)
    retrieve_file = client_operation(Operations.retrieve_file)
    delete_file = client_operation(Operations.delete_file)
    create_upload = client_operation(Operations.create_upload)
    add_upload_part = client_operation(Operations.add_upload_part)
    complete_upload = client_operation(Operations.complete_upload)
    cancel_upload = client_operation(Operations.cancel_upload)
    create_batch = client_operation(Operations.create_batch)
    retrieve_batch = client_operation(Operations.retrieve_batch)
    list_batches = client_operation(Operations.list_batches)
    cancel_batch = client_operation(Operations.cancel_batch)

    def _bind(self, operation: client_operation[..., Any]) -> Callable[..., Any]:
        """``operation`` as a method of this client (a plain function, or a coroutine function)."""
        raise NotImplementedError

    def _client_kwargs(self, max_connections: int) -> dict[str, Any]:
        """The arguments of the client's ``httpx.Client`` or ``httpx.AsyncClient`` (all but the transport)."""
        return {
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            "base_url": self.base_url,
            "headers": self.settings.default_headers(),
            "params": self.settings.default_params(),
            "timeout": self._timeout,
            "verify": self.settings.verify_ssl,
            "follow_redirects": False,
        }

    def _content(self, body: MultipartBody, deadline: Deadline) -> Iterator[bytes] | AsyncIterator[bytes]:
        """The body as the client's transport reads it (sync or async chunks), within ``deadline``."""
        raise NotImplementedError

    def _deadline(self, spec: RequestSpec) -> Deadline:
        """The deadline of one attempt: ``timeout_s`` plus time for the body's bytes (see :mod:`.transfer`)."""
        length = spec.body.content_length if spec.body is not None else 0
        return Deadline(self.settings.timeout_s, length)

    def _build(self, spec: RequestSpec, deadline: Deadline) -> httpx.Request:
        headers = dict(spec.headers)
        content = None
        if spec.body is not None:
            headers.update(spec.body.headers())
            content = self._content(spec.body, deadline)
        return self._http.build_request(
            spec.method, spec.path, params=spec.params, json=spec.json, content=content, headers=headers
        )

    def _describe(self, spec: RequestSpec) -> str:
        return f"{spec.method} {self.base_url}{spec.path}"

    def _failed(self, spec: RequestSpec) -> str:
        where = f" ({self.settings.context})" if self.settings.context else ""
        return f"{self._describe(spec)}{where} failed"

    def _transport_error(self, spec: RequestSpec, exc: httpx.TransportError) -> ApiConnectionError:
        failed = f"{self._failed(spec)}: {type(exc).__name__}: {redact(str(exc) or type(exc).__name__, self._secrets)}"
        parts = urlsplit(self.base_url)
        server = f"{parts.scheme}://{parts.netloc}"
        ssl_error = _ssl_error(exc)
        if ssl_error is not None and ssl_error.reason in _PLAIN_HTTP_SSL_REASONS:
            return ApiConnectionError(
                f"{failed}; the TLS handshake failed because the server at {server} speaks plain HTTP: "
                f"use http://{parts.netloc} in the base URL",
                reached_server=False,
                retryable=False,
            )
        if isinstance(ssl_error, ssl.SSLCertVerificationError):
            return ApiConnectionError(
                f"{failed}; the certificate of {server} could not be verified: fix it, or set verify_ssl "
                "to false if the link is trusted",
                reached_server=False,
                retryable=False,
            )
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            cls = ApiTimeoutError if isinstance(exc, httpx.TimeoutException) else ApiConnectionError
            return cls(
                f"{failed}; the server at {server} could not be reached, so nothing was sent",
                reached_server=False,
            )
        if isinstance(exc, httpx.PoolTimeout):
            return ApiTimeoutError(f"{failed}; no connection of the pool came free", reached_server=False)
        if isinstance(exc, httpx.LocalProtocolError):
            # A request httpx cannot write (settings refuse the usual causes): sending it again fails again.
            return ApiConnectionError(f"{failed}; the request could not be written", retryable=False)
        cls = ApiTimeoutError if isinstance(exc, httpx.TimeoutException) else ApiConnectionError
        return cls(failed)

    def _attempt_error(
        self, spec: RequestSpec, exc: httpx.TransportError | DeadlineExceeded | ResponseTooLarge
    ) -> FilesApiError:
        """The error of an attempt that got no usable answer; an answer too large is raised at once."""
        if isinstance(exc, ResponseTooLarge):
            raise self._too_large_error(spec, exc) from None
        if isinstance(exc, DeadlineExceeded):
            return self._deadline_error(spec, exc)
        return self._transport_error(spec, exc)

    def _deadline_error(self, spec: RequestSpec, exc: DeadlineExceeded) -> ApiTimeoutError:
        return ApiTimeoutError(
            f"{self._failed(spec)}: it {exc} (timeout_s={self.settings.timeout_s:g} plus the time its bytes "
            f"take at {MIN_TRANSFER_RATE_BYTES_PER_S // KIB} KiB/s); the server is sending or reading too slowly"
        )

    def _too_large_error(self, spec: RequestSpec, exc: ResponseTooLarge) -> UnexpectedResponseError:
        return UnexpectedResponseError(
            f"{self._describe(spec)} {exc}, more than an answer of the API can be; it was not read "
            "(is the base URL right?)"
        )

    def _server_text_error(self, exc: UnexpectedResponseError) -> UnexpectedResponseError:
        """``exc`` with what the server sent redacted, then shortened."""
        return UnexpectedResponseError(shorten(redact(str(exc), self._secrets)))

    def _parse(self, operation: Operation[T], data: Any) -> T:
        try:
            return operation.parse(data)
        except UnexpectedResponseError as exc:
            raise self._server_text_error(exc) from None

    def _next_cursor(self, page: Page[Any], previous: str | None, paginates: bool = True) -> str | None:
        try:
            return next_cursor(page, previous, paginates)
        except UnexpectedResponseError as exc:
            raise self._server_text_error(exc) from None

    @staticmethod
    def _json_body() -> CappedBody:
        return CappedBody(MAX_JSON_RESPONSE_BYTES, truncate=False)

    @staticmethod
    def _error_body() -> CappedBody:
        return CappedBody(MAX_ERROR_BODY_BYTES, truncate=True)

    def _json(self, body: bytes, response: httpx.Response) -> Any:
        """The answer's JSON; a server that echoed a credential gets it masked in its messages."""
        try:
            data = parse_json(body, response)
        except UnexpectedResponseError as exc:
            raise self._server_text_error(exc) from None
        return redact_server_text(data, self._secrets) if mentions(body, self._secrets) else data

    def _status_error(self, response: httpx.Response, body: bytes) -> ApiStatusError:
        return error_from_response(
            response,
            secrets=self._secrets,
            context=self.settings.context,
            retry_after_s=parse_retry_after(response.headers),
            body=body,
        )

    def _next_delay(
        self, state: RetryState, spec: RequestSpec, error: FilesApiError, should_retry: str | None
    ) -> float:
        """The wait before the next attempt; raises ``error`` when there is none."""
        delay = state.next_delay(error, should_retry_header=should_retry)
        if delay is None:
            raise error
        if spec.body is not None and not spec.body.replayable:
            raise SourceNotReplayableError(
                f"{self._describe(spec)} failed and its body was a one-shot stream, so it was not retried: {error}"
            ) from error
        log.warning(
            "%s failed (%s); retry %d of %d in %.2fs",
            self._describe(spec),
            error,
            state.attempts,
            self._policy.max_attempts - 1,
            delay,
        )
        return delay
