"""example_wait_for_batch run end to end with dag.test() in real Airflow, against the emulator:
the BatchCompleteSensor deferrable (dag.test() runs BatchCompleteTrigger inline, rebuilt from its
serialize() output) and in poke mode, on a batch created directly through the hook."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.support import load_factor

from .support import states_by_task


@pytest.fixture
def run_example(
    load_example_dag: Callable[[str], ModuleType],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Callable[..., tuple[Any, str]]:
    """``run_example(deferrable, **run_conf)``: the dag run and what it logged."""

    def run(deferrable: bool, **run_conf: Any) -> tuple[Any, str]:
        dag = load_example_dag("example_wait_for_batch").dag
        sensor = dag.get_task("wait_for_batch")
        sensor.deferrable = deferrable
        sensor.poke_interval = 0.2
        dag_run = dag.test(run_conf=run_conf or None)
        captured = capfd.readouterr()
        return dag_run, captured.out + captured.err + caplog.text

    return run


def batch_gets(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [
        r for r in emulator.request_log() if r["method"] == "GET" and r["path"].startswith("/v1/batches/")
    ]


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_sensor_waits_until_the_batch_completes(
    deferrable: bool, dag_conn: EmulatorHandle, run_example: Callable[..., tuple[Any, str]]
) -> None:
    # long enough for the first check to see it running, on a loaded machine too
    dag_conn.configure(batch_duration_s=1.5 * load_factor())
    dag_run, text = run_example(deferrable)
    assert dag_run.state == DagRunState.SUCCESS, states_by_task(dag_run)
    assert set(states_by_task(dag_run).values()) == {TaskInstanceState.SUCCESS}
    (batch_id,) = dag_conn.stats()["batches"]
    assert len(batch_gets(dag_conn)) > 1  # the first check saw it running
    assert ("running trigger in line" in text) is deferrable
    done_line = next(line for line in text.splitlines() if "BATCH_DONE" in line)
    assert batch_id in done_line and "completed" in done_line
    assert '"total": 3, "completed": 3, "failed": 0' in done_line


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_sensor_fails_with_the_bad_line(
    deferrable: bool, dag_conn: EmulatorHandle, run_example: Callable[..., tuple[Any, str]]
) -> None:
    dag_conn.configure(batch_duration_s=1)
    dag_run, text = run_example(deferrable, break_line=2)
    states = states_by_task(dag_run)
    assert dag_run.state == DagRunState.FAILED, states
    assert states["start_batch"] == TaskInstanceState.SUCCESS
    assert states["wait_for_batch"] == TaskInstanceState.FAILED
    assert states["report"] == TaskInstanceState.UPSTREAM_FAILED
    assert "BatchFailedError" in text and "line 2 invalid_json_line" in text
