"""UploadCompleteTrigger: waits in the triggerer, without blocking its event loop, until files are ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_files.api import AsyncFilesClient, FileObject, NotFoundError
from airflow_provider_files.api.polling import (
    MAX_CONSECUTIVE_ERRORS,
    MAX_POLL_INTERVAL_S,
    POLL_BACKOFF_FACTOR,
    POLL_INTERVAL_S,
)
from airflow_provider_files.api.readiness import (
    NOT_FOUND_GRACE_S,
    FileTarget,
    ReadinessTracker,
)
from airflow_provider_files.triggers._polling import (
    POLL_OVERRUN_S,
    TRIGGER_RETRY_POLICY,
    PollingTrigger,
    check_poll_settings,
)
from airflow_provider_files.triggers.events import (
    REASON_API_ERROR,
    REASON_FILE_FAILED,
    api_error_event,
    file_failed_event,
    success_event,
    timeout_event,
)

MAX_CONCURRENT_REQUESTS = 8

__all__ = [
    "MAX_CONSECUTIVE_ERRORS",
    "MAX_POLL_INTERVAL_S",
    "POLL_BACKOFF_FACTOR",
    "POLL_INTERVAL_S",
    "POLL_OVERRUN_S",
    "REASON_API_ERROR",
    "REASON_FILE_FAILED",
    "UploadCompleteTrigger",
]


class UploadCompleteTrigger(PollingTrigger):
    """Polls ``GET /files/{id}`` until every file is ready to feed a batch, failed, or the deadline passes.

    Yields exactly one event (format: :mod:`airflow_provider_files.triggers.events`): success with
    the file dicts in ``file_ids`` order, an error (``file_failed`` or ``api_error``), or a timeout.
    Polls are spaced by :class:`~airflow_provider_files.api.polling.PollSchedule`, which also
    honours a server's Retry-After.

    :param file_ids: the files to wait for.
    :param files_conn_id: id of an ``openai_files`` connection.
    :param deadline: absolute end of the wait (unix seconds), so a triggerer restart does not extend it.
    :param poll_interval_s: first wait between polls; it grows by half each poll.
    :param max_poll_interval_s: cap on the wait between polls.
    :param expected_bytes: sizes the uploader sent, by file id (checked when the server gives no status).
    :param not_found_grace_s: how long a 404 is tolerated after the first one for a file.
    :param max_consecutive_errors: transient API errors (connection, 429, 5xx) in a row that are
        ridden out; the next one ends the wait with an error event.
    :param missing_since: first-404 times (unix seconds) seen before deferring, by file id.
    """

    def __init__(
        self,
        file_ids: Sequence[str],
        files_conn_id: str,
        deadline: float,
        poll_interval_s: float = POLL_INTERVAL_S,
        max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
        expected_bytes: Mapping[str, int] | None = None,
        not_found_grace_s: float = NOT_FOUND_GRACE_S,
        max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
        missing_since: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(file_ids, str) or not file_ids or not all(isinstance(i, str) and i for i in file_ids):
            raise ValueError(f"file_ids must be a non-empty list of file id strings, got {file_ids!r}")
        check_poll_settings(poll_interval_s, max_poll_interval_s, max_consecutive_errors)
        if not_found_grace_s < 0:
            raise ValueError("not_found_grace_s must not be negative")
        self.file_ids = list(file_ids)
        self.files_conn_id = files_conn_id
        self.deadline = float(deadline)
        self.poll_interval_s = float(poll_interval_s)
        self.max_poll_interval_s = float(max_poll_interval_s)
        self.expected_bytes = {str(k): int(v) for k, v in (expected_bytes or {}).items()}
        self.not_found_grace_s = float(not_found_grace_s)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.missing_since = {str(k): float(v) for k, v in (missing_since or {}).items()}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "file_ids": list(self.file_ids),
                "files_conn_id": self.files_conn_id,
                "deadline": self.deadline,
                "poll_interval_s": self.poll_interval_s,
                "max_poll_interval_s": self.max_poll_interval_s,
                "expected_bytes": dict(self.expected_bytes) or None,
                "not_found_grace_s": self.not_found_grace_s,
                "max_consecutive_errors": self.max_consecutive_errors,
                "missing_since": dict(self.missing_since) or None,
            },
        )

    def _awaited(self) -> str:
        return ", ".join(self.file_ids)

    def _api_error_event(self, message: str) -> dict[str, Any]:
        return api_error_event(message)

    def _targets(self) -> list[FileTarget]:
        return [FileTarget(file_id, self.expected_bytes.get(file_id)) for file_id in self.file_ids]

    async def _wait(self) -> dict[str, Any]:
        tracker = ReadinessTracker(
            self._targets(), not_found_grace_s=self.not_found_grace_s, missing_since=self.missing_since
        )

        async def check(client: AsyncFilesClient) -> dict[str, Any] | None:
            return await self._poll(client, tracker)

        return await self._poll_until_event(
            check,
            retry_policy=TRIGGER_RETRY_POLICY,
            pending_summary=tracker.pending_summary,
            timeout_event=lambda message: timeout_event(message, [t.file_id for t in tracker.unresolved()]),
        )

    async def _poll(self, client: AsyncFilesClient, tracker: ReadinessTracker) -> dict[str, Any] | None:
        """One check of every unresolved file: the final event, or ``None`` to keep waiting."""
        targets = tracker.unresolved()
        limit = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)

        async def fetch(file_id: str) -> FileObject | None:
            async with limit:
                try:
                    return await client.retrieve_file(file_id)
                except NotFoundError:
                    return None

        results = await asyncio.gather(*(fetch(t.file_id) for t in targets), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        now = time.time()
        for target, result in zip(targets, results, strict=True):
            assert not isinstance(result, BaseException)
            verdict = tracker.record(target, result, now=now)
            if verdict.is_failed:
                return file_failed_event(verdict.reason, target.file_id)
        if tracker.done:
            return success_event([f.to_dict() for f in tracker.ready_files()])
        return None
