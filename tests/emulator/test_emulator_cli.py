"""The command line: ``airflow-files emulator`` and ``python -m``, readiness line, clean stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_files.cli import main


def test_console_script_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from airflow_provider_files.cli import main; sys.exit(main())",
            "emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--data-dir",
            str(tmp_path / "data"),
            "--api-key",
            "sk-cli",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready_line = process.stdout.readline() if process.stdout else ""
        port = int(port_file.read_text())
        assert ready_line.strip().endswith(f"http://127.0.0.1:{port}/v1")
        response = httpx.get(f"http://127.0.0.1:{port}/v1/files", headers={"Authorization": "Bearer sk-cli"})
        assert response.status_code == 200
        # introspection is off unless enabled
        assert httpx.get(f"http://127.0.0.1:{port}/_emulator/stats").status_code == 404
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert process.wait(10) == 0
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_fault_spec_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--faults", "teapot=1"]) == 2
    assert "teapot" in capsys.readouterr().err


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_files.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--bandwidth-per-connection" in result.stdout and "--validate-batch" in result.stdout
