"""Upload a large file through the Uploads API in parallel parts, with progress in the task log.

``make_file`` -> ``upload_file`` (ChunkedUploadOperator; waits until processed) -> ``report``.

The file is the ``source`` param, else ``$AIRFLOW_FILES_EXAMPLE_FILE``, else ``size_mb``
megabytes of generated data, written once to ``$AIRFLOW_HOME/example_data`` and reused by
later runs. ``source`` may be a local path or a URL such as
``gs://google_cloud_default@bucket/corpus.bin``; object storage is read as a stream, one part
range at a time. Run it with ``airflow dags test example_chunked_upload`` once
``AIRFLOW_CONN_OPENAI_FILES_DEFAULT`` points at the emulator or an API (see
``example_upload_jsonl``).

A retry of ``upload_file`` resumes the same upload from the checkpoint (parts already
acknowledged are not sent again), and a retry after success reuses the file.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_files.operators.files import ChunkedUploadOperator

SOURCE_ENV_VAR = "AIRFLOW_FILES_EXAMPLE_FILE"
BLOCK_BYTES = 1_000_000


with DAG(
    dag_id="example_chunked_upload",
    description="Upload a file in parallel parts through the Uploads API, with progress and resume",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "openai_files"],
    params={
        "source": Param(None, type=["null", "string"], description="file to upload (path or URL)"),
        "size_mb": Param(24, type="integer", minimum=1, description="size of the generated file"),
    },
) as dag:

    @task
    def make_file(params: dict[str, Any] | None = None) -> str:
        params = params or {}
        chosen = params.get("source") or os.environ.get(SOURCE_ENV_VAR)
        if chosen:
            return str(chosen)
        from airflow_provider_files.demo import example_data_folder, reuse_or_write

        size_mb = int(params.get("size_mb", 24))

        def write(path: Path) -> None:
            noise = random.Random(size_mb)  # the same bytes for a size: runs can share the file
            with path.open("wb") as handle:
                for _ in range(size_mb):
                    handle.write(noise.randbytes(BLOCK_BYTES))

        # written once into $AIRFLOW_HOME/example_data and reused by later runs
        return str(reuse_or_write(example_data_folder() / f"chunked-{size_mb}mb" / "corpus.bin", write))

    upload_file = ChunkedUploadOperator(
        task_id="upload_file",
        source=make_file(),
        purpose="user_data",
        files_conn_id="openai_files_default",
        part_size_bytes=4 * 1024 * 1024,
        concurrency=4,
        wait_for_completion=True,
        deferrable=False,
        poll_interval_s=1.0,
        timeout_s=600,
        retries=2,
        retry_delay=timedelta(seconds=2),  # the retry resumes: only missing parts are sent
    )

    @task
    def report(file: dict[str, Any]) -> str:
        print(f"READY_FILE_ID {file['id']} ({file['bytes']} bytes, purpose {file['purpose']})")
        return str(file["id"])

    report(upload_file.output)  # type: ignore[arg-type]  # an XComArg, resolved at run time


if __name__ == "__main__":
    dag.test()
