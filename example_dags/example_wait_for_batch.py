"""Wait for a Batch job that was started elsewhere, in the triggerer, and use its results.

``start_batch`` (a @task that uploads a small request file and creates the batch with
``FilesHook``: any batch id works, not only those of this provider's operators) ->
``wait_for_batch`` (``BatchCompleteSensor``, deferrable: no worker slot is held while waiting) ->
``report``. The sensor fails at once with the batch's ``errors`` (line, code, message) if the batch
ends ``failed``; trigger the DAG with ``{"break_line": 2}`` to send a file whose second line is not
JSON and see it.

Run it against the local emulator (no key, no bill)::

    airflow-files emulator --port 8080 --batch-duration-s 5 &
    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files",
        "host": "http://127.0.0.1:8080/v1", "password": "sk-local"}'
    airflow dags test example_wait_for_batch
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.sensors.batches import BatchCompleteSensor

FILES_CONN_ID = "openai_files_default"
ENDPOINT = "/v1/chat/completions"


with DAG(
    dag_id="example_wait_for_batch",
    description="Start a batch with the hook, wait (deferred) until it completes, report its counts",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    params={
        "requests": Param(3, type="integer", minimum=1, description="requests in the batch"),
        "break_line": Param(None, type=["null", "integer"], description="make this line invalid JSON"),
    },
) as dag:

    @task
    def start_batch(params: dict[str, Any] | None = None) -> str:
        """Upload a small chat completions request file and create a batch of it; the batch id."""
        from airflow_provider_files.hooks.files import FilesHook

        params = params or {}
        lines = []
        for i in range(int(params.get("requests") or 3)):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say hi {i}"}]}
            lines.append(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": ENDPOINT, "body": body}))
        if params.get("break_line"):
            lines[int(params["break_line"]) - 1] = "{not json"
        hook = FilesHook(FILES_CONN_ID)
        uploaded = hook.upload_file(("\n".join(lines) + "\n").encode(), "batch", filename="requests.jsonl")
        return hook.create_batch(uploaded.id, ENDPOINT).id

    wait_for_batch = BatchCompleteSensor(
        task_id="wait_for_batch",
        batch_id=start_batch(),
        files_conn_id=FILES_CONN_ID,
        deferrable=True,
        poll_interval_s=1,
        timeout=3600,
    )

    @task
    def report(batch: dict[str, Any]) -> None:
        print("BATCH_DONE", batch["id"], batch["status"], json.dumps(batch["request_counts"]))

    report(wait_for_batch.output)  # type: ignore[arg-type]  # an XComArg, resolved at run time
