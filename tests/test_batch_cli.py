"""``airflow-files batch`` in a subprocess, against the emulator: create (and wait), status,
results, cancel; JSON on stdout, exit codes 0 / 1 / 2, idempotence with --run-key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.batches.support import client_for, ids, jsonl_ids, run_batch, upload_ids, wait_for
from tests.support import FilesConnection

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "airflow_provider_files.cli", "batch"]
CHAT = "/v1/chat/completions"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=90
    )


def direct(emulator: EmulatorHandle) -> tuple[list[str], dict[str, str]]:
    """The options and environment reaching the emulator without Airflow."""
    return ["--base-url", emulator.base_url, "--api-key-env", "FILES_KEY"], {"FILES_KEY": emulator.api_key}


def output_of(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_create_and_wait_through_a_connection_then_status(
    emulator: EmulatorHandle, files_connection: FilesConnection
) -> None:
    emulator.configure(batch_duration_s=0.3)
    with client_for(emulator) as client:
        file_id = upload_ids(client, ids(12))
    files_connection(emulator, conn_id="batch_cli_conn")  # the child inherits it

    created = run_cli(
        "create",
        file_id,
        "--endpoint",
        CHAT,
        "--metadata",
        "team=search",
        "job=nightly",
        "--wait",
        "--poll-interval-s",
        "0.1",
        "--timeout-s",
        "60",
        "--files-conn-id",
        "batch_cli_conn",
    )

    assert created.returncode == 0, created.stderr
    batch = output_of(created)
    assert batch["status"] == "completed" and batch["input_file_id"] == file_id
    assert batch["request_counts"] == {"total": 12, "completed": 12, "failed": 0}
    assert batch["metadata"] == {"team": "search", "job": "nightly"}
    assert emulator.api_key not in created.stdout + created.stderr
    status = run_cli("status", batch["id"], "--files-conn-id", "batch_cli_conn")
    assert status.returncode == 0, status.stderr
    assert output_of(status)["id"] == batch["id"] and output_of(status)["status"] == "completed"


def test_create_is_idempotent_only_with_a_run_key(emulator: EmulatorHandle) -> None:
    options, env = direct(emulator)
    with client_for(emulator) as client:
        file_id = upload_ids(client, ids(3))
    keyed = [
        run_cli("create", file_id, "--endpoint", CHAT, "--run-key", "k1", *options, env=env) for _ in "ab"
    ]
    assert [r.returncode for r in keyed] == [0, 0], keyed[0].stderr + keyed[1].stderr
    assert output_of(keyed[0])["id"] == output_of(keyed[1])["id"]
    assert emulator.stats()["batches_created"] == 1
    plain = run_cli("create", file_id, "--endpoint", CHAT, *options, env=env)
    assert plain.returncode == 0, plain.stderr
    assert output_of(plain)["id"] != output_of(keyed[0])["id"] and emulator.stats()["batches_created"] == 2


def test_a_batch_that_ends_failed_exits_1_with_the_batch_printed(emulator: EmulatorHandle) -> None:
    options, env = direct(emulator)
    with client_for(emulator) as client:
        # Two requests with the same custom_id: the batch fails validation.
        file_id = upload_ids(client, ["same", "same"])
    result = run_cli(
        "create", file_id, "--endpoint", CHAT, "--wait", "--poll-interval-s", "0.05", *options, env=env
    )
    assert result.returncode == 1, result.stderr
    assert output_of(result)["status"] == "failed"
    assert "ended failed" in result.stderr


def test_results_in_input_order_and_the_failed_fraction_limit(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_duration_s=0.1)
    options, env = direct(emulator)
    wanted = ["c", "a", "b", "e", "d"]
    with client_for(emulator) as client:
        batch = run_batch(client, wanted)
    result = run_cli("results", batch.id, str(tmp_path / "out"), "--order", "input", *options, env=env)
    assert result.returncode == 0, result.stderr
    summary = output_of(result)
    results_path = Path(summary["files"]["results"])
    assert results_path == tmp_path / "out" / f"{batch.id}_results.jsonl"
    assert jsonl_ids(results_path.read_bytes()) == wanted
    assert (summary["succeeded"], summary["failed"], summary["problems"]) == (5, 0, [])

    emulator.configure(batch_request_error_rate=0.5, batch_seed=3)
    with client_for(emulator) as client:
        failing = run_batch(client, ids(30))
    over = run_cli(
        "results", failing.id, str(tmp_path / "out2"), "--max-failed-fraction", "0.01", *options, env=env
    )
    assert over.returncode == 1, over.stderr
    summary = output_of(over)
    assert summary["failed"] > 0 and summary["problems"]
    assert Path(summary["files"]["errors"]).is_file()  # the files are written all the same


def test_cancel_a_running_batch(emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=100.0)
    options, env = direct(emulator)
    with client_for(emulator) as client:
        batch = client.create_batch(upload_ids(client, ids(4)), CHAT)
        result = run_cli("cancel", batch.id, *options, env=env)
        assert result.returncode == 0, result.stderr
        assert output_of(result)["status"] in ("cancelling", "cancelled")
        assert wait_for(client, batch.id).status == "cancelled"


@pytest.mark.parametrize(
    "args",
    [
        ["create", "file-x"],  # no --endpoint
        ["results", "batch_x", "out", "--max-failed-fraction", "2"],
        ["frobnicate", "batch_x"],
        ["create", "file-x", "--endpoint", CHAT, "--metadata", "novalue"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and result.stdout == ""


def test_missing_key_and_unknown_batch(emulator: EmulatorHandle) -> None:
    options, env = direct(emulator)
    no_key = run_cli("status", "batch_x", *options, env={"FILES_KEY": ""})
    assert no_key.returncode == 2 and "FILES_KEY" in no_key.stderr
    unknown = run_cli("status", "batch_does_not_exist", *options, env=env)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "batch status failed" in unknown.stderr
