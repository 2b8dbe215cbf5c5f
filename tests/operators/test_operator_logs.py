"""What the upload operators write to the task log: each line says what it means."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.operators.files import UploadJsonlOperator

from .support import run_task, task_context


def test_single_request_upload_and_blocking_wait_say_what_happened(
    files_conn: EmulatorHandle,
    batch_file: Callable[..., Path],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    files_conn.set_processing_delay(1.5)
    source = batch_file(1000)
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        checkpoint_folder=str(tmp_path / "ck"),
        wait_for_completion=True,
        deferrable=False,
        poll_interval_s=0.1,
    )
    caplog.set_level(logging.INFO)
    result = run_task(operator, task_context())

    # The task logger writes through structlog to stdout; uploads/ logs to the logging module.
    task_log = capfd.readouterr().out
    assert "1000 requests to /v1/chat/completions" in task_log
    assert f"Uploaded requests.jsonl as file {result['id']} in one POST /files request (" in caplog.text
    assert "with one request" not in caplog.text + task_log
    waits = [line for line in task_log.splitlines() if result["id"] in line]
    assert any("has status 'uploaded', not 'processed' yet" in line for line in waits)
    assert f"Done waiting for file(s) {result['id']}: ready after " in waits[-1]
