"""The blocking poll loop of the hook's waits (files, batches): the one schedule, slept out in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from airflow_provider_files.api import FilesApiError
from airflow_provider_files.api.polling import PollState, PollStop

T = TypeVar("T")


class TaskLog(Protocol):
    """What the loop needs of a logger (Airflow's structlog logger or a ``logging.Logger``)."""

    def info(self, message: Any, /, *args: Any) -> Any: ...

    def warning(self, message: Any, /, *args: Any) -> Any: ...


def wait_on_schedule(
    check: Callable[[], T | None],
    poll: PollState,
    *,
    what: str,
    pending_summary: Callable[[], str],
    timeout_error: Callable[[str], Exception],
    api_error: Callable[[str], Exception],
    log: TaskLog,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> T:
    """Call ``check`` until it returns a result, sleeping between calls as ``poll`` says.

    :param check: one check: the result when done, ``None`` to keep waiting; it raises a
        :class:`~airflow_provider_files.api.FilesApiError` when the API fails (ridden out if
        transient) and the caller's own exception when the awaited thing will never be ready.
    :param what: what is awaited, for log lines.
    :param pending_summary: what is still awaited, for log lines and the timeout message.
    :param timeout_error: the exception for a deadline reached, from the pending summary.
    :param api_error: the exception for an API that could not be asked, from the reason.
    """
    started = clock()
    checks = 0
    while True:
        checks += 1
        try:
            result = check()
        except FilesApiError as exc:
            step = poll.after_error(exc, now=clock())
            if not step.gave_up:
                log.warning(
                    "API error %d of %d tolerated while waiting for %s: %s",
                    poll.consecutive_errors,
                    poll.schedule.max_consecutive_errors,
                    what,
                    exc,
                )
        else:
            if result is not None:
                log.info(
                    "Done waiting for %s: ready after %d check(s) in %.1f s",
                    what,
                    checks,
                    clock() - started,
                )
                return result
            log.info("%s", pending_summary())
            step = poll.after_pending(now=clock())
        if step.stop is PollStop.DEADLINE:
            raise timeout_error(step.explain(pending_summary()))
        if step.gave_up or step.delay_s is None:
            raise api_error(step.message) from step.last_error
        if step.server_delay_s is not None:
            log.info("The server asked to wait %.1fs before the next check", step.server_delay_s)
        sleep(step.delay_s)
