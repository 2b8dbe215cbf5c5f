"""Test-only DAG for the secrets scenario of the reliability suite (not an example for users).

Every task talks to the emulator through a connection carrying known secrets (API key, Portkey
virtual key and config, an Azure-style ``api-key`` header); one task uses a wrong key and fails.
Paths come from environment variables set by ``bench/reliability/secrets.py``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_files.operators.files import ChunkedUploadOperator, UploadJsonlOperator
from airflow_provider_files.sensors.files import UploadCompleteSensor

SECRET_CONN_ID = "reliability_secret_conn"
WRONG_KEY_CONN_ID = "reliability_secret_wrong_key"

with DAG(
    "reliability_secrets",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"jsonl": os.environ.get("RELIABILITY_JSONL", ""), "blob": os.environ.get("RELIABILITY_BLOB", "")},
) as dag:
    upload_jsonl = UploadJsonlOperator(
        task_id="upload_jsonl",
        source="{{ params.jsonl }}",
        files_conn_id=SECRET_CONN_ID,
        wait_for_completion=True,
        poll_interval_s=0.5,
        timeout_s=60,
    )
    upload_chunked = ChunkedUploadOperator(
        task_id="upload_chunked",
        source="{{ params.blob }}",
        purpose="batch",
        filename="blob-{{ run_id | replace(':', '_') }}.bin",
        files_conn_id=SECRET_CONN_ID,
        part_size_bytes=64 * 1024,
        concurrency=2,
    )
    wait_deferred = UploadCompleteSensor(
        task_id="wait_deferred",
        file_id=upload_chunked.output,
        files_conn_id=SECRET_CONN_ID,
        deferrable=True,
        poke_interval=0.5,
        timeout=60,
    )
    wait_poking = UploadCompleteSensor(
        task_id="wait_poking",
        file_id=upload_jsonl.output,
        files_conn_id=SECRET_CONN_ID,
        deferrable=False,
        poke_interval=0.5,
        timeout=60,
    )
    upload_wrong_key = UploadJsonlOperator(
        task_id="upload_wrong_key",
        source="{{ params.jsonl }}",
        files_conn_id=WRONG_KEY_CONN_ID,
        retries=0,
    )
