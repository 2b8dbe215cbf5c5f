"""Helpers of the sensor tests."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred


def deferred_trigger(task: Any, *, timeout_s: float) -> Any:
    """Run ``task.execute``, which must defer to ``execute_complete`` with a deadline ``timeout_s``
    from now and Airflow's backstop timeout at least as long; the trigger it deferred to."""
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout is not None and deferred.timeout >= timedelta(seconds=timeout_s)
    trigger = deferred.trigger
    assert before + timeout_s <= trigger.deadline <= time.time() + timeout_s
    return trigger
