"""``airflow-files upload`` in a subprocess, against the emulator."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.cli import main
from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.support import FilesConnection, RewritingProxy, api_error, chat_requests

pytestmark = pytest.mark.timeout(60)

CLI = [sys.executable, "-m", "airflow_provider_files.cli", "upload"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=90
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A valid batch file of about 3.6 MB: four parts of 1 MiB (the last one shorter)."""
    path = tmp_path / "requests.jsonl"
    path.write_bytes(chat_requests(25_000))
    return path


def test_upload_through_a_connection_prints_the_file_object(
    emulator: EmulatorHandle, files_connection: FilesConnection, source: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "ckpt.json"
    args: tuple[str, ...] = (
        str(source),
        "--purpose",
        "batch",
        "--files-conn-id",
        "files_test",
        "--part-size",
        "1MiB",
    )
    args += ("--chunked", "--concurrency", "3", "--checkpoint", str(checkpoint))

    files_connection(emulator, conn_id="files_test", gateway="openai")  # the child inherits it
    result = run_cli(*args)

    assert result.returncode == 0, result.stderr
    file_object = json.loads(result.stdout)
    assert file_object["id"].startswith("file-") and file_object["bytes"] == source.stat().st_size
    assert file_object["filename"] == "requests.jsonl" and file_object["purpose"] == "batch"
    assert emulator.file_md5(file_object["id"]) == hashlib.md5(source.read_bytes()).hexdigest()
    assert "100% " in result.stderr  # progress goes to stderr
    assert emulator.api_key not in result.stderr + result.stdout
    assert json.loads(checkpoint.read_text())["file"]["id"] == file_object["id"]


def test_upload_without_airflow_and_reuse_from_checkpoint(
    emulator: EmulatorHandle, source: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "ckpt.json"
    env = {"FILES_KEY": emulator.api_key}
    args: tuple[str, ...] = (
        str(source),
        "--purpose",
        "batch",
        "--base-url",
        emulator.base_url,
        "--api-key-env",
        "FILES_KEY",
    )
    args += (
        "--part-size",
        "1048576",
        "--checkpoint",
        str(checkpoint),
        "--filename",
        "named.jsonl",
        "--chunked",
    )

    first = run_cli(*args, env=env)
    second = run_cli(*args, env=env)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["id"] == json.loads(second.stdout)["id"]
    assert json.loads(first.stdout)["filename"] == "named.jsonl"
    assert "not uploading again" in second.stderr
    assert emulator.stats()["file_count"] == 1


def run_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, api_key: str = "sk-test"
) -> tuple[int, str, str]:
    """The command in this process (quicker than a subprocess): exit status, stdout, stderr."""
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    try:
        status = main(["upload", *args])
    except SystemExit as exit_:  # argparse usage errors
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_single_request_upload(
    emulator: EmulatorHandle,
    source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, out, err = run_in_process(
        capsys, monkeypatch, str(source), "--purpose", "batch", "--single-request",
        "--base-url", emulator.base_url, api_key=emulator.api_key,
    )  # fmt: skip

    assert status == 0, err
    file_id = json.loads(out)["id"]
    assert [e["route"] for e in emulator.request_log()] == ["create_file"]
    assert emulator.file_md5(file_id) == hashlib.md5(source.read_bytes()).hexdigest()


def test_single_request_with_checkpoint_finds_the_file_of_a_killed_run(
    emulator: EmulatorHandle, source: Path, tmp_path: Path
) -> None:
    """The process dies after the server stored the file but before the answer arrived: the rerun
    with the same checkpoint hands on that file instead of uploading a second one."""
    checkpoint = tmp_path / "single.json"
    env = {"FILES_KEY": emulator.api_key}
    args = (
        str(source), "--purpose", "batch", "--single-request", "--checkpoint", str(checkpoint),
        "--base-url", emulator.base_url, "--api-key-env", "FILES_KEY",
    )  # fmt: skip
    emulator.set_faults("create_file:latency_ms=30000")  # the answer comes 30 s after the file is stored
    first = subprocess.Popen(
        [*CLI, *args], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while emulator.stats()["file_count"] == 0 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emulator.stats()["file_count"] == 1, "the first run did not store the file"
    finally:
        first.kill()
        first.communicate(timeout=30)
    assert first.returncode != 0
    recorded = json.loads(checkpoint.read_text())
    assert recorded["file"] is None and recorded["started_at"] > 0
    emulator.clear_faults()

    second = run_cli(*args, env=env)
    third = run_cli(*args, env=env)

    assert second.returncode == 0 and third.returncode == 0, second.stderr + third.stderr
    stored = emulator.stats()
    assert stored["file_count"] == 1
    file_id = json.loads(second.stdout)["id"]
    assert json.loads(third.stdout)["id"] == file_id
    assert emulator.file_md5(file_id) == hashlib.md5(source.read_bytes()).hexdigest()
    assert "stored by an interrupted earlier try" in second.stderr
    assert "not uploading again" in third.stderr
    assert json.loads(checkpoint.read_text())["file"]["id"] == file_id
    assert [e["route"] for e in emulator.request_log()].count("create_file") == 1


def test_single_request_refuses_a_chunked_checkpoint(
    emulator: EmulatorHandle, source: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "ckpt.json"
    env = {"FILES_KEY": emulator.api_key}
    common = (
        str(source),
        "--purpose",
        "batch",
        "--base-url",
        emulator.base_url,
        "--api-key-env",
        "FILES_KEY",
    )
    chunked = run_cli(*common, "--chunked", "--part-size", "1MiB", "--checkpoint", str(checkpoint), env=env)
    assert chunked.returncode == 0, chunked.stderr
    before = checkpoint.read_text()

    refused = run_cli(*common, "--single-request", "--checkpoint", str(checkpoint), env=env)

    assert refused.returncode == 2
    assert "checkpoint of an upload through the Uploads API" in refused.stderr
    assert checkpoint.read_text() == before and emulator.stats()["file_count"] == 1


@pytest.mark.parametrize(
    ("extra_args", "message"),
    [
        (("--part-size", "100MiB"), "64 MiB"),
        (("--part-size", "lots"), "not a size"),
        (("--concurrency", "0"), "must be from 1"),
    ],
)
def test_bad_options_exit_2_before_anything_is_sent(
    emulator: EmulatorHandle,
    source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra_args: tuple[str, ...],
    message: str,
) -> None:
    status, out, err = run_in_process(
        capsys, monkeypatch, str(source), "--purpose", "batch", "--base-url", emulator.base_url, *extra_args
    )

    assert status == 2
    assert message in err and out == ""
    assert emulator.request_log() == []


def test_missing_connection_is_named(
    source: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = run_in_process(
        capsys, monkeypatch, str(source), "--purpose", "batch", "--files-conn-id", "no_such_conn"
    )

    assert status == 2
    assert "no_such_conn" in err and "AIRFLOW_CONN_NO_SUCH_CONN" in err


def test_api_failure_exits_1_with_the_cause(
    emulator: EmulatorHandle,
    source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator.set_faults("create_upload:quota=x1")

    status, out, err = run_in_process(
        capsys, monkeypatch, str(source), "--purpose", "batch", "--base-url", emulator.base_url, "--chunked",
        api_key=emulator.api_key,
    )  # fmt: skip

    assert status == 1
    assert "insufficient_quota" in err and "failed" in err
    assert out == ""


def test_chunked_default_part_size_is_evened_over_the_connections(
    emulator: EmulatorHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1 MiB without --part-size: 4 parts of 256 KiB over 4 connections, not one 16 MiB part.
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    status, out, _ = run_in_process(
        capsys, monkeypatch, str(source), "--purpose", "user_data", "--base-url", emulator.base_url,
        "--chunked", "--concurrency", "4", api_key=emulator.api_key,
    )  # fmt: skip

    assert status == 0
    assert json.loads(out)["bytes"] == 1024 * 1024
    assert [entry["route"] for entry in emulator.request_log()].count("add_part") == 4


def test_missing_source_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = run_in_process(
        capsys,
        monkeypatch,
        str(tmp_path / "absent.jsonl"),
        "--purpose",
        "batch",
        "--base-url",
        "http://127.0.0.1:9/v1",
    )

    assert status == 2 and "absent.jsonl is not a file" in err


def test_ctrl_c_exits_130_with_one_line_and_keeps_the_checkpoint(
    emulator: EmulatorHandle, source: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "ckpt.json"
    env = {**os.environ, "FILES_KEY": emulator.api_key}
    args = [
        str(source), "--purpose", "batch", "--base-url", emulator.base_url, "--api-key-env", "FILES_KEY",
        "--part-size", "1MiB", "--concurrency", "1", "--checkpoint", str(checkpoint), "--chunked",
    ]  # fmt: skip
    emulator.set_bandwidth(0.5)  # about 2 s per part: time to interrupt after the first
    process = subprocess.Popen(
        [*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if checkpoint.exists() and json.loads(checkpoint.read_text() or "{}").get("parts"):
                break
            time.sleep(0.05)
        else:
            pytest.fail("no part was acknowledged in time")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    emulator.set_bandwidth(None)

    assert process.returncode == 130, err
    assert "Traceback" not in err and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted:") and str(checkpoint) in last
    assert [line for line in err.splitlines() if "interrupt" in line.lower()] == [last]
    saved = json.loads(checkpoint.read_text())
    assert saved["upload_id"] and saved["parts"] and saved["file"] is None

    again = run_cli(*args, env={"FILES_KEY": emulator.api_key})
    assert again.returncode == 0, again.stderr
    assert "resuming upload " + saved["upload_id"] in again.stderr
    file_id = json.loads(again.stdout)["id"]
    assert emulator.file_md5(file_id) == hashlib.md5(source.read_bytes()).hexdigest()


def test_no_md5_completes_through_a_gateway_that_refuses_the_field(
    emulator: EmulatorHandle, source: Path, tmp_path: Path
) -> None:
    def refuse_md5(method: str, path: str, body: bytes) -> tuple[int, Any] | None:
        if path.endswith("/complete") and b'"md5"' in body:
            return 400, api_error("Unrecognized request argument supplied: md5")
        return None

    with RewritingProxy(emulator, refuse=refuse_md5) as proxy:
        args: tuple[str, ...] = (str(source), "--purpose", "batch", "--chunked", "--base-url", proxy.base_url)
        args += ("--api-key-env", "FILES_KEY")
        env = {"FILES_KEY": emulator.api_key}
        refused = run_cli(*args, env=env)
        accepted = run_cli(*args, "--no-md5", env=env)

    assert refused.returncode == 1
    assert "--no-md5" in refused.stderr and "changed while it was being uploaded" not in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    file_id = json.loads(accepted.stdout)["id"]
    assert emulator.file_md5(file_id) == hashlib.md5(source.read_bytes()).hexdigest()


def test_base_url_carries_gateway_headers_and_options(emulator_factory: Any, source: Path) -> None:
    """A self-hosted Portkey's needs, given on the command line: the emulator checks them as the gateway does."""
    strict = emulator_factory(api_key="sk-cli-upstream-123456")
    env = {"UPSTREAM_KEY": "sk-cli-upstream-123456"}
    base = [str(source), "--purpose", "batch", "--base-url", strict.base_url, "--gateway", "portkey"]
    base += ["--api-key-env", "UPSTREAM_KEY", "--single-request", "--quiet"]
    without = run_cli(*base, env=env)
    assert without.returncode == 2 and "needs portkey_provider" in without.stderr
    assert strict.request_log() == []
    result = run_cli(
        *base,
        "--header",
        "x-portkey-provider=openai",
        "--gateway-option",
        "portkey_custom_host=https://api.openai.com/v1",
        "--header",
        "X-Team=data-eng",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    uploaded = json.loads(result.stdout)
    logged = [e for e in strict.request_log() if e["route"] == "create_file"][-1]
    assert logged["status"] == 200 and "x-portkey-custom-host" in logged["headers"]
    assert "authorization" in logged["headers"] and "x-portkey-api-key" not in logged["headers"]
    assert uploaded["bytes"] == source.stat().st_size


def test_conn_json_and_masked_header_values(emulator_factory: Any, source: Path) -> None:
    strict = emulator_factory(api_key="sk-cli-right-123456")
    conn = {"host": strict.base_url, "password": "sk-cli-wrong-654321", "extra": {"max_retries": 0}}
    secret = "hdr-CLI-LEAKCHECK-777"
    result = run_cli(
        str(source),
        "--purpose",
        "batch",
        "--single-request",
        "--conn-json",
        json.dumps(conn),
        "--header",
        f"X-Auth-Token={secret}",
    )
    assert result.returncode == 1 and "401" in result.stderr
    assert secret not in result.stderr and "sk-cli-wrong-654321" not in result.stderr
    conn["password"] = "sk-cli-right-123456"
    ok = run_cli(
        str(source), "--purpose", "batch", "--single-request", "--quiet", "--conn-json", json.dumps(conn)
    )
    assert ok.returncode == 0, ok.stderr


def test_gateway_without_uploads_api_exits_2_naming_single_request(
    emulator: EmulatorHandle, source: Path
) -> None:
    result = run_cli(
        str(source),
        "--purpose",
        "batch",
        "--base-url",
        emulator.base_url,
        "--gateway",
        "litellm",
        "--chunked",
        env={"OPENAI_API_KEY": emulator.api_key},
    )
    assert result.returncode == 2
    assert "--single-request" in result.stderr
    assert emulator.request_log() == []


def test_header_needs_name_and_value(emulator: EmulatorHandle, source: Path) -> None:
    result = run_cli(
        str(source), "--purpose", "batch", "--base-url", emulator.base_url, "--header", "novalue"
    )
    assert result.returncode == 2 and "NAME=VALUE" in result.stderr
