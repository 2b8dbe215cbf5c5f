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


def test_batch_flags_reach_the_config() -> None:
    import argparse

    from airflow_provider_files.emulator.cli import config_from_args, configure_parser

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    config = config_from_args(
        parser.parse_args(
            [
                "--data-dir",
                "/tmp/unused-emulator-dir",
                "--batch-duration-s",
                "0.5",
                "--batch-request-error-rate",
                "0.25",
                "--batch-seed",
                "3",
                "--batch-expire-after-s",
                "30",
                "--batch-enqueued-token-limit",
                "1000",
            ]
        )
    )
    assert (config.batch_duration_s, config.batch_request_error_rate, config.batch_seed) == (0.5, 0.25, 3)
    assert (config.batch_expire_after_s, config.batch_enqueued_token_limit) == (30, 1000)
    defaults = config_from_args(parser.parse_args(["--data-dir", "/tmp/unused-emulator-dir"]))
    assert defaults.batch_duration_s == 2 and defaults.batch_expire_after_s is None


@pytest.mark.parametrize(
    ("option", "value"),
    [("--batch-request-error-rate", "1.5"), ("--batch-duration-s", "-1"), ("--batch-expire-after-s", "0")],
)
def test_bad_batch_flag_exits_2(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", option, value]) == 2
    assert option in capsys.readouterr().err
