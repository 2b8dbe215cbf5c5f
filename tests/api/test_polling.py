"""The poll schedule (backoff, error tolerance, deadline, Retry-After) and the batch readiness rule:
pure decisions, checked without I/O."""

from __future__ import annotations

import pytest

from airflow_provider_files.api import (
    ApiConnectionError,
    AuthenticationError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from airflow_provider_files.api.polling import PollSchedule, PollStop
from airflow_provider_files.api.readiness import BatchReadiness, ReadinessState

T0 = 1_700_000_000.0


def rate_limited(retry_after_s: float | None) -> RateLimitError:
    return RateLimitError("429 slow down", status_code=429, retry_after_s=retry_after_s)


def test_backoff_grows_by_factor_up_to_the_cap() -> None:
    poll = PollSchedule(initial_interval_s=2, backoff_factor=1.5, max_interval_s=4).start(now=T0)
    delays = [poll.after_pending(now=T0).delay_s for _ in range(4)]
    assert delays == [2, 3, 4, 4]


def test_fixed_interval_with_factor_one() -> None:
    poll = PollSchedule(initial_interval_s=5, backoff_factor=1, max_interval_s=5).start(now=T0)
    assert {poll.after_pending(now=T0).delay_s for _ in range(3)} == {5}


def test_retry_after_stretches_the_delay_beyond_the_cap() -> None:
    poll = PollSchedule(initial_interval_s=1, max_interval_s=2).start(now=T0, deadline=T0 + 100)
    step = poll.after_error(rate_limited(30), now=T0)
    assert not step.gave_up
    assert step.delay_s == 30
    assert step.server_delay_s == 30


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    poll = PollSchedule(initial_interval_s=10).start(now=T0)
    assert poll.after_error(rate_limited(0.5), now=T0).delay_s == 10


def test_delay_never_passes_the_deadline() -> None:
    poll = PollSchedule(initial_interval_s=10).start(now=T0, deadline=T0 + 4)
    assert poll.after_pending(now=T0 + 1).delay_s == 3
    assert poll.after_error(rate_limited(60), now=T0 + 2).delay_s == 2


def test_deadline_reached_stops_and_names_the_last_error() -> None:
    poll = PollSchedule(initial_interval_s=1).start(now=T0, deadline=T0 + 5)
    step = poll.after_error(ServerError("503 overloaded", status_code=503), now=T0 + 5)
    assert step.stop is PollStop.DEADLINE
    assert step.delay_s is None
    assert "503 overloaded" in step.message
    assert poll.after_pending(now=T0 + 6).stop is PollStop.DEADLINE


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("401 bad key", status_code=401),
        QuotaExceededError("429 out of quota", status_code=429, code="insufficient_quota"),
    ],
    ids=["401", "quota"],
)
def test_non_transient_error_stops_at_once(error: Exception) -> None:
    poll = PollSchedule(max_consecutive_errors=10).start(now=T0)
    step = poll.after_error(error, now=T0)  # type: ignore[arg-type]
    assert step.stop is PollStop.API_ERROR
    assert step.last_error is error


def test_transient_errors_tolerated_then_too_many() -> None:
    poll = PollSchedule(initial_interval_s=1, max_consecutive_errors=2).start(now=T0)
    error = ApiConnectionError("refused")
    assert not poll.after_error(error, now=T0).gave_up
    assert not poll.after_error(error, now=T0).gave_up
    step = poll.after_error(error, now=T0)
    assert step.stop is PollStop.TOO_MANY_ERRORS
    assert "3 consecutive API errors" in step.message and "refused" in step.message


def test_an_answer_resets_the_error_count() -> None:
    poll = PollSchedule(initial_interval_s=1, max_consecutive_errors=1).start(now=T0)
    error = ServerError("500", status_code=500)
    for _ in range(3):
        assert not poll.after_error(error, now=T0).gave_up
        assert not poll.after_pending(now=T0).gave_up
    assert poll.consecutive_errors == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_interval_s": -1}, {"backoff_factor": 0.5}, {"max_consecutive_errors": -1}],
)
def test_bad_schedule_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollSchedule(**kwargs)  # type: ignore[arg-type]


# -- batches -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("validating", ReadinessState.PENDING),
        ("in_progress", ReadinessState.PENDING),
        ("finalizing", ReadinessState.PENDING),
        ("cancelling", ReadinessState.PENDING),
        ("completed", ReadinessState.READY),
        ("failed", ReadinessState.FAILED),
        ("expired", ReadinessState.FAILED),
        ("cancelled", ReadinessState.FAILED),
        ("something_new", ReadinessState.PENDING),
    ],
)
def test_batch_default_target_is_completed(status: str, state: ReadinessState) -> None:
    assert BatchReadiness("batch_1").evaluate(status).state is state


def test_batch_failure_reason_names_status_target_and_details() -> None:
    verdict = BatchReadiness("batch_1").evaluate("failed", details="line 3: model not found")
    assert verdict.is_failed
    assert verdict.reason == "batch batch_1 ended failed, not completed: line 3: model not found"


def test_batch_targets_are_configurable() -> None:
    readiness = BatchReadiness("batch_1", targets={"completed", "expired"})
    assert readiness.evaluate("expired").is_ready
    assert readiness.evaluate("cancelled").is_failed
    assert BatchReadiness("batch_1", targets={"in_progress"}).evaluate("in_progress").is_ready


@pytest.mark.parametrize("targets", [set(), {"done"}])
def test_batch_unknown_targets_rejected(targets: set[str]) -> None:
    with pytest.raises(ValueError, match="batch statuses"):
        BatchReadiness("batch_1", targets=targets)
