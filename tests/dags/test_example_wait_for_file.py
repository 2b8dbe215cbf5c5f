"""example_wait_for_file run end to end with dag.test() in real Airflow, against the emulator.

The deferrable sensor defers; dag.test() runs UploadCompleteTrigger inline (rebuilt from its
serialize() output) and resumes the sensor with the event.
"""

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
def run_dag(load_example_dag: Callable[[str], ModuleType]) -> Callable[..., Any]:
    def run(run_conf: dict[str, Any] | None = None) -> Any:
        return load_example_dag("example_wait_for_file").dag.test(run_conf=run_conf)

    return run


def file_gets(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [
        r for r in emulator.request_log() if r["method"] == "GET" and r["path"].startswith("/v1/files/file")
    ]


@pytest.mark.usefixtures("airflow_db")
def test_deferrable_sensor_waits_until_processed(
    emulator: EmulatorHandle,
    use_emulator: Callable[..., None],
    run_dag: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.set_processing_delay(1.5 * load_factor())  # the poke must see it unprocessed, loaded or not
    use_emulator(emulator)
    dag_run = run_dag()
    assert dag_run.state == DagRunState.SUCCESS, states_by_task(dag_run)
    assert set(states_by_task(dag_run).values()) == {TaskInstanceState.SUCCESS}
    stats = emulator.stats()
    assert stats["file_count"] == 2
    # The sensor's poke saw the files still "uploaded", so the trigger did the waiting.
    assert len(file_gets(emulator)) > 2
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    assert "running trigger in line" in text
    # The downstream task received the ids of both uploaded files.
    ready_line = next(line for line in text.splitlines() if "READY_FILE_IDS" in line)
    assert all(file_id in ready_line for file_id in stats["files"])


@pytest.mark.usefixtures("airflow_db")
def test_deferrable_sensor_fails_on_error_file(
    emulator: EmulatorHandle,
    use_emulator: Callable[..., None],
    run_dag: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Long enough that the sensor's first poke finds the file still processing even on a loaded
    # machine, so the failure really comes through the trigger.
    emulator.configure(validate_batch=True, processing_delay_s=4.0)
    use_emulator(emulator)
    dag_run = run_dag({"break_line": 2})
    states = states_by_task(dag_run)
    assert dag_run.state == DagRunState.FAILED, states
    assert states["upload_batch_files"] == TaskInstanceState.SUCCESS
    assert states["wait_until_ready"] == TaskInstanceState.FAILED
    assert states["use_file_ids"] == TaskInstanceState.UPSTREAM_FAILED
    output = capfd.readouterr()
    text = output.out + output.err + caplog.text
    # Failed from the trigger's event, with the server's status_details.
    assert "running trigger in line" in text
    assert "FileProcessingFailedError" in text
    assert "failed processing: Line 2" in text
