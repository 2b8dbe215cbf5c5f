"""Upload Batch input files, wait in the triggerer until the API has processed them, hand the ids on.

``upload_batch_files`` (a @task using ``FilesHook``) -> ``wait_until_ready``
(``UploadCompleteSensor``, deferrable: no worker slot is held while waiting) -> ``use_file_ids``.

The sensor fails at once, with the server's ``status_details``, if a file is marked ``error``;
trigger the DAG with ``{"break_line": 2}`` to upload a file whose second line is not JSON and see
it fail on a server that checks batch files (the emulator with ``--validate-batch``).

Run it against the local emulator (no key, no bill)::

    airflow-files emulator --port 8080 --processing-delay-s 2 --validate-batch &
    export AIRFLOW_CONN_OPENAI_FILES_DEFAULT='{"conn_type": "openai_files",
        "host": "http://127.0.0.1:8080/v1", "password": "sk-local"}'
    airflow dags test example_wait_for_file
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.sensors.files import UploadCompleteSensor

FILES_CONN_ID = "openai_files_default"
# One endpoint and one model per batch file: chat requests and embedding requests go in two files.
ENDPOINT_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hello"},
}


with DAG(
    dag_id="example_wait_for_file",
    description="Upload batch input files, wait (deferred) until they are processed, pass the ids on",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    params={
        "requests_per_file": Param(3, type="integer", minimum=1, description="lines in each file"),
        "break_line": Param(
            None, type=["null", "integer"], description="make this line of the first file invalid JSON"
        ),
    },
) as dag:

    @task
    def upload_batch_files(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Write one small batch file per endpoint and upload each with ``POST /files``."""
        from airflow_provider_files.hooks.files import FilesHook

        params = params or {}
        count = int(params.get("requests_per_file") or 3)
        break_line = params.get("break_line")
        hook = FilesHook(FILES_CONN_ID)
        uploaded = []
        # a folder of this try only, removed once its files are uploaded
        with tempfile.TemporaryDirectory(prefix="example-wait-for-file-") as temporary:
            try:
                for index, (url, body) in enumerate(ENDPOINT_BODIES.items()):
                    lines = [
                        json.dumps({"custom_id": f"req-{n}", "method": "POST", "url": url, "body": body})
                        for n in range(1, count + 1)
                    ]
                    if index == 0 and break_line is not None and 1 <= break_line <= count:
                        lines[break_line - 1] = lines[break_line - 1][:-1]  # drop the closing brace
                    path = Path(temporary) / f"requests-{index}.jsonl"
                    path.write_text("\n".join(lines) + "\n")
                    uploaded.append(hook.upload_file(path, "batch").to_dict())
            finally:
                hook.close()
        return uploaded

    wait_until_ready = UploadCompleteSensor(
        task_id="wait_until_ready",
        file_id=upload_batch_files(),  # file dicts: their sizes are checked too
        files_conn_id=FILES_CONN_ID,
        deferrable=True,
        poke_interval=0.5,
        max_poll_interval_s=5,
        timeout=300,
    )

    @task
    def use_file_ids(files: list[dict[str, Any]]) -> list[str]:
        """Where a Batch job per file would be created; returns the ready ids."""
        file_ids = [file["id"] for file in files]
        print(f"READY_FILE_IDS {' '.join(file_ids)}")
        return file_ids

    use_file_ids(wait_until_ready.output)  # type: ignore[arg-type]  # an XComArg, resolved at run time


if __name__ == "__main__":
    dag.test()
