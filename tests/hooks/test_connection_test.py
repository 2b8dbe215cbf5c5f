"""The connection test (Airflow's UI Test button, ``airflow connections test``): one request, no
retries, a message that names the base URL and never the key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from tests.support import FilesConnection

KEY = "sk-connection-test-secret-4242"
AIRFLOW = Path(sys.executable).with_name("airflow")
# Refused connections fail at once; five retries with backoff took about 15 s before the fix.
REFUSED_WITHIN_S = 2.0


def _dead_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_port_fails_at_once_and_names_the_host(files_connection: FilesConnection) -> None:
    port = _dead_port()
    files_connection(f"http://127.0.0.1:{port}/v1", conn_id="files_refused", password=KEY, max_retries=5)
    started = time.monotonic()
    ok, message = FilesHook("files_refused").test_connection()
    elapsed_s = time.monotonic() - started
    assert ok is False
    assert elapsed_s < REFUSED_WITHIN_S, f"took {elapsed_s:.1f} s: the test retried"
    assert f"http://127.0.0.1:{port}/v1" in message and "files_refused" in message
    assert KEY not in message


def test_the_ui_test_names_the_base_url_not_airflows_throwaway_id(
    files_connection: FilesConnection, emulator: EmulatorHandle
) -> None:
    """Airflow's API server tests the form under a random 8-character id in an AIRFLOW_CONN_* variable."""
    port = _dead_port()
    throwaway = files_connection(
        f"http://user:{KEY}@127.0.0.1:{port}/v1?key={KEY}", conn_id="GsJy28wd", password=KEY
    )
    ok, message = FilesHook(throwaway).test_connection()
    assert ok is False
    assert f"the connection to http://127.0.0.1:{port}/v1" in message
    assert throwaway not in message and KEY not in message

    files_connection(emulator, conn_id="Ab12Cd34", password=emulator.api_key)
    ok, message = FilesHook("Ab12Cd34").test_connection()
    assert ok, message
    assert message == f"Connected to {emulator.base_url} (openai); 0 file(s) listed"


def test_a_server_error_fails_once_without_retrying(
    strict_emulator: EmulatorHandle, files_connection: FilesConnection
) -> None:
    strict_emulator.set_faults("list_files:503=x1")
    files_connection(strict_emulator, conn_id="files_unavailable", password=strict_emulator.api_key)
    ok, message = FilesHook("files_unavailable").test_connection()
    assert ok is False and "503" in message
    assert [e["route"] for e in strict_emulator.request_log()] == ["list_files"]


def test_airflow_connections_test_works(files_connection: FilesConnection, emulator: EmulatorHandle) -> None:
    files_connection(emulator, conn_id="files_cli_test")
    port = _dead_port()
    files_connection(f"http://127.0.0.1:{port}/v1", conn_id="files_cli_dead", password=KEY)
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}

    def run(conn_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AIRFLOW), "connections", "test", conn_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    good = run("files_cli_test")
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert "Connection success!" in good.stdout
    bad = run("files_cli_dead")
    assert bad.returncode == 1
    assert f"http://127.0.0.1:{port}/v1" in bad.stdout and KEY not in bad.stdout + bad.stderr


@pytest.mark.parametrize(
    ("host", "port", "shown"),
    [
        ("https://api.example.com/v1", None, "https://api.example.com/v1"),
        ("api.example.com/v1", 8443, "https://api.example.com:8443/v1"),
        ("http://127.0.0.1:9000/v1", 0, "http://127.0.0.1:9000/v1"),
    ],
)
def test_the_message_shows_the_base_url_with_its_port(
    host: str, port: int | None, shown: str, files_connection: FilesConnection
) -> None:
    files_connection.define(
        "files_shown",
        {"host": host, "port": port, "password": KEY, "extra": {"gateway": "custom", "timeout_s": 0}},
    )
    ok, message = FilesHook("files_shown").test_connection()  # timeout_s 0 is refused before any request
    assert ok is False
    assert f"connection 'files_shown' ({shown})" in message and "timeout_s" in message
