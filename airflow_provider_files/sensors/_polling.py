"""What the provider's sensors share: pokes on the one poll schedule, Retry-After, poke-then-defer."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_files._airflow_compat import AirflowException, AirflowSkipException
from airflow_provider_files.api import FilesApiError
from airflow_provider_files.api.polling import (
    MAX_CONSECUTIVE_ERRORS,
    MAX_POLL_INTERVAL_S,
    PollSchedule,
    PollState,
)
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.triggers.deferral import default_deferrable

if TYPE_CHECKING:
    from airflow.sdk import Context

POKE_INTERVAL_S = 10.0
TIMEOUT_S = 3600.0


class PollingSensor(BaseSensorOperator):
    """Base of the provider's sensors: subclasses check their input in ``_check_input``, poke with
    :meth:`_poke_once`, and hand the wait to their trigger in ``_defer``.

    Transient API errors are ridden out up to ``max_consecutive_errors`` pokes in a row, and the
    next poke waits at least as long as the server's Retry-After asks. In deferrable mode,
    ``execute`` pokes once, then defers.

    :param files_conn_id: id of an ``openai_files`` connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param max_poll_interval_s: deferrable mode: cap on the growing wait between checks.
    :param max_consecutive_errors: transient API errors in a row that are ridden out.
    """

    def __init__(
        self,
        *,
        files_conn_id: str = FilesHook.default_conn_name,
        deferrable: bool | None = None,
        max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
        max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
        poke_interval: timedelta | float = POKE_INTERVAL_S,
        timeout: timedelta | float = TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.files_conn_id = files_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.max_poll_interval_s = max(max_poll_interval_s, self.poke_interval)
        self.max_consecutive_errors = max_consecutive_errors
        self._poll: PollState | None = None
        self._server_delay_s: float | None = None

    @cached_property
    def hook(self) -> FilesHook:
        return FilesHook(files_conn_id=self.files_conn_id)

    def _check_input(self) -> None:
        """Fail on bad arguments before any request."""

    def _defer(self, context: Context, deadline: float) -> NoReturn:
        raise NotImplementedError

    def _get_poll(self) -> PollState:
        if self._poll is None:
            # Airflow spaces the pokes and enforces the timeout; the schedule counts errors and
            # reads the server's Retry-After, which _get_next_poke_interval then honours.
            schedule = PollSchedule(
                initial_interval_s=self.poke_interval,
                backoff_factor=1.0,
                max_interval_s=self.poke_interval,
                max_consecutive_errors=self.max_consecutive_errors,
            )
            self._poll = schedule.start(now=time.time())
        return self._poll

    def _poke_once(self, check: Callable[[], Any], *, give_up: Callable[[str], Exception]) -> PokeReturnValue:
        """One poke: ``check`` returns the XCom value when done, ``None`` when not yet.

        :param check: one hook call and its verdict; it raises the sensor's own exception when the
            awaited thing will never be ready.
        :param give_up: the exception for an API that cannot be asked, from the reason.
        """
        poll = self._get_poll()
        self._server_delay_s = None
        try:
            result = check()
        except FilesApiError as exc:
            step = poll.after_error(exc, now=time.time())
            if step.gave_up:
                raise give_up(step.message) from exc
            self._server_delay_s = step.server_delay_s
            self.log.warning(
                "API error %d of %d tolerated: %s", poll.consecutive_errors, self.max_consecutive_errors, exc
            )
            return PokeReturnValue(is_done=False)
        poll.after_pending(now=time.time())
        return PokeReturnValue(is_done=result is not None, xcom_value=result)

    def _get_next_poke_interval(
        self,
        started_at: datetime.datetime | float,
        run_duration: Callable[[], float],
        poke_count: int,
    ) -> float:
        """Airflow's interval, stretched to the server's Retry-After (never past the timeout)."""
        interval = float(super()._get_next_poke_interval(started_at, run_duration, poke_count))
        server_delay_s = self._server_delay_s
        if server_delay_s is None or server_delay_s <= interval:
            return interval
        self.log.info("The server asked to wait %.1fs before the next check", server_delay_s)
        return max(interval, min(server_delay_s, self.timeout - run_duration()))

    def execute(self, context: Context) -> Any:
        self._check_input()
        if not self.deferrable:
            return super().execute(context)
        deadline = time.time() + self.timeout
        try:
            result = self.poke(context)
        except AirflowException as exc:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(
                    f"Skipping ({'soft_fail' if self.soft_fail else 'never_fail'}): {exc}"
                ) from exc
            raise
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        self._defer(context, deadline)
