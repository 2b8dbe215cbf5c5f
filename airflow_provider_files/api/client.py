"""Sync and async clients for the Files and Uploads API, one method per operation.

Both clients share :class:`Endpoints`, which turns each operation into a request description
and a parser, so the only thing written twice is the send loop (blocking vs awaiting).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, cast
from urllib.parse import quote

import httpx

from airflow_provider_files.api.bodies import (
    BodyInput,
    BodySource,
    FileRange,
    MultipartBody,
    as_body_source,
    default_filename,
)
from airflow_provider_files.api.errors import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    ConfigurationError,
    FilesApiError,
    SourceNotReplayableError,
    UnexpectedResponseError,
    error_from_response,
    redact,
)
from airflow_provider_files.api.gateways import ClientSettings
from airflow_provider_files.api.models import FileDeleted, FileList, FileObject, Upload, UploadPart
from airflow_provider_files.api.retry import RetryState, parse_retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")

EXPIRES_AFTER_MIN_S = 3600
EXPIRES_AFTER_MAX_S = 2_592_000
LIST_LIMIT_MAX = 10_000
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# When a create request fails in a way that may have stored the file anyway, files created up
# to this long before the first attempt still count as "ours" (server clocks drift).
RECOVERY_CLOCK_SLACK_S = 5
# Characters left as they are in an id path segment ('?', '#', '%' and spaces get quoted).
_ID_SAFE_CHARS = "-._~=+:@!$&'()*,;"


@dataclass(frozen=True)
class RequestSpec:
    """What to send, independent of sync or async."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    body: MultipartBody | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation(Generic[T]):
    """A request and how to read its JSON answer."""

    spec: RequestSpec
    parse: Callable[[Any], T]


@dataclass(frozen=True)
class FileMatch:
    """What identifies a file a failed create may have stored anyway."""

    filename: str
    size: int
    purpose: str
    not_before: float

    def candidates(self, page: FileList) -> list[FileObject]:
        """Files of this name, size and purpose created since the first attempt began."""
        return [
            item
            for item in page.data
            if item.filename == self.filename
            and item.bytes == self.size
            and (item.created_at is None or item.created_at >= self.not_before - RECOVERY_CLOCK_SLACK_S)
        ]


class Md5Sink(io.RawIOBase):
    """A write-only destination keeping the md5 of what is written; rewinding to 0 starts over
    (the client rewinds its destination when a download is retried)."""

    def __init__(self) -> None:
        super().__init__()
        self._digest = hashlib.md5(usedforsecurity=False)
        self._position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("an md5 sink can only be rewound to its start")
        self._digest = hashlib.md5(usedforsecurity=False)
        self._position = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        if size not in (None, self._position):
            raise io.UnsupportedOperation("an md5 sink can only be truncated where it stands")
        return self._position

    def write(self, data: Any) -> int:
        self._digest.update(data)
        self._position += len(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def body_md5(source: BodySource) -> str:
    """md5 of a replayable body source, read from its start."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in source.chunks():
        digest.update(chunk)
    return digest.hexdigest()


def _expires_after(expires_after_s: int | None) -> int | None:
    if expires_after_s is None:
        return None
    if not EXPIRES_AFTER_MIN_S <= expires_after_s <= EXPIRES_AFTER_MAX_S:
        raise ConfigurationError(
            f"expires_after_s must be between {EXPIRES_AFTER_MIN_S} (1 hour) and "
            f"{EXPIRES_AFTER_MAX_S} (30 days), got {expires_after_s}"
        )
    return expires_after_s


def _require_id(value: str, what: str) -> str:
    """The id as one path segment; ids are opaque (gateways may base64 them), so only quote them."""
    if not isinstance(value, str) or not value.strip() or "/" in value:
        raise ValueError(f"{what} must be a non-empty id without '/', got {value!r}")
    return quote(value, safe=_ID_SAFE_CHARS)


class Endpoints:
    """Builds the request of each operation for one gateway profile."""

    def __init__(self, settings: ClientSettings) -> None:
        self.profile = settings.profile

    # -- files -------------------------------------------------------------------------------

    def create_file(
        self,
        file: BodyInput,
        purpose: str,
        *,
        filename: str | None = None,
        expires_after_s: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> Operation[FileObject]:
        self.profile.require_purpose(purpose)
        seconds = _expires_after(expires_after_s)
        fields = [("purpose", purpose)]
        if seconds is not None:
            fields += [("expires_after[anchor]", "created_at"), ("expires_after[seconds]", str(seconds))]
        name = filename or default_filename(file) or "upload"
        body = MultipartBody(fields, "file", name, as_body_source(file), content_type)
        return Operation(RequestSpec("POST", self.profile.path("files"), body=body), FileObject.from_dict)

    def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
    ) -> Operation[FileList]:
        if limit is not None and not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {LIST_LIMIT_MAX}, got {limit}")
        if order not in (None, "asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        params: dict[str, Any] = {"purpose": purpose}
        if self.profile.paginates:
            params.update(limit=limit, order=order, after=after)
        params = {k: v for k, v in params.items() if v is not None}
        return Operation(RequestSpec("GET", self.profile.path("files"), params=params), FileList.from_dict)

    def retrieve_file(self, file_id: str) -> Operation[FileObject]:
        path = self.profile.path("files", _require_id(file_id, "file_id"))
        return Operation(RequestSpec("GET", path), FileObject.from_dict)

    def delete_file(self, file_id: str) -> Operation[FileDeleted]:
        path = self.profile.path("files", _require_id(file_id, "file_id"))
        return Operation(RequestSpec("DELETE", path), FileDeleted.from_dict)

    def file_content(self, file_id: str) -> RequestSpec:
        path = self.profile.path("files", _require_id(file_id, "file_id"), "content")
        return RequestSpec("GET", path, headers={"Accept": "application/binary"})

    # -- uploads -----------------------------------------------------------------------------

    def create_upload(
        self,
        filename: str,
        purpose: str,
        bytes: int,
        mime_type: str,
        *,
        expires_after_s: int | None = None,
    ) -> Operation[Upload]:
        self.profile.require_uploads()
        self.profile.require_purpose(purpose)
        if bytes < 0:
            raise ValueError(f"bytes must be >= 0, got {bytes}")
        payload: dict[str, Any] = {
            "filename": filename,
            "purpose": purpose,
            "bytes": bytes,
            "mime_type": mime_type,
        }
        seconds = _expires_after(expires_after_s)
        if seconds is not None:
            payload["expires_after"] = {"anchor": "created_at", "seconds": seconds}
        return Operation(RequestSpec("POST", self.profile.path("uploads"), json=payload), Upload.from_dict)

    def add_upload_part(self, upload_id: str, data: BodyInput) -> Operation[UploadPart]:
        self.profile.require_uploads()
        path = self.profile.path("uploads", _require_id(upload_id, "upload_id"), "parts")
        body = MultipartBody([], "data", "part", as_body_source(data))
        return Operation(RequestSpec("POST", path, body=body), UploadPart.from_dict)

    def complete_upload(
        self, upload_id: str, part_ids: Sequence[str], md5: str | None = None
    ) -> Operation[Upload]:
        self.profile.require_uploads()
        if isinstance(part_ids, str):
            raise TypeError("part_ids must be a list of part ids in file order, not a string")
        payload: dict[str, Any] = {"part_ids": list(part_ids)}
        if md5:
            payload["md5"] = md5
        path = self.profile.path("uploads", _require_id(upload_id, "upload_id"), "complete")
        return Operation(RequestSpec("POST", path, json=payload), Upload.from_dict)

    def cancel_upload(self, upload_id: str) -> Operation[Upload]:
        self.profile.require_uploads()
        path = self.profile.path("uploads", _require_id(upload_id, "upload_id"), "cancel")
        return Operation(RequestSpec("POST", path), Upload.from_dict)


def _match_for(file: BodyInput, filename: str | None, purpose: str) -> FileMatch | None:
    """How to recognise the file a create may have stored before its response was lost."""
    source = as_body_source(file) if not isinstance(file, (str, os.PathLike)) else None
    size = source.length if source is not None else Path(file).stat().st_size  # type: ignore[arg-type]
    name = filename or default_filename(file) or "upload"
    return None if size is None else FileMatch(name, size, purpose, time.time())


def _is_ambiguous(error: FilesApiError) -> bool:
    """A failure after which the server may nevertheless have done the work."""
    if isinstance(error, ApiStatusError):
        return error.status_code >= 500
    return isinstance(error, ApiConnectionError)


class _ClientBase:
    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.endpoints = Endpoints(settings)
        self.base_url = settings.resolved_base_url()
        self._secrets = tuple(settings.secret_values())
        self._policy = settings.effective_retry_policy()
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)

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
        http: httpx.Client | httpx.AsyncClient = self._http  # type: ignore[attr-defined]
        return http.build_request(
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
        """The JSON body of a successful response whose body has been read."""
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponseError(
                f"{response.request.method} {response.request.url.path} answered {response.status_code} "
                f"with a body that is not JSON: {response.text[:200]!r}"
            ) from None


class FilesClient(_ClientBase):
    """Blocking client. Use as a context manager, or call :meth:`close`.

    :param settings: where and how to connect.
    :param transport: an httpx transport (tests pass ``httpx.MockTransport``).
    :param max_connections: size of the connection pool (parallel part uploads share it).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(settings)
        self._http = httpx.Client(
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            **self._client_kwargs(),
        )
        self._sleep = sleep

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(
        self,
        spec: RequestSpec,
        consume: Callable[[httpx.Response], T],
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        state = self._policy.start()
        while True:
            should_retry: str | None = None
            try:
                response = self._http.send(self._build(spec), stream=True)
                try:
                    if response.is_success:
                        return consume(response)
                    response.read()
                    should_retry = response.headers.get("x-should-retry")
                    error: FilesApiError = self._status_error(response)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                error = self._transport_error(spec, exc)
            self._sleep(self._next_delay(state, spec, error, should_retry))
            if recover is not None and _is_ambiguous(error):
                found = recover()
                if found is not None:
                    return found

    def _content(self, body: MultipartBody) -> Iterator[bytes]:
        return body.chunks()

    def _call(self, operation: Operation[T]) -> T:
        return operation.parse(self._send(operation.spec, _read_json))

    # -- files -------------------------------------------------------------------------------

    def create_file(
        self,
        file: BodyInput,
        purpose: str,
        *,
        filename: str | None = None,
        expires_after_s: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> FileObject:
        """``POST /files``: upload ``file`` (a path, bytes or binary file object) in one request.

        If an attempt fails in a way that may have stored the file anyway (connection lost,
        5xx), the retry first looks for a file of the same name and size created since the
        first attempt and returns it, so a retry does not create a duplicate.
        """
        operation = self.endpoints.create_file(
            file, purpose, filename=filename, expires_after_s=expires_after_s, content_type=content_type
        )
        match = _match_for(file, filename, purpose)
        body = operation.spec.body

        def recover() -> dict[str, Any] | None:
            if match is None or body is None:
                return None
            found = self.find_stored_file(match, lambda: body_md5(body.source))
            return dict(found.raw) if found else None

        return operation.parse(self._send(operation.spec, _read_json, recover))

    def find_stored_file(self, match: FileMatch, md5: Callable[[], str]) -> FileObject | None:
        """The file an attempt whose answer was lost stored anyway, if it can be told apart.

        It counts only when it is the one file matching ``match`` and its content has the md5
        ``md5()`` gives (computed only then): another upload of the same name and size may run at
        the same time, and taking its file would hand on the wrong data.
        """
        try:
            candidates = match.candidates(self.list_files(purpose=match.purpose, order="desc", limit=100))
            if len(candidates) != 1:
                if candidates:
                    log.info("%d files could be the one stored by the failed attempt", len(candidates))
                return None
            sink = Md5Sink()
            self.download_file(candidates[0].id, cast(IO[bytes], sink))
        except FilesApiError as exc:
            log.warning("could not check for a file stored by the failed attempt: %s", exc)
            return None
        if sink.hexdigest() != md5():
            log.info("file %s has the same name and size but other content", candidates[0].id)
            return None
        return candidates[0]

    def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
    ) -> FileList:
        """``GET /files``: one page."""
        return self._call(self.endpoints.list_files(purpose=purpose, limit=limit, order=order, after=after))

    def iter_files(
        self, *, purpose: str | None = None, order: str | None = None, page_size: int | None = None
    ) -> Iterator[FileObject]:
        """Every file, following ``has_more``/``last_id`` page after page."""
        after: str | None = None
        while True:
            page = self.list_files(purpose=purpose, limit=page_size, order=order, after=after)
            yield from page.data
            after = _next_cursor(page, after, self.endpoints.profile.paginates)
            if after is None:
                return

    def retrieve_file(self, file_id: str) -> FileObject:
        """``GET /files/{file_id}``."""
        return self._call(self.endpoints.retrieve_file(file_id))

    def delete_file(self, file_id: str) -> FileDeleted:
        """``DELETE /files/{file_id}``."""
        return self._call(self.endpoints.delete_file(file_id))

    def download_file(self, file_id: str, destination: str | os.PathLike[str] | IO[bytes]) -> int:
        """``GET /files/{file_id}/content`` streamed to a path (written atomically) or a file object.

        :return: bytes written.
        """
        spec = self.endpoints.file_content(file_id)
        if isinstance(destination, (str, os.PathLike)):
            target = Path(destination)
            partial = target.with_name(target.name + ".part")
            try:
                with open(partial, "wb") as handle:
                    written = self._send(spec, _stream_to(handle))
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            return written
        return self._send(spec, _stream_to(destination))

    # -- uploads -----------------------------------------------------------------------------

    def create_upload(
        self, filename: str, purpose: str, bytes: int, mime_type: str, *, expires_after_s: int | None = None
    ) -> Upload:
        """``POST /uploads``: start an upload of ``bytes`` bytes (status ``pending``)."""
        return self._call(
            self.endpoints.create_upload(filename, purpose, bytes, mime_type, expires_after_s=expires_after_s)
        )

    def add_upload_part(self, upload_id: str, data: BodyInput) -> UploadPart:
        """``POST /uploads/{upload_id}/parts``: ``data`` is bytes, a binary file object or a :class:`FileRange`."""
        return self._call(self.endpoints.add_upload_part(upload_id, data))

    def complete_upload(self, upload_id: str, part_ids: Sequence[str], md5: str | None = None) -> Upload:
        """``POST /uploads/{upload_id}/complete``: ``part_ids`` in file order; the result carries ``file``."""
        return self._call(self.endpoints.complete_upload(upload_id, part_ids, md5))

    def cancel_upload(self, upload_id: str) -> Upload:
        """``POST /uploads/{upload_id}/cancel``."""
        return self._call(self.endpoints.cancel_upload(upload_id))


class AsyncFilesClient(_ClientBase):
    """Non-blocking twin of :class:`FilesClient`, for triggers and async code.

    :param settings: where and how to connect.
    :param transport: an httpx async transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__(settings)
        self._http = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            **self._client_kwargs(),
        )

    async def __aenter__(self) -> AsyncFilesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, spec: RequestSpec, recover: Callable[[], Any] | None = None) -> Any:
        state = self._policy.start()
        while True:
            should_retry: str | None = None
            try:
                response = await self._http.send(self._build(spec))
                if response.is_success:
                    return self._parse_json(response)
                should_retry = response.headers.get("x-should-retry")
                error: FilesApiError = self._status_error(response)
            except httpx.TransportError as exc:
                error = self._transport_error(spec, exc)
            await asyncio.sleep(self._next_delay(state, spec, error, should_retry))
            if recover is not None and _is_ambiguous(error):
                found = await recover()
                if found is not None:
                    return found

    def _content(self, body: MultipartBody) -> AsyncIterator[bytes]:
        return body.achunks()

    async def _call(self, operation: Operation[T]) -> T:
        return operation.parse(await self._send(operation.spec))

    async def create_file(
        self,
        file: BodyInput,
        purpose: str,
        *,
        filename: str | None = None,
        expires_after_s: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> FileObject:
        """``POST /files`` (see :meth:`FilesClient.create_file`)."""
        operation = self.endpoints.create_file(
            file, purpose, filename=filename, expires_after_s=expires_after_s, content_type=content_type
        )
        match = _match_for(file, filename, purpose)
        body = operation.spec.body

        async def recover() -> dict[str, Any] | None:
            if match is None or body is None:
                return None
            try:
                page = await self.list_files(purpose=match.purpose, order="desc", limit=100)
                candidates = match.candidates(page)
                if len(candidates) != 1:
                    return None
                sink = Md5Sink()
                await self.download_file(candidates[0].id, cast(IO[bytes], sink))
            except FilesApiError:
                return None
            same = sink.hexdigest() == await asyncio.to_thread(body_md5, body.source)
            return dict(candidates[0].raw) if same else None

        return operation.parse(await self._send(operation.spec, recover))

    async def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
    ) -> FileList:
        """``GET /files``: one page."""
        return await self._call(
            self.endpoints.list_files(purpose=purpose, limit=limit, order=order, after=after)
        )

    async def iter_files(
        self, *, purpose: str | None = None, order: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[FileObject]:
        """Every file, following ``has_more``/``last_id``."""
        after: str | None = None
        while True:
            page = await self.list_files(purpose=purpose, limit=page_size, order=order, after=after)
            for item in page.data:
                yield item
            after = _next_cursor(page, after, self.endpoints.profile.paginates)
            if after is None:
                return

    async def retrieve_file(self, file_id: str) -> FileObject:
        """``GET /files/{file_id}``."""
        return await self._call(self.endpoints.retrieve_file(file_id))

    async def delete_file(self, file_id: str) -> FileDeleted:
        """``DELETE /files/{file_id}``."""
        return await self._call(self.endpoints.delete_file(file_id))

    async def download_file(self, file_id: str, destination: IO[bytes]) -> int:
        """``GET /files/{file_id}/content`` streamed to a binary file object (one attempt per retry)."""
        spec = self.endpoints.file_content(file_id)
        state = self._policy.start()
        seekable = destination.seekable()
        start = destination.tell() if seekable else 0
        attempts = 0
        while True:
            try:
                async with self._http.stream(spec.method, spec.path, headers=dict(spec.headers)) as response:
                    if response.is_success:
                        attempts += 1
                        if attempts > 1 and not seekable:
                            raise SourceNotReplayableError(
                                "the download failed midway and the destination cannot be rewound"
                            )
                        written = 0
                        async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK_BYTES):
                            destination.write(chunk)
                            written += len(chunk)
                        if seekable:
                            destination.truncate()
                        return written
                    await response.aread()
                    error: FilesApiError = self._status_error(response)
                    should_retry = response.headers.get("x-should-retry")
            except httpx.TransportError as exc:
                error, should_retry = self._transport_error(spec, exc), None
            await asyncio.sleep(self._next_delay(state, spec, error, should_retry))
            if seekable:
                destination.seek(start)

    async def create_upload(
        self, filename: str, purpose: str, bytes: int, mime_type: str, *, expires_after_s: int | None = None
    ) -> Upload:
        """``POST /uploads``."""
        return await self._call(
            self.endpoints.create_upload(filename, purpose, bytes, mime_type, expires_after_s=expires_after_s)
        )

    async def add_upload_part(self, upload_id: str, data: BodyInput) -> UploadPart:
        """``POST /uploads/{upload_id}/parts``."""
        return await self._call(self.endpoints.add_upload_part(upload_id, data))

    async def complete_upload(
        self, upload_id: str, part_ids: Sequence[str], md5: str | None = None
    ) -> Upload:
        """``POST /uploads/{upload_id}/complete``."""
        return await self._call(self.endpoints.complete_upload(upload_id, part_ids, md5))

    async def cancel_upload(self, upload_id: str) -> Upload:
        """``POST /uploads/{upload_id}/cancel``."""
        return await self._call(self.endpoints.cancel_upload(upload_id))


def _next_cursor(page: FileList, previous: str | None, paginates: bool) -> str | None:
    """The ``after`` cursor of the next page, or ``None`` when this was the last page."""
    if not paginates or not page.has_more or not page.data:
        return None
    cursor = page.last_id
    if cursor is None or cursor == previous:
        raise UnexpectedResponseError(f"the server said has_more but gave no new cursor after {previous!r}")
    return cursor


def _read_json(response: httpx.Response) -> Any:
    """Consumer of a streamed response: read the whole (small) JSON body, then parse it."""
    response.read()
    return _ClientBase._parse_json(response)


def _stream_to(handle: IO[bytes]) -> Callable[[httpx.Response], int]:
    """A response consumer writing the body to ``handle``, from the same start on every attempt."""
    seekable = handle.seekable()
    start = handle.tell() if seekable else 0
    attempts = 0

    def consume(response: httpx.Response) -> int:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            if not seekable:
                raise SourceNotReplayableError(
                    "the download failed midway and the destination cannot be rewound"
                )
            handle.seek(start)
        written = 0
        for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
            handle.write(chunk)
            written += len(chunk)
        if seekable:
            handle.truncate()
        return written

    return consume


__all__ = ["AsyncFilesClient", "Endpoints", "FileRange", "FilesClient", "RequestSpec"]
