"""The blocking client: each operation of the table becomes a method with the same signature."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import httpx

from airflow_provider_files.api import recovery
from airflow_provider_files.api.batch_models import Batch
from airflow_provider_files.api.bodies import MultipartBody
from airflow_provider_files.api.client_base import DEFAULT_MAX_CONNECTIONS, ClientBase, DownloadTarget, Page
from airflow_provider_files.api.client_base import client_operation as blocking  # its old name here
from airflow_provider_files.api.errors import FilesApiError
from airflow_provider_files.api.gateways import ClientSettings
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.operations import Operation, RequestSpec
from airflow_provider_files.api.retry import is_ambiguous
from airflow_provider_files.api.transfer import (
    Deadline,
    DeadlineExceeded,
    ResponseTooLarge,
    attempt_deadline,
    bound_reads_and_writes,
)

T = TypeVar("T")
ItemT = TypeVar("ItemT")


class FilesClient(ClientBase):
    """Blocking client. Use as a context manager, or call :meth:`close`.

    :param settings: where and how to connect.
    :param transport: an httpx transport (tests pass ``httpx.MockTransport``).
    :param max_connections: size of the connection pool (parallel part uploads share it).
    :param sleep: how to wait between retries (tests pass a recorder).
    """

    _http: httpx.Client

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(settings)
        self._http = httpx.Client(
            transport=transport,
            **self._client_kwargs(max_connections),
        )
        bound_reads_and_writes(self._http)  # the deadline bounds the response head too
        self._sleep = sleep

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _bind(self, operation: blocking[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return operation(self, *args, **kwargs)

        return call

    # -- what is more than one request -------------------------------------------------------

    def iter_files(
        self, *, purpose: str | None = None, order: str | None = None, page_size: int | None = None
    ) -> Iterator[FileObject]:
        """Every file, following ``has_more``/``last_id`` page after page."""
        return self._pages(
            lambda after: self.list_files(purpose=purpose, limit=page_size, order=order, after=after),
            self.operations.profile.paginates,
        )

    def iter_batches(self, *, limit: int | None = None) -> Iterator[Batch]:
        """Every batch, newest first, following ``has_more``/``last_id``; ``limit`` is the page size."""
        return self._pages(lambda after: self.list_batches(after=after, limit=limit))

    def download_file(self, file_id: str, destination: str | os.PathLike[str] | IO[bytes]) -> int:
        """``GET /files/{file_id}/content`` streamed to a path (written atomically) or a file object.

        A path is written through a temporary file of its own in the same folder, renamed over
        the path at the end: two downloads to one path each leave a whole file, the last one wins.

        :return: bytes written.
        """
        spec = self.operations.file_content(file_id)
        if isinstance(destination, (str, os.PathLike)):
            target = Path(destination)
            descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            partial = Path(name)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    written = self._send(spec, _stream_to(handle))
                os.chmod(partial, _new_file_mode())
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            return written
        return self._send(spec, _stream_to(destination))

    def find_stored_file(self, match: recovery.FileMatch, md5: Callable[[], str]) -> FileObject | None:
        """The file an attempt whose answer was lost stored anyway, if it can be told apart.

        It counts only when it is the one file matching ``match`` and its content has the md5
        ``md5()`` gives (computed only then); see :mod:`~airflow_provider_files.api.recovery`.
        """
        try:
            candidate = match.only_candidate(self.list_files(**match.list_params()))
            if candidate is None:
                return None
            sink = recovery.Md5Sink()
            self.download_file(candidate.id, cast(IO[bytes], sink))
        except FilesApiError as exc:
            recovery.lookup_failed(exc)
            return None
        return recovery.confirm(candidate, sink.hexdigest(), md5())

    # -- sending -----------------------------------------------------------------------------

    def call_recovering(self, operation: Operation[T], recover: Callable[[], Any | None]) -> T:
        """Send ``operation`` with the usual retries; before re-sending after a failure that may have
        done the work anyway (no answer, a 5xx), ask ``recover()`` for the JSON the lost answer would
        have held: when it finds it, that is the result and nothing is sent again.

        For creates that must not happen twice (a batch): the caller knows how to find its own work.
        """
        return self._parse(operation, self._send(operation.spec, self._read_json, recover))

    def _call(self, operation: Operation[T]) -> T:
        recover: Callable[[], Any] | None = None
        match, body = operation.recovery, operation.spec.body
        if match is not None and body is not None:

            def recover() -> dict[str, Any] | None:
                found = self.find_stored_file(match, lambda: recovery.body_md5(body.source))
                return dict(found.raw) if found else None

        return self._parse(operation, self._send(operation.spec, self._read_json, recover))

    def _send(
        self,
        spec: RequestSpec,
        consume: Callable[[httpx.Response, Deadline], T],
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        state = self._policy.start()
        while True:
            should_retry: str | None = None
            deadline = self._deadline(spec)
            try:
                with attempt_deadline(deadline):
                    response = self._http.send(self._build(spec, deadline), stream=True)
                    try:
                        if response.is_success:
                            return consume(response, deadline)
                        body = self._read_error(response, deadline)
                        should_retry = response.headers.get("x-should-retry")
                        error: FilesApiError = self._status_error(response, body)
                    finally:
                        response.close()
            except (httpx.TransportError, DeadlineExceeded, ResponseTooLarge) as exc:
                error = self._attempt_error(spec, exc)
            self._sleep(self._next_delay(state, spec, error, should_retry))
            if recover is not None and is_ambiguous(error):
                found = recover()
                if found is not None:
                    return found

    def _content(self, body: MultipartBody, deadline: Deadline) -> Iterator[bytes]:
        for chunk in body.chunks():
            deadline.check()
            yield chunk
            deadline.sent(len(chunk))

    def _read_json(self, response: httpx.Response, deadline: Deadline) -> Any:
        """Consumer of a successful answer: read its JSON body (capped, within the deadline) and parse it."""
        collected = self._json_body()
        collected.refuse_early(response.headers.get("content-length"))
        for chunk in response.iter_bytes():
            deadline.check()
            collected.add(chunk)
        return self._json(collected.value(), response)

    def _read_error(self, response: httpx.Response, deadline: Deadline) -> bytes:
        """The start of an error answer's body, within the deadline."""
        collected = self._error_body()
        for chunk in response.iter_bytes():
            deadline.check()
            if not collected.add(chunk):
                break
        return collected.value()

    def _pages(self, fetch: Callable[[str | None], Page[ItemT]], paginates: bool = True) -> Iterator[ItemT]:
        after: str | None = None
        while True:
            page = fetch(after)
            yield from page.data
            after = self._next_cursor(page, after, paginates)
            if after is None:
                return


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask), read without changing the umask."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def _stream_to(handle: IO[bytes]) -> Callable[[httpx.Response, Deadline], int]:
    """A response consumer writing the body to ``handle``, from the same start on every attempt.

    The attempt's deadline grows with the bytes received: a download may take ``timeout_s``
    plus the time of its bytes at the minimum rate.
    """
    target = DownloadTarget(handle)

    def consume(response: httpx.Response, deadline: Deadline) -> int:
        target.begin()
        for chunk in response.iter_bytes():  # as they arrive, so that a trickle meets the deadline
            target.write(chunk, deadline)
        return target.finish()

    return consume
