"""What the blocking and the async clients share: settings, request building, error mapping, retry waits."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

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
    redact,
)
from airflow_provider_files.api.gateways import ClientSettings
from airflow_provider_files.api.operations import Operations, RequestSpec
from airflow_provider_files.api.retry import RetryState, parse_retry_after

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK_BYTES = 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 16

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


def parse_json(response: httpx.Response) -> Any:
    """The JSON body of a successful response whose body has been read."""
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code} "
            f"with a body that is not JSON: {response.text[:200]!r}"
        ) from None


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

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "headers": self.settings.default_headers(),
            "params": self.settings.default_params(),
            "timeout": self._timeout,
            "verify": self.settings.verify_ssl,
            "follow_redirects": False,
        }

    def _content(self, body: MultipartBody) -> Iterator[bytes] | AsyncIterator[bytes]:
        """The body as the client's transport reads it (sync or async chunks)."""
        raise NotImplementedError

    def _build(self, spec: RequestSpec) -> httpx.Request:
        headers = dict(spec.headers)
        content = None
        if spec.body is not None:
            headers.update(spec.body.headers())
            content = self._content(spec.body)
        return self._http.build_request(
            spec.method, spec.path, params=spec.params, json=spec.json, content=content, headers=headers
        )

    def _describe(self, spec: RequestSpec) -> str:
        return f"{spec.method} {self.base_url}{spec.path}"

    def _transport_error(self, spec: RequestSpec, exc: httpx.TransportError) -> ApiConnectionError:
        cls = ApiTimeoutError if isinstance(exc, httpx.TimeoutException) else ApiConnectionError
        detail = redact(str(exc) or type(exc).__name__, self._secrets)
        where = f" ({self.settings.context})" if self.settings.context else ""
        return cls(f"{self._describe(spec)}{where} failed: {type(exc).__name__}: {detail}")

    def _status_error(self, response: httpx.Response) -> ApiStatusError:
        return error_from_response(
            response,
            secrets=self._secrets,
            context=self.settings.context,
            retry_after_s=parse_retry_after(response.headers),
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

    @staticmethod
    def _parse_json(response: httpx.Response) -> Any:
        return parse_json(response)
