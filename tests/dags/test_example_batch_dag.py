"""The BatchOperator example DAG in real Airflow (``dag.test()``, SQLite metadata DB) against the
emulator over HTTP: upload shards, one batch per shard, retries that make no second batch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_files.batches import RUN_KEY_METADATA_KEY
from airflow_provider_files.demo import SAMPLE_MODEL, write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle

from .support import returned_by, task_instances, task_states

DAG_ID = "example_batch_operator"
CHAT = "/v1/chat/completions"


def run(load_example_dag: Callable[[str], ModuleType], source: Path) -> Any:
    return load_example_dag(DAG_ID).dag.test(run_conf={"source": str(source)})


def test_shards_chain_into_one_completed_batch_each(
    load_example_dag: Callable[[str], ModuleType], dag_conn: EmulatorHandle, tmp_path: Path
) -> None:
    dag_conn.configure(batch_duration_s=1.0)
    source = write_sample_requests(tmp_path / "requests.jsonl", 2500)

    dag_run = run(load_example_dag, source)

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    (upload,) = task_instances(dag_run, "upload_shards")
    shards = returned_by(upload)
    assert [(f["endpoint"], f["model"]) for f in shards] == [(CHAT, SAMPLE_MODEL)] * 3
    batches = [returned_by(ti) for ti in task_instances(dag_run, "run_batches")]
    assert [b["input_file_id"] for b in batches] == [f["id"] for f in shards]
    assert [b["status"] for b in batches] == ["completed"] * 3
    assert [b["request_counts"]["total"] for b in batches] == [1000, 1000, 500]
    assert all(b["endpoint"] == CHAT for b in batches)
    assert len({b["metadata"][RUN_KEY_METADATA_KEY] for b in batches}) == 3
    (summary,) = task_instances(dag_run, "summarize")
    assert returned_by(summary)["requests"] == 2500
    assert dag_conn.stats()["batches_created"] == 3


def test_lost_create_answer_and_a_crashed_wait_retry_into_the_same_batch(
    load_example_dag: Callable[[str], ModuleType],
    dag_conn: EmulatorHandle,
    use_emulator: Callable[..., None],
    tmp_path: Path,
) -> None:
    use_emulator(dag_conn, max_retries=0)
    dag_conn.configure(batch_duration_s=1.0)
    source = write_sample_requests(tmp_path / "requests.jsonl", 500)  # one shard: one batch
    # The answer to the create is lost (the batch exists), then the wait fails on an error a
    # poll cannot ride out: the task fails and its retry must take up the same batch.
    dag_conn.set_faults("create_batch:drop_after=x1,retrieve_batch:quota=x1")

    dag_run = run(load_example_dag, source)

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    (task,) = task_instances(dag_run, "run_batches")
    assert task.state == TaskInstanceState.SUCCESS and task.try_number == 2
    batch = returned_by(task)
    assert batch["status"] == "completed"
    stats = dag_conn.stats()
    assert stats["batches_created"] == 1 and list(stats["batches"]) == [batch["id"]]
    assert sum(dag_conn.faults()["injected"].values()) == 2
