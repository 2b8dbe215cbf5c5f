"""The upload example DAGs, run in real Airflow (``dag.test()``, SQLite metadata DB) against the
emulator over HTTP; and the demo command, end to end."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_files import demo
from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from tests.support import load_factor

from .support import output_of, task_states, xcom_of


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def data_requests(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [
        entry
        for entry in emulator.request_log()
        if entry["method"] == "POST" and entry["route"] in {"create_file", "create_upload", "add_part"}
    ]


def test_upload_jsonl_dag_uploads_waits_and_hands_off(
    load_example_dag: Callable[[str], ModuleType],
    dag_conn: EmulatorHandle,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = write_sample_requests(tmp_path / "requests.jsonl", 300)
    dag_conn.set_processing_delay(1.5 * load_factor())  # the sensor must really wait (in the inline trigger)

    dag_run = load_example_dag("example_upload_jsonl").dag.test(run_conf={"source": str(source)})

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    uploaded = xcom_of(dag_run, "upload_requests")
    assert uploaded["bytes"] == source.stat().st_size and uploaded["purpose"] == "batch"
    assert xcom_of(dag_run, "wait_until_processed")["status"] == "processed"
    assert xcom_of(dag_run, "hand_off_to_batch") == [uploaded["id"]]
    assert dag_conn.file_md5(uploaded["id"]) == md5_of(source.read_bytes())
    assert dag_conn.stats()["file_count"] == 1
    assert "running trigger in line" in output_of(capfd, caplog)


def test_upload_jsonl_dag_fails_on_invalid_file_and_sends_nothing(
    load_example_dag: Callable[[str], ModuleType],
    dag_conn: EmulatorHandle,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = write_sample_requests(tmp_path / "requests.jsonl", 10)
    lines = source.read_text().splitlines()
    lines[3] = lines[3].replace('"method":"POST"', '"method":"GET"')  # line 4
    source.write_text("\n".join(lines) + "\n")

    dag_run = load_example_dag("example_upload_jsonl").dag.test(run_conf={"source": str(source)})

    states = task_states(dag_run)
    assert dag_run.state == DagRunState.FAILED
    assert states[("upload_requests", -1)] == TaskInstanceState.FAILED
    assert states[("hand_off_to_batch", -1)] == TaskInstanceState.UPSTREAM_FAILED
    text = output_of(capfd, caplog)
    assert "InvalidBatchFileError" in text  # renamed from InvalidBatchFileException
    assert "line 4:" in text and "bad_method" in text
    assert dag_conn.stats()["body_bytes_received"] == 0
    assert data_requests(dag_conn) == []


def test_split_dag_uploads_every_shard_and_fans_out(
    load_example_dag: Callable[[str], ModuleType],
    dag_conn: EmulatorHandle,
    tmp_path: Path,
) -> None:
    source = write_sample_requests(tmp_path / "requests.jsonl", 2500)
    dag_conn.set_processing_delay(1.0)

    dag_run = load_example_dag("example_upload_jsonl_split").dag.test(run_conf={"source": str(source)})

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    shards = xcom_of(dag_run, "upload_shards")
    assert [f["filename"] for f in shards] == [f"requests-0000{i}.jsonl" for i in (1, 2, 3)]
    assert all(f["status"] == "processed" for f in shards)  # waited inside the upload task
    handed_off = [xcom_of(dag_run, "hand_off_to_batch", index) for index in range(3)]
    assert handed_off == [f["id"] for f in shards]
    joined = b""
    hook = FilesHook()
    for index, shard in enumerate(shards):
        hook.download_file(shard["id"], tmp_path / f"shard{index}")
        joined += (tmp_path / f"shard{index}").read_bytes()
    assert joined == source.read_bytes()
    assert dag_conn.stats()["file_count"] == 3


def test_chunked_upload_dag(
    load_example_dag: Callable[[str], ModuleType],
    dag_conn: EmulatorHandle,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dag_run = load_example_dag("example_chunked_upload").dag.test(run_conf={"size_mb": 9})

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    source = Path(xcom_of(dag_run, "make_file"))
    file = xcom_of(dag_run, "upload_file")
    assert file["bytes"] == 9_000_000 and file["purpose"] == "user_data"
    assert xcom_of(dag_run, "report") == file["id"]
    assert dag_conn.file_md5(file["id"]) == md5_of(source.read_bytes())
    routes = [entry["route"] for entry in data_requests(dag_conn)]
    assert routes.count("create_upload") == 1 and routes.count("add_part") == 3  # 4 MiB parts
    progress = [
        line for line in output_of(capfd, caplog).splitlines() if "corpus.bin: " in line and "MiB/s" in line
    ]
    assert progress and "100% 8.58 MiB of 8.58 MiB" in progress[-1]
    source.unlink()


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``make demo`` runs ``airflow-files demo``: emulator, ``airflow db migrate`` and
    ``airflow dags test example_batch_loop`` as real processes. Heavy (about 30-60 s on 2 cores)."""
    parser = argparse.ArgumentParser()
    demo.configure_parser(parser)
    args = parser.parse_args(
        [
            "--dir",
            str(tmp_path / "demo"),
            "--requests",
            "1200",
            "--processing-delay-s",
            "1",
            "--batch-duration-s",
            "1",
        ]
    )

    assert demo.run(args) == 0

    out = capsys.readouterr().out
    batch_lines = [line.split() for line in out.splitlines() if line.startswith("    batch_")]
    assert [(line[1], line[2]) for line in batch_lines] == [("completed", "1000"), ("completed", "200")]
    results = tmp_path / "demo" / "results"
    for line in batch_lines:
        assert (results / f"{line[0]}_output.jsonl").is_file()
    summary = json.loads((results / "loop_summary.json").read_text())
    assert (summary["requests"], summary["succeeded"]) == (1200, 1200)
    assert f"results and loop_summary.json in {results}" in out
    # The DAG file came from the package, into the demo's own dags folder.
    assert (tmp_path / "demo" / "dags" / "example_batch_loop.py").is_file()
    listening = re.search(r"emulator listening at http://127\.0\.0\.1:(\d+)/v1", out)
    assert listening is not None, out
    port = int(listening.group(1))
    with pytest.raises(OSError):  # the demo stopped the emulator it started
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_demo_without_the_example_dags_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    demo.configure_parser(parser)
    args = parser.parse_args(["--dir", str(tmp_path), "--dags-folder", str(tmp_path / "nowhere")])

    assert demo.run(args) == 1

    err = capsys.readouterr().err
    assert "demo failed: cannot find example_batch_loop.py" in err
    assert not (tmp_path / "emulator.port").exists()  # nothing was started
