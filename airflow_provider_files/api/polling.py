"""The one poll schedule: how long to wait before the next check of something that is not ready yet,
and when to give up. No Airflow imports, no I/O, no sleeping: callers pass the time and the outcome
of each check, and do the waiting themselves (``time.sleep`` in the hook's blocking wait,
``asyncio.sleep`` in a trigger, the next poke of a sensor).

The schedule knows nothing of what is polled. The "is it ready?" rule is a separate, per-lifecycle
decision: :class:`~airflow_provider_files.api.readiness.ReadinessTracker` for files,
:class:`~airflow_provider_files.api.readiness.BatchReadiness` for batches. A loop that waits for a
batch plugs the two together like this (the files loops in ``hooks/``, ``sensors/`` and
``triggers/`` have the same shape)::

    readiness = BatchReadiness(batch_id, targets={"completed"})
    poll = PollSchedule(initial_interval_s=30).start(now=time.time(), deadline=time.time() + 86400)
    while True:
        try:
            verdict = readiness.evaluate(client.retrieve_batch(batch_id).status)
        except FilesApiError as exc:
            step = poll.after_error(exc, now=time.time())
        else:
            if verdict.is_ready:
                return verdict
            if verdict.is_failed:
                raise BatchFailedError(verdict.reason)
            step = poll.after_pending(now=time.time())
        if step.gave_up:
            raise TimeoutOrApiError(step.message)  # step.stop says which
        time.sleep(step.delay_s)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from airflow_provider_files.api.errors import ApiStatusError, FilesApiError
from airflow_provider_files.api.retry import is_transient

POLL_INTERVAL_S = 10.0
MAX_POLL_INTERVAL_S = 60.0
POLL_BACKOFF_FACTOR = 1.5
MAX_CONSECUTIVE_ERRORS = 5


class PollStop(str, Enum):
    """Why a wait ended without the polled thing becoming ready."""

    DEADLINE = "deadline"
    """The deadline passed."""
    API_ERROR = "api_error"
    """A check failed with an error that retrying cannot fix (bad key, not allowed, bad request)."""
    TOO_MANY_ERRORS = "too_many_errors"
    """More transient errors in a row than the schedule tolerates."""


@dataclass(frozen=True)
class PollStep:
    """What to do after one check: wait ``delay_s`` seconds, or stop (``stop`` says why).

    :param delay_s: seconds until the next check; ``None`` when the wait is over.
    :param stop: why the wait is over, or ``None`` to keep waiting.
    :param message: for a stop, why in words fit for an exception; otherwise empty.
    :param server_delay_s: the server's Retry-After hint taken into ``delay_s``, if any.
    :param last_error: the error of the last check, when it failed.
    """

    delay_s: float | None
    stop: PollStop | None = None
    message: str = ""
    server_delay_s: float | None = None
    last_error: FilesApiError | None = None

    @property
    def gave_up(self) -> bool:
        return self.stop is not None

    def explain(self, summary: str) -> str:
        """``summary`` of what was still awaited, with the last API error when there was one."""
        if self.last_error is None:
            return summary
        return f"{summary}; last API error: {self.last_error}"


@dataclass(frozen=True)
class PollSchedule:
    """Backoff between checks, tolerance for transient errors, and the server's Retry-After.

    :param initial_interval_s: wait after the first check.
    :param backoff_factor: each wait is this many times the one before (``1`` for a fixed interval).
    :param max_interval_s: cap on the backoff (a server's Retry-After may ask for longer).
    :param max_consecutive_errors: transient API errors in a row that are ridden out; the next
        one ends the wait. A non-transient error ends it at once.
    """

    initial_interval_s: float = POLL_INTERVAL_S
    backoff_factor: float = POLL_BACKOFF_FACTOR
    max_interval_s: float = MAX_POLL_INTERVAL_S
    max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS

    def __post_init__(self) -> None:
        if self.initial_interval_s < 0 or self.max_interval_s < 0:
            raise ValueError("poll intervals must not be negative")
        if self.backoff_factor < 1:
            raise ValueError(f"backoff_factor must be at least 1, got {self.backoff_factor}")
        if self.max_consecutive_errors < 0:
            raise ValueError("max_consecutive_errors must not be negative")

    def start(self, *, now: float, deadline: float | None = None) -> PollState:
        """Book-keeping for one wait, begun at ``now`` (unix seconds).

        :param deadline: absolute end of the wait (unix seconds), ``None`` for none (the caller
            enforces a timeout of its own, as Airflow does for a sensor in poke mode).
        """
        return PollState(self, started_at=now, deadline=deadline)


@dataclass
class PollState:
    """The progress of one wait; every loop drives its waits with one of these.

    After each check call :meth:`after_pending` (the check answered; not ready yet) or
    :meth:`after_error` (the check raised an API error). A check that finds the thing ready or
    failed for good ends the loop before the schedule is asked.
    """

    schedule: PollSchedule
    started_at: float
    deadline: float | None = None
    checks: int = 0
    consecutive_errors: int = 0
    last_error: FilesApiError | None = None
    _interval_s: float = field(init=False)

    def __post_init__(self) -> None:
        self._interval_s = min(self.schedule.initial_interval_s, self.schedule.max_interval_s)

    def remaining_s(self, now: float) -> float | None:
        """Seconds left before the deadline (may be negative), or ``None`` without one."""
        return None if self.deadline is None else self.deadline - now

    def after_pending(self, *, now: float) -> PollStep:
        """The check answered and the thing is not ready yet."""
        self.consecutive_errors = 0
        self.last_error = None
        return self._next(now, server_delay_s=None)

    def after_error(self, error: FilesApiError, *, now: float) -> PollStep:
        """The check failed with ``error``: ride it out (honouring Retry-After) or give up."""
        self.consecutive_errors += 1
        self.last_error = error
        if not is_transient(error):
            return PollStep(None, PollStop.API_ERROR, str(error), last_error=error)
        if self.consecutive_errors > self.schedule.max_consecutive_errors:
            return PollStep(
                None,
                PollStop.TOO_MANY_ERRORS,
                f"giving up after {self.consecutive_errors} consecutive API errors; last: {error}",
                last_error=error,
            )
        server_delay_s = error.retry_after_s if isinstance(error, ApiStatusError) else None
        return self._next(now, server_delay_s=server_delay_s)

    def _next(self, now: float, *, server_delay_s: float | None) -> PollStep:
        self.checks += 1
        remaining_s = self.remaining_s(now)
        if remaining_s is not None and remaining_s <= 0:
            message = "deadline reached"
            if self.last_error is not None:
                message += f"; last API error: {self.last_error}"
            return PollStep(None, PollStop.DEADLINE, message, last_error=self.last_error)
        delay_s = max(self._interval_s, server_delay_s or 0.0)
        if remaining_s is not None:
            delay_s = min(delay_s, remaining_s)
        self._interval_s = min(self._interval_s * self.schedule.backoff_factor, self.schedule.max_interval_s)
        return PollStep(delay_s, server_delay_s=server_delay_s, last_error=self.last_error)
