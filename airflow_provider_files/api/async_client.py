"""The async client for triggers and async code: the same table of operations, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any, TypeVar, cast

import httpx

from airflow_provider_files.api import recovery
from airflow_provider_files.api.batch_models import Batch
from airflow_provider_files.api.bodies import MultipartBody
from airflow_provider_files.api.client_base import DEFAULT_MAX_CONNECTIONS, ClientBase, DownloadTarget, Page
from airflow_provider_files.api.client_base import client_operation as awaiting  # its old name here
from airflow_provider_files.api.errors import FilesApiError
from airflow_provider_files.api.gateways import ClientSettings
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.operations import Operation, RequestSpec
from airflow_provider_files.api.retry import is_ambiguous
from airflow_provider_files.api.transfer import Deadline, DeadlineExceeded, ResponseTooLarge

T = TypeVar("T")
ItemT = TypeVar("ItemT")


class AsyncFilesClient(ClientBase):
    """Non-blocking twin of :class:`~airflow_provider_files.api.FilesClient`, for triggers and async code.

    :param settings: where and how to connect.
    :param transport: an httpx async transport (tests pass ``httpx.MockTransport``).
    :param max_connections: size of the connection pool.
    """

    _http: httpx.AsyncClient

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(settings)
        self._http = httpx.AsyncClient(
            transport=transport,
            **self._client_kwargs(max_connections),
        )

    async def __aenter__(self) -> AsyncFilesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _bind(self, operation: awaiting[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await operation(self, *args, **kwargs)

        return call

    # -- what is more than one request -------------------------------------------------------

    def iter_files(
        self, *, purpose: str | None = None, order: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[FileObject]:
        """Every file, following ``has_more``/``last_id``."""
        return self._pages(
            lambda after: self.list_files(purpose=purpose, limit=page_size, order=order, after=after),
            self.operations.profile.paginates,
        )

    def iter_batches(self, *, limit: int | None = None) -> AsyncIterator[Batch]:
        """Every batch, newest first, following ``has_more``/``last_id``; ``limit`` is the page size."""
        return self._pages(lambda after: self.list_batches(after=after, limit=limit))

    async def download_file(self, file_id: str, destination: IO[bytes]) -> int:
        """``GET /files/{file_id}/content`` streamed to a binary file object (one attempt per retry)."""
        spec = self.operations.file_content(file_id)
        state = self._policy.start()
        target = DownloadTarget(destination)
        while True:
            should_retry: str | None = None
            deadline = self._deadline(spec)
            try:
                response = await self._within(
                    deadline, self._http.send(self._build(spec, deadline), stream=True)
                )
                try:
                    if response.is_success:
                        target.begin()
                        # Chunks as they arrive, so that a trickle meets the deadline.
                        async for chunk in response.aiter_bytes():
                            target.write(chunk, deadline)
                        return target.finish()
                    body = await self._within(deadline, self._read_error(response))
                    error: FilesApiError = self._status_error(response, body)
                    should_retry = response.headers.get("x-should-retry")
                finally:
                    await response.aclose()
            except (httpx.TransportError, DeadlineExceeded) as exc:
                error = self._attempt_error(spec, exc)
            await asyncio.sleep(self._next_delay(state, spec, error, should_retry))

    async def find_stored_file(self, match: recovery.FileMatch, md5: Callable[[], str]) -> FileObject | None:
        """Async :meth:`FilesClient.find_stored_file`; ``md5()`` runs in a worker thread."""
        try:
            candidate = match.only_candidate(await self.list_files(**match.list_params()))
            if candidate is None:
                return None
            sink = recovery.Md5Sink()
            await self.download_file(candidate.id, cast(IO[bytes], sink))
        except FilesApiError as exc:
            recovery.lookup_failed(exc)
            return None
        return recovery.confirm(candidate, sink.hexdigest(), await asyncio.to_thread(md5))

    # -- sending -----------------------------------------------------------------------------

    async def _call(self, operation: Operation[T]) -> T:
        recover: Callable[[], Awaitable[Any]] | None = None
        match, body = operation.recovery, operation.spec.body
        if match is not None and body is not None:

            async def recover() -> dict[str, Any] | None:
                found = await self.find_stored_file(match, lambda: recovery.body_md5(body.source))
                return dict(found.raw) if found else None

        return self._parse(operation, await self._send(operation.spec, recover))

    async def _send(self, spec: RequestSpec, recover: Callable[[], Awaitable[Any]] | None = None) -> Any:
        state = self._policy.start()
        while True:
            should_retry: str | None = None
            deadline = self._deadline(spec)
            try:
                answered, value, should_retry = await self._within(deadline, self._attempt(spec, deadline))
                if answered:
                    return value
                error: FilesApiError = value
            except (httpx.TransportError, DeadlineExceeded, ResponseTooLarge) as exc:
                error = self._attempt_error(spec, exc)
            await asyncio.sleep(self._next_delay(state, spec, error, should_retry))
            if recover is not None and is_ambiguous(error):
                found = await recover()
                if found is not None:
                    return found

    async def _attempt(self, spec: RequestSpec, deadline: Deadline) -> tuple[bool, Any, str | None]:
        """One attempt: ``(True, JSON, None)``, or ``(False, the error, x-should-retry)``."""
        response = await self._http.send(self._build(spec, deadline), stream=True)
        try:
            if response.is_success:
                collected = self._json_body()
                collected.refuse_early(response.headers.get("content-length"))
                async for chunk in response.aiter_bytes():
                    deadline.check()  # the only bound when the body was a stream of unknown length
                    collected.add(chunk)
                return True, self._json(collected.value(), response), None
            body = await self._read_error(response)
            return False, self._status_error(response, body), response.headers.get("x-should-retry")
        finally:
            await response.aclose()

    async def _read_error(self, response: httpx.Response) -> bytes:
        """The start of an error answer's body."""
        collected = self._error_body()
        async for chunk in response.aiter_bytes():
            if not collected.add(chunk):
                break
        return collected.value()

    @staticmethod
    async def _within(deadline: Deadline, awaitable: Awaitable[T]) -> T:
        """``awaitable``, cut off at the attempt's deadline (head, body and all). A deadline that grows
        as a stream of unknown length is sent is looked at again when the time it gave is up."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                remaining = deadline.remaining_s()
                if remaining <= 0:
                    raise DeadlineExceeded(deadline.allowed_s())
                done, _ = await asyncio.wait({task}, timeout=remaining)
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _content(self, body: MultipartBody, deadline: Deadline) -> AsyncIterator[bytes]:
        async for chunk in body.achunks():
            deadline.check()
            yield chunk
            deadline.sent(len(chunk))

    async def _pages(
        self, fetch: Callable[[str | None], Awaitable[Page[ItemT]]], paginates: bool = True
    ) -> AsyncIterator[ItemT]:
        after: str | None = None
        while True:
            page = await fetch(after)
            for item in page.data:
                yield item
            after = self._next_cursor(page, after, paginates)
            if after is None:
                return
