"""The whole Batch loop: requests -> upload in shards -> one batch per shard -> results -> summary.

``prepare_requests`` (the file of requests) -> ``upload_shards`` (UploadJsonlOperator with
``split=True``: validate every line, split into batch-sized shards, upload, wait until processed)
-> ``run_batches`` (BatchOperator mapped over the shards with ``.expand()``; waits in the
triggerer) -> ``download_results`` (DownloadBatchResultsOperator mapped over the batches: every
request accounted for, files in a folder) -> ``summarize`` (batch ids, request counts, token usage,
where the results are; also written as ``loop_summary.json`` beside the results).

Run it against the local emulator (no key, no bill)::

    airflow-files emulator --port 8080 --batch-duration-s 2 &
    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files",
        "host": "http://127.0.0.1:8080/v1", "password": "sk-local"}'
    airflow dags test example_batch_loop -c '{"destination": "/tmp/batch_loop"}'

``airflow-files demo`` does all of that for you. The requests are the ``source`` param, else
``$AIRFLOW_FILES_EXAMPLE_JSONL``, else a sample of ``sample_requests`` written once to
``$AIRFLOW_HOME/example_data`` and reused by later runs; the results go to the ``destination``
param (a folder or a URL such as ``s3://conn@bucket/out/``), else ``$AIRFLOW_FILES_EXAMPLE_RESULTS``,
else a new temporary folder.

Retries are safe: a retried ``run_batches`` finds the batch its earlier try created (the run's key
is in the batch's metadata) instead of paying for a second one.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.operators.batch_results import DownloadBatchResultsOperator
from airflow_provider_files.operators.batches import BatchOperator
from airflow_provider_files.operators.files import UploadJsonlOperator

SUMMARY_FILE_NAME = "loop_summary.json"
SHARD_MAX_LINES = 1000

with DAG(
    dag_id="example_batch_loop",
    description="Upload request shards, run one Batch job per shard, download and account for the results",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    params={
        "source": Param(None, type=["null", "string"], description="JSONL to upload (path or URL)"),
        "sample_requests": Param(2500, type="integer", minimum=1, description="size of the sample"),
        "destination": Param(None, type=["null", "string"], description="results folder (path or URL)"),
        "max_failed_fraction": Param(0.05, type=["null", "number"], minimum=0, maximum=1),
    },
) as dag:

    @task
    def prepare_requests(params: dict[str, Any] | None = None) -> str:
        """The file to upload: the ``source`` param, the env var, or the sample (written once)."""
        from airflow_provider_files.demo import example_source

        return example_source(params, default_requests=2500)

    @task
    def choose_destination(params: dict[str, Any] | None = None) -> str:
        """The results folder: the ``destination`` param, the env var, or a new temporary folder."""
        from airflow_provider_files.demo import example_destination

        return example_destination(params)

    destination = choose_destination()

    upload_shards = UploadJsonlOperator(
        task_id="upload_shards",
        source=prepare_requests(),
        split=True,
        max_lines=SHARD_MAX_LINES,
        wait_for_completion=True,
        deferrable=True,
        poll_interval_s=1.0,
        timeout_s=600,
    )

    run_batches = BatchOperator.partial(
        task_id="run_batches",
        metadata={"example": "example_batch_loop"},
        deferrable=True,
        poll_interval_s=1.0,
        timeout_s=3600,
        retries=2,
        retry_delay=timedelta(seconds=1),
    ).expand(input_file_id=upload_shards.output)

    download_results = DownloadBatchResultsOperator.partial(
        task_id="download_results",
        destination=destination,  # an XComArg, resolved at run time
        max_failed_fraction="{{ params.max_failed_fraction }}",
        retries=2,
        retry_delay=timedelta(seconds=1),
    ).expand(batch=run_batches.output)

    @task
    def summarize(batches: Any, results: Any, folder: str) -> dict[str, Any]:
        """One line per batch and the totals; ``batches`` and ``results`` are the mapped outputs."""
        from airflow_provider_files.demo import summarize_loop, write_loop_summary

        summary = summarize_loop(list(batches), list(results), folder)
        for line in summary["lines"]:
            print(line)
        print(f"results in {folder}; summary: {write_loop_summary(summary, folder, SUMMARY_FILE_NAME)}")
        print("LOOP_SUMMARY " + json.dumps({k: v for k, v in summary.items() if k != "lines"}))
        return summary

    summarize(run_batches.output, download_results.output, destination)  # type: ignore[arg-type]  # XComArgs


if __name__ == "__main__":
    dag.test()
