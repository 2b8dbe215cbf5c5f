"""The poll loop every trigger of this provider runs: one async client, the one poll schedule, one event.

A trigger says what one check is (``check``: the final event, or ``None`` to keep waiting) and how
its events look; the loop spaces the checks (backoff, Retry-After, deadline), rides out transient
API errors, abandons a check that overruns the deadline, and turns any surprise into an error event
so the task never hangs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_files.api import ApiTimeoutError, AsyncFilesClient, FilesApiError, RetryPolicy
from airflow_provider_files.api.polling import POLL_BACKOFF_FACTOR, PollSchedule, PollStop
from airflow_provider_files.hooks.files import AsyncFilesHook

# A poll still running this long after the deadline is abandoned (client timeouts can be minutes).
POLL_OVERRUN_S = 10.0
# The poll loop absorbs outages; the client only smooths over a single dropped request.
TRIGGER_RETRY_POLICY = RetryPolicy(
    max_attempts=2, initial_delay_s=0.5, max_delay_s=2.0, max_total_wait_s=5.0, max_retry_after_s=5.0
)

Event = dict[str, Any]


class PollingTrigger(BaseTrigger):
    """Base of the provider's triggers: subclasses set the attributes below and implement ``_wait``.

    :ivar files_conn_id: id of an ``openai_files`` connection.
    :ivar deadline: absolute end of the wait (unix seconds).
    :ivar poll_interval_s: first wait between checks.
    :ivar max_poll_interval_s: cap on the wait between checks.
    :ivar max_consecutive_errors: transient API errors in a row that are ridden out.
    """

    files_conn_id: str
    deadline: float
    poll_interval_s: float
    max_poll_interval_s: float
    max_consecutive_errors: int

    def _awaited(self) -> str:
        """What is waited for, in words for messages."""
        raise NotImplementedError

    def _api_error_event(self, message: str) -> Event:
        """The event that ends the wait when the API cannot be asked."""
        raise NotImplementedError

    async def _wait(self) -> Event:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except Exception as exc:  # an unexpected failure must end the wait, not hang the task
            self.log.exception("Waiting for %s failed", self._awaited())
            event = self._api_error_event(
                f"waiting for {self._awaited()} failed: {type(exc).__name__}: {exc}"
            )
        yield TriggerEvent(event)

    async def _poll_until_event(
        self,
        check: Callable[[AsyncFilesClient], Awaitable[Event | None]],
        *,
        retry_policy: RetryPolicy,
        pending_summary: Callable[[], str],
        timeout_event: Callable[[str], Event],
    ) -> Event:
        """Run ``check`` on the schedule until it returns an event, the API fails for good, or the deadline.

        :param check: one check with the loop's client: the final event, or ``None`` to keep waiting.
        :param retry_policy: the client's own retries (kept short: this loop handles outages).
        :param pending_summary: what is still awaited, for the log and the timeout message.
        :param timeout_event: the event for a deadline reached, from its message.
        """
        schedule = PollSchedule(
            initial_interval_s=self.poll_interval_s,
            backoff_factor=POLL_BACKOFF_FACTOR,
            max_interval_s=self.max_poll_interval_s,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        poll = schedule.start(now=time.time(), deadline=self.deadline)
        hook = AsyncFilesHook(self.files_conn_id)
        async with await hook.get_async_client(retry_policy=retry_policy) as client:
            while True:
                try:
                    poll_budget_s = max(self.deadline - time.time(), 0.0) + POLL_OVERRUN_S
                    try:
                        event = await asyncio.wait_for(check(client), poll_budget_s)
                    except asyncio.TimeoutError:
                        raise ApiTimeoutError(
                            f"checking {self._awaited()} took more than {poll_budget_s:.0f}s (past the deadline)"
                        ) from None
                except FilesApiError as exc:
                    step = poll.after_error(exc, now=time.time())
                    if step.stop is PollStop.API_ERROR:
                        return self._api_error_event(f"giving up on {self._awaited()}: {exc}")
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
                    self.log.info("%s", pending_summary())
                    step = poll.after_pending(now=time.time())
                if step.stop is PollStop.DEADLINE:
                    return timeout_event(step.explain(f"deadline reached; {pending_summary()}"))
                if step.gave_up or step.delay_s is None:
                    return self._api_error_event(step.message)
                await asyncio.sleep(step.delay_s)


def check_poll_settings(
    poll_interval_s: float, max_poll_interval_s: float, max_consecutive_errors: int
) -> None:
    """Refuse poll settings the schedule cannot follow, when the trigger is built."""
    if poll_interval_s <= 0 or max_poll_interval_s < poll_interval_s:
        raise ValueError(
            f"need 0 < poll_interval_s <= max_poll_interval_s, got {poll_interval_s} and {max_poll_interval_s}"
        )
    if max_consecutive_errors < 0:
        raise ValueError("max_consecutive_errors must not be negative")
