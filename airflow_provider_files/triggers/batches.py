"""BatchCompleteTrigger: waits in the triggerer, without blocking its event loop, until a batch is done."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from airflow_provider_files.api import AsyncFilesClient, Batch
from airflow_provider_files.api.polling import MAX_CONSECUTIVE_ERRORS, MAX_POLL_INTERVAL_S, POLL_INTERVAL_S
from airflow_provider_files.api.readiness import BatchReadiness, BatchVerdict
from airflow_provider_files.triggers._polling import TRIGGER_RETRY_POLICY, PollingTrigger, check_poll_settings
from airflow_provider_files.triggers.events import (
    batch_api_error_event,
    batch_ended_event,
    batch_success_event,
    batch_timeout_event,
)

DEFAULT_TARGET_STATUSES = ("completed",)

__all__ = ["DEFAULT_TARGET_STATUSES", "TRIGGER_RETRY_POLICY", "BatchCompleteTrigger"]


class BatchCompleteTrigger(PollingTrigger):
    """Polls ``GET /batches/{id}`` until the batch reaches one of ``targets``, ends elsewhere, or the deadline.

    Yields exactly one event (format: :mod:`airflow_provider_files.triggers.events`): success with
    the batch dict, an error (``batch_ended`` with the batch, or ``api_error``), or a timeout.
    ``cancelling`` is not final: a cancelled batch is awaited until ``cancelled``, when its
    partial results exist. Polls are spaced by
    :class:`~airflow_provider_files.api.polling.PollSchedule`, which also honours a server's
    Retry-After; transient API errors are ridden out.

    :param batch_id: the batch to wait for (any batch of the connection, not only ours).
    :param files_conn_id: id of an ``openai_files`` connection.
    :param deadline: absolute end of the wait (unix seconds), so a triggerer restart does not extend it.
    :param targets: statuses that end the wait successfully (default ``completed``).
    :param poll_interval_s: first wait between polls; it grows by half each poll.
    :param max_poll_interval_s: cap on the wait between polls.
    :param max_consecutive_errors: transient API errors (connection, 429, 5xx) in a row that are
        ridden out; the next one ends the wait with an error event.
    """

    def __init__(
        self,
        batch_id: str,
        files_conn_id: str,
        deadline: float,
        targets: Collection[str] = DEFAULT_TARGET_STATUSES,
        poll_interval_s: float = POLL_INTERVAL_S,
        max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
        max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__()
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise ValueError(f"batch_id must be a non-empty string, got {batch_id!r}")
        if isinstance(targets, str):
            raise ValueError(f"targets must be a collection of statuses, not the string {targets!r}")
        check_poll_settings(poll_interval_s, max_poll_interval_s, max_consecutive_errors)
        self.batch_id = batch_id.strip()
        self.targets = sorted(BatchReadiness(self.batch_id, targets=set(targets)).targets)
        self.files_conn_id = files_conn_id
        self.deadline = float(deadline)
        self.poll_interval_s = float(poll_interval_s)
        self.max_poll_interval_s = float(max_poll_interval_s)
        self.max_consecutive_errors = int(max_consecutive_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_id": self.batch_id,
                "files_conn_id": self.files_conn_id,
                "deadline": self.deadline,
                "targets": list(self.targets),
                "poll_interval_s": self.poll_interval_s,
                "max_poll_interval_s": self.max_poll_interval_s,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    def _awaited(self) -> str:
        return f"batch {self.batch_id}"

    def _api_error_event(self, message: str) -> dict[str, Any]:
        return batch_api_error_event(message, self.batch_id)

    async def _wait(self) -> dict[str, Any]:
        readiness = BatchReadiness(self.batch_id, targets=set(self.targets))
        last: list[BatchVerdict] = []

        async def check(client: AsyncFilesClient) -> dict[str, Any] | None:
            batch: Batch = await client.retrieve_batch(self.batch_id)
            verdict = readiness.judge(batch)
            last[:] = [verdict]
            if verdict.is_ready:
                return batch_success_event(batch.to_dict())
            if verdict.is_failed:
                return batch_ended_event(verdict.reason, batch.to_dict())
            return None

        def pending_summary() -> str:
            return last[0].reason if last else f"batch {self.batch_id} not checked yet"

        def timeout_event(message: str) -> dict[str, Any]:
            batch = last[0].batch if last else None
            return batch_timeout_event(message, self.batch_id, batch.to_dict() if batch is not None else None)

        return await self._poll_until_event(
            check,
            retry_policy=TRIGGER_RETRY_POLICY,
            pending_summary=pending_summary,
            timeout_event=timeout_event,
        )
