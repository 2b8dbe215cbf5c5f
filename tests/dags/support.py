"""Helpers of the DAG-level tests (imported by the tests; fixtures live in conftest.py): the task
instances, states and XComs of a finished ``dag.test()`` run, and what the run logged."""

from __future__ import annotations

from typing import Any

import pytest


def task_states(dag_run: Any) -> dict[tuple[str, int], Any]:
    """The state of every task instance of the run, by task id and map index."""
    return {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}


def states_by_task(dag_run: Any) -> dict[str, Any]:
    """The state of every task of a run without mapped tasks, by task id."""
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def task_instances(dag_run: Any, task_id: str) -> list[Any]:
    """The task instances of one task of the run, in map index order."""
    return sorted(
        (ti for ti in dag_run.get_task_instances() if ti.task_id == task_id), key=lambda ti: ti.map_index
    )


def xcom_of(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """What one task instance of the run returned."""
    for ti in dag_run.get_task_instances():
        if ti.task_id == task_id and ti.map_index == map_index:
            return ti.xcom_pull(task_ids=task_id, map_indexes=map_index)
    raise AssertionError(f"no task instance {task_id}[{map_index}]")


def returned_by(ti: Any) -> Any:
    """What the task instance ``ti`` returned."""
    return ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)


def output_of(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """What the run logged: task logs go to stdout or to the logging module depending on how
    Airflow's logging was set up earlier in the session."""
    captured = capfd.readouterr()
    return captured.out + captured.err + caplog.text
