"""UploadCompleteTrigger: waits in the triggerer, without blocking its event loop, until files are ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_files.api import (
    ApiTimeoutError,
    AsyncFilesClient,
    FileObject,
    FilesApiError,
    NotFoundError,
    RetryPolicy,
)
from airflow_provider_files.api.polling import (
    MAX_CONSECUTIVE_ERRORS,
    MAX_POLL_INTERVAL_S,
    POLL_BACKOFF_FACTOR,
    POLL_INTERVAL_S,
    PollSchedule,
    PollStop,
)
from airflow_provider_files.api.readiness import (
    NOT_FOUND_GRACE_S,
    FileTarget,
    ReadinessTracker,
)
from airflow_provider_files.hooks.files import AsyncFilesHook
from airflow_provider_files.triggers.events import (
    REASON_API_ERROR,
    REASON_FILE_FAILED,
    api_error_event,
    file_failed_event,
    success_event,
    timeout_event,
)

MAX_CONCURRENT_REQUESTS = 8
# A poll still running this long after the deadline is abandoned (client timeouts can be minutes).
POLL_OVERRUN_S = 10.0
# The poll loop absorbs outages; the client only smooths over a single dropped request.
TRIGGER_RETRY_POLICY = RetryPolicy(
    max_attempts=2, initial_delay_s=0.5, max_delay_s=2.0, max_total_wait_s=5.0, max_retry_after_s=5.0
)

__all__ = [
    "MAX_CONSECUTIVE_ERRORS",
    "MAX_POLL_INTERVAL_S",
    "POLL_BACKOFF_FACTOR",
    "POLL_INTERVAL_S",
    "REASON_API_ERROR",
    "REASON_FILE_FAILED",
    "UploadCompleteTrigger",
]


class UploadCompleteTrigger(BaseTrigger):
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
        if poll_interval_s <= 0 or max_poll_interval_s < poll_interval_s:
            raise ValueError(
                f"need 0 < poll_interval_s <= max_poll_interval_s, got {poll_interval_s} and {max_poll_interval_s}"
            )
        if max_consecutive_errors < 0 or not_found_grace_s < 0:
            raise ValueError("max_consecutive_errors and not_found_grace_s must not be negative")
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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except Exception as exc:  # an unexpected failure must end the wait, not hang the task
            self.log.exception("Waiting for %s failed", self.file_ids)
            event = api_error_event(
                f"waiting for {', '.join(self.file_ids)} failed: {type(exc).__name__}: {exc}"
            )
        yield TriggerEvent(event)

    def _targets(self) -> list[FileTarget]:
        return [FileTarget(file_id, self.expected_bytes.get(file_id)) for file_id in self.file_ids]

    async def _wait(self) -> dict[str, Any]:
        tracker = ReadinessTracker(
            self._targets(), not_found_grace_s=self.not_found_grace_s, missing_since=self.missing_since
        )
        schedule = PollSchedule(
            initial_interval_s=self.poll_interval_s,
            backoff_factor=POLL_BACKOFF_FACTOR,
            max_interval_s=self.max_poll_interval_s,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        poll = schedule.start(now=time.time(), deadline=self.deadline)
        hook = AsyncFilesHook(self.files_conn_id)
        async with await hook.get_async_client(retry_policy=TRIGGER_RETRY_POLICY) as client:
            while True:
                try:
                    poll_budget_s = max(self.deadline - time.time(), 0.0) + POLL_OVERRUN_S
                    try:
                        event = await asyncio.wait_for(self._poll(client, tracker), poll_budget_s)
                    except asyncio.TimeoutError:
                        raise ApiTimeoutError(
                            f"checking the files took more than {poll_budget_s:.0f}s (past the deadline)"
                        ) from None
                except FilesApiError as exc:
                    step = poll.after_error(exc, now=time.time())
                    if step.stop is PollStop.API_ERROR:
                        return api_error_event(f"giving up on {', '.join(self.file_ids)}: {exc}")
                    if not step.gave_up:
                        self.log.warning(
                            "API error %d of %d tolerated: %s",
                            poll.consecutive_errors,
                            self.max_consecutive_errors,
                            exc,
                        )
                else:
                    if event is not None:
                        return event
                    self.log.info("%s", tracker.pending_summary())
                    step = poll.after_pending(now=time.time())
                if step.stop is PollStop.DEADLINE:
                    message = f"deadline reached; {tracker.pending_summary()}"
                    if step.last_error is not None:
                        message += f"; last API error: {step.last_error}"
                    return timeout_event(message, [t.file_id for t in tracker.unresolved()])
                if step.gave_up or step.delay_s is None:
                    return api_error_event(step.message)
                await asyncio.sleep(step.delay_s)

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
