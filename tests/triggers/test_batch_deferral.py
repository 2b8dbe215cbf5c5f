"""defer_until_batch_done and batch_on_resume, as a sensor or an operator (any BaseOperator) uses them."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_files.exceptions import BatchExpiredError, BatchWaitError
from airflow_provider_files.triggers.batches import BatchCompleteTrigger
from airflow_provider_files.triggers.deferral import (
    DEFER_TIMEOUT_SLACK_S,
    batch_on_resume,
    defer_until_batch_done,
)


class Waiter(BaseOperator):
    def execute(self, context: Any) -> Any:
        defer_until_batch_done(
            self,
            "batch_1",
            files_conn_id="conn",
            targets={"completed", "cancelled"},
            deadline=time.time() + 120,
            timeout_s=120,
            poll_interval_s=30,
            max_poll_interval_s=5,  # raised to the poll interval
            method_name="resume",
        )


def test_defers_to_the_batch_trigger_with_a_backstop_timeout() -> None:
    with pytest.raises(TaskDeferred) as info:
        Waiter(task_id="create").execute({})
    deferred = info.value
    assert deferred.method_name == "resume"
    assert deferred.timeout == timedelta(seconds=120 + DEFER_TIMEOUT_SLACK_S)
    trigger = deferred.trigger
    assert isinstance(trigger, BatchCompleteTrigger)
    assert (trigger.batch_id, trigger.files_conn_id, trigger.targets) == (
        "batch_1",
        "conn",
        ["cancelled", "completed"],
    )
    assert (trigger.poll_interval_s, trigger.max_poll_interval_s) == (30, 30)


def test_on_resume_returns_the_batch_or_raises() -> None:
    task = Waiter(task_id="create")
    batch = {"id": "batch_1", "status": "completed", "request_counts": {"total": 1}}
    assert batch_on_resume(task, {"status": "success", "batch": batch}) == batch
    ended = {
        "status": "error",
        "reason": "batch_ended",
        "message": "ended expired",
        "batch": {"id": "b", "status": "expired"},
    }
    with pytest.raises(BatchExpiredError, match="ended expired") as raised:
        batch_on_resume(task, ended)
    assert raised.value.batch == {"id": "b", "status": "expired"}
    with pytest.raises(BatchWaitError, match="create resumed without a valid trigger event"):
        batch_on_resume(task, {"batch": batch})
