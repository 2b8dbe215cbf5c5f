"""example_batch_results run with dag.test() in real Airflow against the emulator: results of a
batch created outside Airflow land in a folder (local or memory://), checked, resubmitted, cleaned up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_files.api import ClientSettings, FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.batches.support import ids, jsonl, jsonl_ids, run_batch
from tests.operators.conftest import memory_storage  # noqa: F401 - the fixture, shared

from .support import task_states, xcom_of

RunDag = Callable[..., Any]


@pytest.fixture
def client(dag_conn: EmulatorHandle) -> Any:
    dag_conn.configure(batch_duration_s=0.2)
    with FilesClient(ClientSettings(api_key=dag_conn.api_key, base_url=dag_conn.base_url)) as files_client:
        yield files_client


@pytest.fixture
def run_dag(load_example_dag: Callable[[str], ModuleType]) -> RunDag:
    def run(**conf: Any) -> Any:
        return load_example_dag("example_batch_results").dag.test(run_conf=conf)

    return run


def test_results_land_in_a_local_folder_and_the_summary_chains(
    run_dag: RunDag, client: FilesClient, tmp_path: Path
) -> None:
    batch = run_batch(client, ids(30))
    dag_run = run_dag(batch_id=batch.id, destination=str(tmp_path / "results"))
    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    summary = xcom_of(dag_run, "download_results")
    output = tmp_path / "results" / f"{batch.id}_output.jsonl"
    assert summary["files"]["output"] == f"file://{output}"
    assert sorted(jsonl_ids(output.read_bytes())) == sorted(ids(30))
    assert (summary["succeeded"], summary["failed"], summary["missing_count"]) == (30, 0, 0)
    assert xcom_of(dag_run, "report")["usage"] == summary["usage"]


def test_request_errors_over_the_limit_fail_the_task_with_the_files_written(
    run_dag: RunDag, client: FilesClient, dag_conn: EmulatorHandle, tmp_path: Path
) -> None:
    dag_conn.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(40))
    dag_run = run_dag(batch_id=batch.id, destination=str(tmp_path), max_failed_fraction=0.05)
    assert dag_run.state == DagRunState.FAILED
    assert task_states(dag_run)[("download_results", -1)] == TaskInstanceState.FAILED
    errors = jsonl((tmp_path / f"{batch.id}_errors.jsonl").read_bytes())
    assert 0 < len(errors) < 40 and {e["error"]["code"] for e in errors} <= {
        "rate_limit_exceeded",
        "server_error",
    }


def test_resubmission_in_input_order_to_memory_storage_then_cleanup(
    run_dag: RunDag,
    client: FilesClient,
    dag_conn: EmulatorHandle,
    memory_storage: MemoryFileSystem,  # noqa: F811 - the fixture imported above
) -> None:
    dag_conn.configure(batch_request_error_rate=0.3, batch_seed=3)
    wanted = [f"q{index}" for index in (5, 1, 9, 3, 7, 0, 8, 2, 6, 4, 10, 11, 12, 13, 14)]
    batch = run_batch(client, wanted)
    dag_conn.configure(batch_request_error_rate=0.0)
    dag_run = run_dag(
        batch_id=batch.id,
        destination="memory://bucket/out",
        order="input",
        resubmit_failed=1,
        cleanup_files=True,
    )
    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    summary = xcom_of(dag_run, "download_results")
    data = memory_storage.cat(f"/bucket/out/{batch.id}_results.jsonl")
    assert jsonl_ids(data) == wanted  # one line per custom_id, in input order
    assert summary["succeeded"] == len(wanted) and summary["failed"] == 0
    assert [r["round"] for r in summary["rounds"]] == [1, 2] and dag_conn.stats()["batches_created"] == 2
    assert dag_conn.stats()["file_count"] == 0  # every file of both rounds deleted
    assert len(summary["deleted_files"]) == 5  # round 1: input, output, error; round 2: input, output
