"""Upload a Batch JSONL file, wait until the API has processed it, hand the file id to a Batch job.

``prepare_requests`` -> ``upload_requests`` (UploadJsonlOperator: validate, then upload) ->
``wait_until_processed`` (UploadCompleteSensor, deferrable) -> ``hand_off_to_batch``.

Run it against the local emulator (no key, no bill)::

    airflow-files emulator --port 8080 &
    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files",
        "host": "http://127.0.0.1:8080/v1", "password": "sk-local"}'
    airflow dags test example_upload_jsonl

or against OpenAI, or a gateway, by pointing the same connection elsewhere (nothing in the DAG
changes)::

    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files", "password": "sk-..."}'
    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files", "password": "<portkey key>",
        "extra": {"gateway": "portkey", "portkey_virtual_key": "<virtual key>"}}'

The file to upload is the ``source`` param, else ``$AIRFLOW_FILES_EXAMPLE_JSONL``, else a sample
of ``sample_requests`` chat-completion requests, written once to ``$AIRFLOW_HOME/example_data``
and reused by later runs. ``source`` may be a local path or a URL such as
``s3://aws_default@bucket/requests.jsonl``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.operators.files import UploadJsonlOperator
from airflow_provider_files.sensors.files import UploadCompleteSensor

with DAG(
    dag_id="example_upload_jsonl",
    description="Validate and upload a Batch JSONL file, wait until it is processed, hand it to Batch",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    params={
        "source": Param(None, type=["null", "string"], description="JSONL to upload (path or URL)"),
        "sample_requests": Param(1000, type="integer", minimum=1, description="size of the sample"),
    },
) as dag:

    @task
    def prepare_requests(params: dict[str, Any] | None = None) -> str:
        """The file to upload: the ``source`` param, the env var, or the sample (written once)."""
        from airflow_provider_files.demo import example_source

        return example_source(params, default_requests=1000)

    requests_path = prepare_requests()

    upload_requests = UploadJsonlOperator(
        task_id="upload_requests",
        source=requests_path,
        purpose="batch",
        files_conn_id="openai_files_default",
    )

    wait_until_processed = UploadCompleteSensor(
        task_id="wait_until_processed",
        file_id=upload_requests.output,
        files_conn_id="openai_files_default",
        deferrable=True,
        poke_interval=1.0,
        timeout=600,
    )

    @task
    def hand_off_to_batch(file: dict[str, Any]) -> list[str]:
        """Where a Batch job would be created from the ready input file."""
        print(f"READY_FILE_ID {file['id']} ({file['bytes']} bytes, status {file['status']})")
        # e.g. OpenAI: client.batches.create(input_file_id=file["id"],
        #                                     endpoint="/v1/chat/completions", completion_window="24h")
        return [file["id"]]

    hand_off_to_batch(wait_until_processed.output)  # type: ignore[arg-type]  # an XComArg, resolved at run time


if __name__ == "__main__":
    dag.test()
