"""FilesHook and AsyncFilesHook: an Airflow connection turned into a Files, Uploads and Batches API client."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection, Mapping
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_files._airflow_compat import (
    AirflowFailException,
    AirflowNotFoundException,
    amask_secret,
    mask_secret,
)
from airflow_provider_files.api import (
    AsyncFilesClient,
    Batch,
    ClientSettings,
    FileObject,
    FilesApiError,
    FilesClient,
    NotFoundError,
    RetryPolicy,
)
from airflow_provider_files.api.bodies import BodyInput
from airflow_provider_files.api.connections import settings_from_connection
from airflow_provider_files.api.limits import BATCHES_LIST_LIMIT_MAX
from airflow_provider_files.api.polling import (
    MAX_CONSECUTIVE_ERRORS,
    MAX_POLL_INTERVAL_S,
    POLL_BACKOFF_FACTOR,
    POLL_INTERVAL_S,
    PollSchedule,
    PollState,
)
from airflow_provider_files.api.readiness import (
    NOT_FOUND_GRACE_S,
    BatchReadiness,
    BatchVerdict,
    FileTarget,
    Readiness,
    ReadinessTracker,
    batch_id_of,
    parse_file_targets,
)
from airflow_provider_files.exceptions import (
    BatchEndedError,
    BatchWaitError,
    BatchWaitTimeoutError,
    FileProcessingFailedError,
    FileWaitError,
    FileWaitTimeoutError,
)
from airflow_provider_files.hooks._connection_test import connection_test_label
from airflow_provider_files.hooks._delegate import async_client_method, client_method
from airflow_provider_files.hooks._waiting import wait_on_schedule


def file_targets(file_ids: Any, expected_bytes: Mapping[str, int] | None = None) -> list[FileTarget]:
    """The files to wait for, from what a task was given; bad input fails the task for good.

    :param file_ids: a file id, a file dict (``FileObject.to_dict()``), or a list of those.
    :param expected_bytes: sizes the uploader sent, by file id (file dicts bring their own).
    """
    try:
        targets, _ = parse_file_targets(file_ids, what="file_ids")
    except TypeError as exc:
        raise AirflowFailException(str(exc)) from exc
    sizes = dict(expected_bytes or {})
    return [FileTarget(t.file_id, sizes.get(t.file_id, t.expected_bytes)) for t in targets]


def _page_size(limit: int | None) -> int:
    """Pages as large as the API allows, or just as large as needed for ``limit`` batches."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    return BATCHES_LIST_LIMIT_MAX if limit is None else min(limit, BATCHES_LIST_LIMIT_MAX)


def _mask(settings: ClientSettings) -> None:
    for secret in settings.secret_values():
        mask_secret(secret)


class FilesHook(BaseHook):
    """Talks to an OpenAI-compatible Files, Uploads and Batches API through an ``openai_files`` connection.

    The connection's host is the base URL (empty means the gateway's default), its password the
    API key, and its extras choose the gateway and its headers. Every credential is registered
    with Airflow's secrets masker before the first request. Each operation of the API is a
    method of :attr:`client`; the hook offers the common ones under their Airflow names
    (``get_file``, ``get_batch`` ...) with the client's signatures.

    :param files_conn_id: id of an ``openai_files`` connection.
    :param max_connections: HTTP connection pool size (parallel part uploads share it).
    """

    conn_name_attr = "files_conn_id"
    default_conn_name = "openai_files_default"
    conn_type = "openai_files"
    hook_name = "OpenAI-compatible Files"

    def __init__(
        self, files_conn_id: str = default_conn_name, *, max_connections: int = 16, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.files_conn_id = files_conn_id
        self.max_connections = max_connections

    def __repr__(self) -> str:
        return f"{type(self).__name__}(files_conn_id={self.files_conn_id!r})"

    @cached_property
    def settings(self) -> ClientSettings:
        settings = settings_from_connection(self.get_connection(self.files_conn_id))
        _mask(settings)
        return settings

    @cached_property
    def client(self) -> FilesClient:
        """The :class:`~airflow_provider_files.api.FilesClient` of this connection, made on first use.

        Every operation of the API is a method of it; the hook's own methods add what Airflow
        needs (connection settings, secrets masking, whole listings).
        """
        return FilesClient(self.settings, max_connections=self.max_connections)

    def get_conn(self) -> FilesClient:
        """The same as :attr:`client` (the name Airflow's ``BaseHook`` uses)."""
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    def test_connection(self) -> tuple[bool, str]:
        """List one file to check the base URL, the key and the gateway settings.

        One request, never retried, so a dead server fails at once. Messages name the base URL
        (without credentials); they name the connection id too unless it is the throwaway id under
        which Airflow's API server tests a connection from the UI.
        """
        try:
            conn = self.get_connection(self.files_conn_id)
        except AirflowNotFoundException as exc:
            return False, str(exc)
        try:
            settings = settings_from_connection(conn, context=connection_test_label(conn))
            _mask(settings)
            with FilesClient(settings.with_retry_policy(RetryPolicy.from_max_retries(0))) as client:
                page = client.list_files(limit=1) if settings.profile.paginates else client.list_files()
        except (FilesApiError, ValueError) as exc:
            return False, str(exc)
        return (
            True,
            f"Connected to {client.base_url} ({settings.gateway}); {len(page.data)} file(s) listed",
        )

    # -- files -------------------------------------------------------------------------------

    def upload_file(
        self,
        path_or_fileobj: BodyInput,
        purpose: str,
        *,
        filename: str | None = None,
        expires_after_s: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> FileObject:
        """Upload a file in one request (``POST /files``, up to 512 MB), streamed from disk.

        A retry after a lost answer reuses the file the lost attempt stored (see
        :meth:`~airflow_provider_files.api.FilesClient.find_stored_file`).
        """
        return self.client.create_file(
            path_or_fileobj,
            purpose,
            filename=filename,
            expires_after_s=expires_after_s,
            content_type=content_type,
        )

    def list_files(
        self, purpose: str | None = None, *, order: str | None = None, page_size: int | None = None
    ) -> list[FileObject]:
        """Every file (optionally of one purpose), following pagination."""
        return list(self.client.iter_files(purpose=purpose, order=order, page_size=page_size))

    # The client's operations, each with the client's signature and docstring.
    get_file = client_method(FilesClient.retrieve_file)
    delete_file = client_method(FilesClient.delete_file)
    download_file = client_method(FilesClient.download_file)
    find_stored_file = client_method(FilesClient.find_stored_file)
    create_upload = client_method(FilesClient.create_upload)
    add_upload_part = client_method(FilesClient.add_upload_part)
    complete_upload = client_method(FilesClient.complete_upload)
    cancel_upload = client_method(FilesClient.cancel_upload)
    create_batch = client_method(FilesClient.create_batch)
    get_batch = client_method(FilesClient.retrieve_batch)
    cancel_batch = client_method(FilesClient.cancel_batch)

    def list_batches(self, *, limit: int | None = None) -> list[Batch]:
        """Every batch, newest first, following pagination; at most ``limit`` when given."""
        return list(itertools.islice(self.client.iter_batches(limit=_page_size(limit)), limit))

    # -- waiting -----------------------------------------------------------------------------

    def check_files(
        self, tracker: ReadinessTracker, *, clock: Callable[[], float] = time.time
    ) -> Readiness | None:
        """Fetch every file of ``tracker`` not yet ready, once, and record it (a 404 counts as missing).

        :return: the first failed verdict, or ``None`` (then ``tracker.done`` says whether all are ready).
        :raises ~airflow_provider_files.api.FilesApiError: any API error other than a 404.
        """
        for target in tracker.unresolved():
            try:
                file: FileObject | None = self.get_file(target.file_id)
            except NotFoundError:
                file = None
            verdict = tracker.record(target, file, now=clock())
            if verdict.is_failed:
                return verdict
        return None

    def wait_for_files(
        self,
        file_ids: Any,
        *,
        timeout_s: float,
        poll_interval_s: float = POLL_INTERVAL_S,
        expected_bytes: Mapping[str, int] | None = None,
        not_found_grace_s: float = NOT_FOUND_GRACE_S,
        max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
        max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> list[FileObject]:
        """Block until every file is ready to feed a batch (the rule of ``UploadCompleteSensor``).

        Checks are spaced by :class:`~airflow_provider_files.api.polling.PollSchedule`: growing by
        half each time up to ``max_poll_interval_s``, and never sooner than a server's Retry-After.

        :param file_ids: a file id, a file dict (``FileObject.to_dict()``), or a list of those.
        :param timeout_s: give up after this long (``0``: check once).
        :param poll_interval_s: first wait between checks.
        :param expected_bytes: sizes the uploader sent, by file id (file dicts bring their own).
        :param not_found_grace_s: how long a 404 is tolerated after the first one for a file.
        :param max_poll_interval_s: cap on the backoff between checks.
        :param max_consecutive_errors: transient API errors in a row that are ridden out.
        :return: the ready file objects, in the order given.
        :raises FileProcessingFailedError: a file is ``error`` (with ``status_details``), deleted or expired.
        :raises FileWaitError: a non-transient API error, or too many transient ones in a row.
        :raises FileWaitTimeoutError: not ready within ``timeout_s``.
        """
        tracker = ReadinessTracker(
            file_targets(file_ids, expected_bytes), not_found_grace_s=not_found_grace_s
        )

        def check() -> list[FileObject] | None:
            failed = self.check_files(tracker, clock=clock)
            if failed is not None:
                raise FileProcessingFailedError(failed.reason)
            return tracker.ready_files() if tracker.done else None

        return wait_on_schedule(
            check,
            _start_poll(poll_interval_s, max_poll_interval_s, max_consecutive_errors, timeout_s, clock),
            what="file(s) " + ", ".join(t.file_id for t in tracker.targets),
            pending_summary=tracker.pending_summary,
            timeout_error=lambda summary: FileWaitTimeoutError(
                f"files not ready after {timeout_s:g}s; {summary}"
            ),
            api_error=lambda reason: FileWaitError(f"could not check files: {reason}"),
            log=self.log,
            sleep=sleep,
            clock=clock,
        )

    def check_batch(self, readiness: BatchReadiness) -> BatchVerdict:
        """Fetch the batch of ``readiness`` once and judge it (the verdict carries the batch).

        :raises ~airflow_provider_files.api.FilesApiError: the API could not be asked.
        """
        return readiness.judge(self.get_batch(readiness.batch_id))

    def wait_for_batch(
        self,
        batch_id: Any,
        *,
        targets: Collection[str] = frozenset({"completed"}),
        timeout_s: float,
        poll_interval_s: float = POLL_INTERVAL_S,
        max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
        max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
        cancel_on_timeout: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> Batch:
        """Block until the batch reaches one of ``targets`` (the rule of ``BatchCompleteSensor``).

        Checks are spaced by :class:`~airflow_provider_files.api.polling.PollSchedule`, as for
        :meth:`wait_for_files`; ``cancelling`` is not final (a cancel is awaited to ``cancelled``).

        :param batch_id: a batch id or a batch dict (``Batch.to_dict()``); any batch, not only ours.
        :param targets: statuses that end the wait successfully.
        :param timeout_s: give up after this long (``0``: check once).
        :param poll_interval_s: first wait between checks.
        :param max_poll_interval_s: cap on the backoff between checks.
        :param max_consecutive_errors: transient API errors in a row that are ridden out.
        :param cancel_on_timeout: cancel the batch when the wait times out (results of the requests
            done so far are kept by the API).
        :return: the batch in its final (awaited) state.
        :raises BatchFailedError: the batch ended ``failed``; the message names its errors (line, code).
        :raises BatchExpiredError: it ended ``expired`` (with its request counts).
        :raises BatchCancelledError: it ended ``cancelled`` (with its request counts).
        :raises BatchEndedError: it ended in another status that is not a target.
        :raises BatchWaitError: a non-transient API error, or too many transient ones in a row.
        :raises BatchWaitTimeoutError: not done within ``timeout_s``.
        """
        readiness = BatchReadiness(_batch_id(batch_id), targets=set(targets))
        last: list[BatchVerdict] = []

        def check() -> Batch | None:
            verdict = self.check_batch(readiness)
            last[:] = [verdict]
            assert verdict.batch is not None
            if verdict.is_failed:
                raise BatchEndedError.for_batch(verdict.reason, verdict.batch.to_dict())
            return verdict.batch if verdict.is_ready else None

        wanted = " or ".join(sorted(readiness.targets))
        try:
            return wait_on_schedule(
                check,
                _start_poll(poll_interval_s, max_poll_interval_s, max_consecutive_errors, timeout_s, clock),
                what=f"batch {readiness.batch_id}",
                pending_summary=lambda: last[0].reason if last else f"batch {readiness.batch_id} not checked",
                timeout_error=lambda summary: BatchWaitTimeoutError(
                    f"batch {readiness.batch_id} not {wanted} after {timeout_s:g}s; {summary}"
                ),
                api_error=lambda reason: BatchWaitError(
                    f"could not check batch {readiness.batch_id}: {reason}"
                ),
                log=self.log,
                sleep=sleep,
                clock=clock,
            )
        except BatchWaitTimeoutError as exc:
            if not cancel_on_timeout:
                raise
            raise BatchWaitTimeoutError(f"{exc}; {self._cancel_after_timeout(readiness.batch_id)}") from exc

    def _cancel_after_timeout(self, batch_id: str) -> str:
        try:
            status = self.cancel_batch(batch_id).status
        except FilesApiError as exc:
            self.log.warning("Cancelling batch %s after the timeout failed: %s", batch_id, exc)
            return f"cancelling it failed: {exc}"
        self.log.info("Batch %s cancelled after the timeout; it is %s", batch_id, status)
        return f"cancel requested (the batch is {status})"


def _batch_id(value: Any) -> str:
    try:
        return batch_id_of(value)
    except TypeError as exc:
        raise AirflowFailException(str(exc)) from exc


def _start_poll(
    poll_interval_s: float,
    max_poll_interval_s: float,
    max_consecutive_errors: int,
    timeout_s: float,
    clock: Callable[[], float],
) -> PollState:
    """The schedule of a blocking wait, started now with its deadline ``timeout_s`` away."""
    schedule = PollSchedule(
        initial_interval_s=poll_interval_s,
        backoff_factor=POLL_BACKOFF_FACTOR,
        max_interval_s=max_poll_interval_s,
        max_consecutive_errors=max_consecutive_errors,
    )
    started_at = clock()
    return schedule.start(now=started_at, deadline=started_at + timeout_s)


class AsyncFilesHook(BaseHook):
    """Async twin of :class:`FilesHook` for triggers: reads the connection without blocking the loop.

    :param files_conn_id: id of an ``openai_files`` connection.
    """

    conn_name_attr = "files_conn_id"
    default_conn_name = "openai_files_default"
    conn_type = "openai_files"
    hook_name = "OpenAI-compatible Files"

    def __init__(self, files_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files_conn_id = files_conn_id
        self._settings: ClientSettings | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(files_conn_id={self.files_conn_id!r})"

    async def get_settings(self) -> ClientSettings:
        if self._settings is None:
            conn = await self.aget_connection(self.files_conn_id)
            settings = settings_from_connection(conn)
            for secret in settings.secret_values():
                await amask_secret(secret)
            self._settings = settings
        return self._settings

    async def get_async_client(self, *, retry_policy: RetryPolicy | None = None) -> AsyncFilesClient:
        """A new :class:`~airflow_provider_files.api.AsyncFilesClient`; close it with ``aclose()``.

        :param retry_policy: replaces the connection's retry policy (triggers keep it short and
            handle repeated failures in their own poll loop).
        """
        settings = await self.get_settings()
        if retry_policy is not None:
            settings = settings.with_retry_policy(retry_policy)
        return AsyncFilesClient(settings)

    # The client's operations; each call opens a client and closes it after.
    get_file = async_client_method(AsyncFilesClient.retrieve_file)
    create_batch = async_client_method(AsyncFilesClient.create_batch)
    get_batch = async_client_method(AsyncFilesClient.retrieve_batch)
    cancel_batch = async_client_method(AsyncFilesClient.cancel_batch)

    async def list_batches(self, *, limit: int | None = None) -> list[Batch]:
        """Every batch, newest first, following pagination; at most ``limit`` when given."""
        page_size = _page_size(limit)
        batches: list[Batch] = []
        async with await self.get_async_client() as client:
            async for batch in client.iter_batches(limit=page_size):
                batches.append(batch)
                if len(batches) == limit:
                    break
        return batches
