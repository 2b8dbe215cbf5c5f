"""The whole-loop example DAG in real Airflow (``dag.test()``, SQLite metadata DB) against the
emulator over HTTP: shards -> one batch each -> results downloaded -> summary; and its failure
when too many requests fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.batches.support import jsonl_ids

from .support import returned_by, task_instances, task_states

DAG_ID = "example_batch_loop"


def run(load_example_dag: Callable[[str], ModuleType], **conf: Any) -> Any:
    return load_example_dag(DAG_ID).dag.test(run_conf=conf)


def test_the_example_dag_is_the_packaged_one() -> None:
    repo_file = Path(__file__).resolve().parents[2] / "example_dags" / f"{DAG_ID}.py"
    from airflow_provider_files.example_dags import example_batch_loop

    assert repo_file.resolve() == Path(example_batch_loop.__file__).resolve()


def test_requests_go_round_the_whole_loop(
    load_example_dag: Callable[[str], ModuleType], dag_conn: EmulatorHandle, tmp_path: Path
) -> None:
    dag_conn.configure(batch_duration_s=0.5)
    source = write_sample_requests(tmp_path / "requests.jsonl", 2100)
    results = tmp_path / "results"

    dag_run = run(load_example_dag, source=str(source), destination=str(results))

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    batches = [returned_by(ti) for ti in task_instances(dag_run, "run_batches")]
    assert [b["request_counts"]["total"] for b in batches] == [1000, 1000, 100]
    downloads = [returned_by(ti) for ti in task_instances(dag_run, "download_results")]
    assert [d["batch_id"] for d in downloads] == [b["id"] for b in batches]
    written: list[str] = []
    for batch in batches:
        written += jsonl_ids((results / f"{batch['id']}_output.jsonl").read_bytes())
    assert sorted(written) == [f"request-{index:06d}" for index in range(2100)]
    (summary_ti,) = task_instances(dag_run, "summarize")
    summary = returned_by(summary_ti)
    assert summary["batch_ids"] == [b["id"] for b in batches]
    assert (summary["requests"], summary["succeeded"], summary["failed"]) == (2100, 2100, 0)
    assert summary["usage"]["total_tokens"] == sum(d["usage"]["total_tokens"] for d in downloads) > 0
    assert summary["destination"] == str(results)
    on_disk = json.loads((results / "loop_summary.json").read_text())
    assert on_disk["batch_ids"] == summary["batch_ids"] and "lines" not in on_disk
    assert dag_conn.stats()["batches_created"] == 3


def test_too_many_failed_requests_fail_the_download_with_the_files_written(
    load_example_dag: Callable[[str], ModuleType], dag_conn: EmulatorHandle, tmp_path: Path
) -> None:
    dag_conn.configure(batch_duration_s=0.2, batch_request_error_rate=0.5, batch_seed=5)
    source = write_sample_requests(tmp_path / "requests.jsonl", 40)

    dag_run = run(load_example_dag, source=str(source), destination=str(tmp_path / "out"))

    assert dag_run.state == DagRunState.FAILED
    (download,) = task_instances(dag_run, "download_results")
    assert download.state == TaskInstanceState.FAILED
    (batch_ti,) = task_instances(dag_run, "run_batches")
    batch_id = returned_by(batch_ti)["id"]
    assert (tmp_path / "out" / f"{batch_id}_errors.jsonl").stat().st_size > 0
    assert task_states(dag_run)[("summarize", -1)] != TaskInstanceState.SUCCESS
