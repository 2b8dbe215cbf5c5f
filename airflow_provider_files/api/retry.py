"""The one retry policy: which failures are transient, and how long to wait before the next attempt."""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from airflow_provider_files.api.errors import (
    ApiConnectionError,
    ApiStatusError,
    BadRequestError,
    FilesApiError,
    NotFoundError,
    QuotaExceededError,
)

RETRYABLE_STATUS_CODES = frozenset({408, 409, 429})


def _finite(text: str) -> float | None:
    """A number from a header; ``nan``/``inf`` and non-numbers give ``None``."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``retry-after`` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        millis = _finite(value)
        if millis is not None:
            return max(millis / 1000.0, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" zone: the date is in UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def is_transient(error: FilesApiError) -> bool:
    """Whether retrying the same request may succeed (server's ``x-should-retry`` is applied separately)."""
    if isinstance(error, ApiConnectionError):
        return error.retryable
    if isinstance(error, QuotaExceededError):
        return False
    if isinstance(error, ApiStatusError):
        return error.status_code in RETRYABLE_STATUS_CODES or error.status_code >= 500
    return False


def is_ambiguous(error: FilesApiError) -> bool:
    """A failure after which the server may nevertheless have done the work (no answer, or a 5xx).

    A connection that was never made (refused, unknown host, a failed TLS handshake) sent nothing.
    """
    if isinstance(error, ApiStatusError):
        return error.status_code >= 500
    return isinstance(error, ApiConnectionError) and error.reached_server


def may_have_completed(error: FilesApiError) -> bool:
    """A complete that failed in a way suggesting an earlier attempt (or run) completed the upload."""
    if is_ambiguous(error):
        return True
    if isinstance(error, ApiStatusError) and error.status_code in (400, 409):
        text = (error.server_message or str(error)).lower()
        return "completed" in text or "already" in text
    return False


def is_md5_mismatch(error: BaseException) -> bool:
    """The server refused a complete because the md5 it computed differs from the one sent."""
    if not isinstance(error, BadRequestError):
        return False
    return error.param == "md5" or "md5" in (error.server_message or str(error)).lower()


def is_gone(error: BaseException) -> bool:
    """The upload no longer takes parts or a complete: unknown, expired or cancelled."""
    if isinstance(error, NotFoundError):
        return True
    if isinstance(error, BadRequestError):
        text = (error.server_message or str(error)).lower()
        return any(
            word in text for word in ("expired", "cancelled", "canceled", "not 'pending'", "not pending")
        )
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring the server's retry hints.

    :param max_attempts: attempts in all, the first included (``max_retries + 1``).
    :param initial_delay_s: backoff before the first retry.
    :param max_delay_s: cap on one backoff delay.
    :param max_total_wait_s: cap on the time spent waiting across all retries of one request.
    :param max_retry_after_s: a server delay above this ends the retries (the error is raised).
    :param jitter: fraction of each backoff delay removed at random, to spread clients apart.
    """

    max_attempts: int = 6
    initial_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_total_wait_s: float = 300.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.25
    random_fraction: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @classmethod
    def from_max_retries(cls, max_retries: int, **kwargs: float) -> RetryPolicy:
        return cls(max_attempts=max_retries + 1, **kwargs)  # type: ignore[arg-type]

    def backoff_s(self, retry_number: int) -> float:
        """Delay before retry ``retry_number`` (1-based) when the server gives no hint."""
        delay = min(self.initial_delay_s * 2 ** (retry_number - 1), self.max_delay_s)
        return delay * (1 - self.jitter * self.random_fraction())

    def start(self) -> RetryState:
        return RetryState(self)


@dataclass
class RetryState:
    """Book-keeping for the attempts of one request; both clients drive their loops with it."""

    policy: RetryPolicy
    attempts: int = 0
    waited_s: float = 0.0

    def next_delay(self, error: FilesApiError, *, should_retry_header: str | None = None) -> float | None:
        """Delay before the next attempt, or ``None`` when ``error`` must be raised."""
        self.attempts += 1
        hint = (should_retry_header or "").strip().lower()
        if hint == "false":
            return None
        if hint != "true" and not is_transient(error):
            return None
        if self.attempts >= self.policy.max_attempts:
            return None
        server_delay = error.retry_after_s if isinstance(error, ApiStatusError) else None
        if server_delay is not None and server_delay > self.policy.max_retry_after_s:
            return None
        delay = server_delay if server_delay is not None else self.policy.backoff_s(self.attempts)
        if self.waited_s + delay > self.policy.max_total_wait_s:
            return None
        self.waited_s += delay
        return delay
