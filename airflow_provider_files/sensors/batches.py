"""BatchCompleteSensor: waits until a batch is done, and fails with the batch's own errors when it
ended otherwise. The same wait as a blocking call is ``FilesHook.wait_for_batch``."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import PokeReturnValue

from airflow_provider_files._airflow_compat import AirflowFailException
from airflow_provider_files.api.readiness import BatchReadiness, batch_id_of
from airflow_provider_files.exceptions import BatchEndedError, BatchWaitError
from airflow_provider_files.sensors._polling import POKE_INTERVAL_S, PollingSensor
from airflow_provider_files.triggers.batches import DEFAULT_TARGET_STATUSES
from airflow_provider_files.triggers.deferral import batch_on_resume, defer_until_batch_done

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["BatchCompleteSensor"]


class BatchCompleteSensor(PollingSensor):
    """Waits until a batch reaches one of ``target_statuses``, and returns the batch dict.

    Works on any batch of the connection, including batches this provider did not create. The
    sensor fails at once when the batch reaches another final status: ``failed`` with the
    batch's ``errors`` (line, code, message), ``expired`` or ``cancelled`` with its request
    counts (:mod:`airflow_provider_files.exceptions` has one exception for each, carrying the
    batch). ``cancelling`` is not final: a cancel is awaited until ``cancelled``. Transient API
    errors (connection, 429, 5xx) are ridden out up to ``max_consecutive_errors`` checks in a
    row, and the next check waits at least as long as the server's Retry-After asks.

    In deferrable mode the sensor checks once, then hands the wait to
    :class:`~airflow_provider_files.triggers.batches.BatchCompleteTrigger`, freeing the worker slot.

    XCom: the batch dict (``Batch.to_dict()``): ``output_file_id``, ``error_file_id``,
    ``request_counts`` ...

    :param batch_id: a batch id or a batch dict (e.g. a ``BatchOperator``'s output); an XComArg
        of either is accepted. Templated.
    :param files_conn_id: id of an ``openai_files`` connection. Templated.
    :param target_statuses: statuses that end the wait successfully (default ``completed``).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poll_interval_s: seconds between checks (the poke interval; in deferrable mode the
        first wait, growing up to ``max_poll_interval_s``).
    :param max_poll_interval_s: deferrable mode: cap on the growing wait between checks.
    :param max_consecutive_errors: transient API errors in a row that are ridden out.
    :param timeout: give up after this long (seconds or a timedelta).
    """

    template_fields = ("batch_id", "files_conn_id")
    ui_color = "#e3e7f7"

    def __init__(
        self,
        *,
        batch_id: Any,
        target_statuses: Collection[str] = DEFAULT_TARGET_STATUSES,
        poll_interval_s: timedelta | float = POKE_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        # files_conn_id, deferrable, max_poll_interval_s, max_consecutive_errors and timeout are
        # PollingSensor's, with its defaults.
        kwargs.setdefault("poke_interval", poll_interval_s)
        super().__init__(**kwargs)
        if isinstance(target_statuses, str):
            target_statuses = (target_statuses,)
        self.batch_id = batch_id
        # Checked now (a bad status is a DAG error); the id is known only when the task runs.
        self.target_statuses = sorted(BatchReadiness("batch", targets=set(target_statuses)).targets)

    @property
    def poll_interval_s(self) -> float:
        return float(self.poke_interval)

    def _batch_id(self) -> str:
        try:
            return batch_id_of(self.batch_id, what=f"{self.task_id}.batch_id")
        except TypeError as exc:
            raise AirflowFailException(str(exc)) from exc

    def _check_input(self) -> None:
        self._batch_id()  # bad input fails before any request

    def poke(self, context: Context) -> PokeReturnValue:
        readiness = BatchReadiness(self._batch_id(), targets=set(self.target_statuses))

        def check() -> dict[str, Any] | None:
            verdict = self.hook.check_batch(readiness)
            assert verdict.batch is not None
            if verdict.is_failed:
                raise BatchEndedError.for_batch(verdict.reason, verdict.batch.to_dict())
            self.log.info("%s", verdict.reason)
            return verdict.batch.to_dict() if verdict.is_ready else None

        return self._poke_once(
            check,
            give_up=lambda reason: BatchWaitError(f"could not check batch {readiness.batch_id}: {reason}"),
        )

    def _defer(self, context: Context, deadline: float) -> NoReturn:
        defer_until_batch_done(
            self,
            self._batch_id(),
            files_conn_id=self.files_conn_id,
            targets=self.target_statuses,
            deadline=deadline,
            timeout_s=self.timeout,
            poll_interval_s=self.poke_interval or 1.0,
            max_poll_interval_s=self.max_poll_interval_s,
            max_consecutive_errors=self.max_consecutive_errors,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's event into the batch dict, or into the matching exception."""
        return batch_on_resume(self, event)
