"""Split an oversize Batch JSONL file into shards, upload and wait in one task, fan out per shard.

``prepare_requests`` -> ``upload_shards`` (UploadJsonlOperator with ``split=True`` and
``wait_for_completion=True``, deferrable) -> ``hand_off_to_batch`` mapped over the shard files
with ``.expand()``: one Batch job per shard.

The Batch API takes at most 50,000 requests and 200 MB per file; ``max_lines`` is set low here
so that the sample splits. Every line of the whole source is validated while it is split
(custom_id unique across shards, one endpoint, one model); nothing is uploaded if one is bad.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.operators.files import UploadJsonlOperator

with DAG(
    dag_id="example_upload_jsonl_split",
    description="Shard a Batch JSONL file, upload every shard and wait, one Batch hand-off per shard",
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
        files_conn_id="openai_files_default",
        wait_for_completion=True,
        deferrable=True,
        poll_interval_s=1.0,
        timeout_s=600,
    )

    @task
    def hand_off_to_batch(file: dict[str, Any]) -> str:
        print(f"READY_FILE_ID {file['id']} ({file['filename']}, {file['bytes']} bytes)")
        return str(file["id"])

    hand_off_to_batch.expand(file=upload_shards.output)


if __name__ == "__main__":
    dag.test()
