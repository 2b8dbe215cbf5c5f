"""Upload a Batch JSONL file in shards and run one Batch job per shard.

``prepare_requests`` -> ``upload_shards`` (UploadJsonlOperator, ``split=True``, waits until the
shards are processed) -> ``run_batches`` (BatchOperator mapped over the shard files with
``.expand()``; the endpoint comes from the validated files; waits in the triggerer) ->
``summarize`` (prints each batch's id, status and request counts).

Retries are safe: a retried ``run_batches`` finds the batch its earlier try created (the task
run's key is in the batch's metadata) and waits for it instead of paying for a second one.
Runs against the emulator with ``airflow dags test example_batch_operator``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.operators.batches import BatchOperator
from airflow_provider_files.operators.files import UploadJsonlOperator

with DAG(
    dag_id="example_batch_operator",
    description="Upload request shards and run one Batch job per shard",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    params={
        "source": Param(None, type=["null", "string"], description="JSONL to upload (path or URL)"),
        "sample_requests": Param(2500, type="integer", minimum=1, description="size of the sample"),
    },
) as dag:

    @task
    def prepare_requests(params: dict[str, Any] | None = None) -> str:
        """The file to upload: the ``source`` param, the env var, or the sample (written once)."""
        from airflow_provider_files.demo import example_source

        return example_source(params, default_requests=2500)

    upload_shards = UploadJsonlOperator(
        task_id="upload_shards",
        source=prepare_requests(),
        split=True,
        max_lines=1000,
        wait_for_completion=True,
        deferrable=True,
        poll_interval_s=1.0,
        timeout_s=600,
    )

    run_batches = BatchOperator.partial(
        task_id="run_batches",
        metadata={"example": "example_batch_operator"},
        deferrable=True,
        poll_interval_s=1.0,
        timeout_s=3600,
        retries=2,
        retry_delay=timedelta(seconds=1),
    ).expand(input_file_id=upload_shards.output)

    @task
    def summarize(batches: Any) -> dict[str, Any]:
        """``batches``: the mapped task's results, one batch dict per shard."""
        for batch in batches:
            print(f"BATCH {batch['id']} {batch['status']} {batch['request_counts']}")
        return {
            "batches": [b["id"] for b in batches],
            "requests": sum(b["request_counts"]["total"] for b in batches),
        }

    summarize(run_batches.output)
