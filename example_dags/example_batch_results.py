"""Download the results of any finished batch into a folder, every request accounted for.

``download_results`` (DownloadBatchResultsOperator) -> ``report``. The batch need not come from
Airflow: give its id as the ``batch_id`` param. Results land in the ``destination`` param (a local
folder or a URL such as ``s3://aws_default@bucket/results/``) as ``<batch_id>_output.jsonl`` and
``<batch_id>_errors.jsonl``, or one ``<batch_id>_results.jsonl`` with ``order="input"`` or
``resubmit_failed`` > 0 (requests that failed with a retryable error, or have no result, go into a
follow-up batch, waited for in the task).

Run it against the local emulator (no key, no bill)::

    airflow-files emulator --port 8080 &
    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files",
        "host": "http://127.0.0.1:8080/v1", "password": "sk-local"}'
    airflow dags test example_batch_results -c '{"batch_id": "batch_...", "destination": "/tmp/results"}'
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.operators.batch_results import DownloadBatchResultsOperator

with DAG(
    dag_id="example_batch_results",
    description="Download a finished batch's results into a folder and account for every request",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    render_template_as_native_obj=True,
    params={
        "batch_id": Param("", type="string", description="id of a finished batch"),
        "destination": Param("/tmp/batch_results", type="string", description="folder (path or URL)"),
        "order": Param("results", enum=["results", "input"], description="order of the results"),
        "resubmit_failed": Param(0, type="integer", minimum=0, description="follow-up rounds at most"),
        "max_failed_fraction": Param(None, type=["null", "number"], minimum=0, maximum=1),
        "cleanup_files": Param(False, type="boolean", description="delete the API's files afterwards"),
    },
) as dag:
    results = DownloadBatchResultsOperator(
        task_id="download_results",
        batch="{{ params.batch_id }}",
        destination="{{ params.destination }}",
        order="{{ params.order }}",
        resubmit_failed="{{ params.resubmit_failed }}",
        max_failed_fraction="{{ params.max_failed_fraction }}",
        cleanup_files="{{ params.cleanup_files }}",
        poll_interval_s=2.0,
    )

    @task
    def report(summary: dict[str, Any]) -> dict[str, Any]:
        """What a downstream task reads: counts, error codes, tokens, where the files are."""
        print(
            f"batch {summary['batch_id']} ({summary['status']}): {summary['succeeded']} succeeded, "
            f"{summary['failed']} failed, {summary['missing_count']} missing; files: {summary['files']}"
        )
        return {key: summary[key] for key in ("batch_id", "succeeded", "failed", "files", "usage")}

    report(results.output)  # type: ignore[arg-type]  # an XComArg, resolved at run time
