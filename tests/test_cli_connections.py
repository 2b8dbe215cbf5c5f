"""``airflow-files upload --conn-id X`` with ``AIRFLOW_CONN_X`` set reads it without Airflow, exactly
as Airflow reads it; Airflow is imported only when the variable is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from airflow.sdk import Connection

from airflow_provider_files.api import ClientSettings, ConfigurationError
from airflow_provider_files.api.connections import connection_from_env, settings_from_connection
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from tests.support import FilesConnection, chat_requests, connection_variable

pytestmark = pytest.mark.timeout(120)

KEY = "sk-parity-key/+@:5150"
EXTRA_JSON = quote(json.dumps({"gateway": "portkey", "portkey_provider": "openai", "timeout_s": 9}))
URIS: list[str | dict[str, Any]] = [
    f"openai-files://:{quote(KEY, safe='')}@api.example.test/v1?gateway=custom&timeout_s=5&max_retries=3"
    "&verify_ssl=false&allow_insecure_http=true&headers=%7B%22X-A%22%3A%20%221%22%7D",
    f"openai-files://:{quote(KEY, safe='')}@https%3A%2F%2Fproxy.example.test%2Fllm%2Fv1",
    f"openai-files://http://:{quote(KEY, safe='')}@127.0.0.1:8000/v1?allow_insecure_http=true",
    "openai_files://me:p%40ss%2Fword@API.Example.test:8443/v1",
    f"openai-files://:sk-x@gw.example.test/v1?__extra__={EXTRA_JSON}",
    "openai-files://:sk-x@[::1]:8080/v1?allow_insecure_http=true",
    "openai-files://:sk-x@gw.example.test",
    "openai-files://:sk-x@gw.example.test/https",
    "openai-files://:sk-x@gw.example.test/v1?gateway=nope",
    "openai-files://:sk-x@gw.example.test/v1?timeout_s=",
]
JSONS: list[str | dict[str, Any]] = [
    {"host": "http://127.0.0.1:8000/v1", "password": KEY, "extra": {"allow_insecure_http": True}},
    {"host": "gw.example.test", "port": "8443", "schema": "v1", "password": KEY, "extra": '{"timeout_s": 7}'},
    {"host": "https://api.openai.com/v1", "login": "me", "password": " sk-padded \n", "extra": {}},
    {
        "host": "https://gw.example.test/v1",
        "password": KEY,
        "extra": {"headers": {"X-N": 7}, "max_retries": 0},
    },
    {"host": "https://gw.example.test/v1", "password": KEY, "extra": {"verify_ssl": "maybe"}},
]


def settings_or_error(read: Any) -> ClientSettings | str:
    try:
        settings: ClientSettings = read()
    except ConfigurationError as exc:
        return f"error: {exc}"
    return settings


@pytest.mark.parametrize(
    "value", URIS + JSONS, ids=[f"uri{i}" for i in range(len(URIS))] + [f"json{i}" for i in range(len(JSONS))]
)
def test_ours_reads_the_variable_as_airflow_does(
    files_connection: FilesConnection, value: str | dict[str, Any]
) -> None:
    conn_id = files_connection.define("parity", value)
    text = os.environ[connection_variable(conn_id)]
    ours = connection_from_env(conn_id)
    assert ours is not None
    theirs = (
        Connection.from_json(text, conn_id=conn_id)
        if text.startswith("{")
        else Connection.from_uri(text, conn_id=conn_id)
    )

    assert (ours.conn_type, ours.host, ours.schema, ours.login, ours.password, ours.port) == (
        theirs.conn_type, theirs.host, theirs.schema, theirs.login, theirs.password, theirs.port,
    )  # fmt: skip
    assert dict(ours.extra_dejson) == theirs.extra_dejson
    through_airflow = settings_or_error(lambda: FilesHook(conn_id).settings)
    assert settings_or_error(lambda: settings_from_connection(ours)) == through_airflow


def test_the_repr_shows_no_key(files_connection: FilesConnection) -> None:
    conn_id = files_connection.define("shown", {"host": "https://gw.example.test/v1", "password": KEY})
    assert KEY not in repr(connection_from_env(conn_id))


@pytest.mark.parametrize("uri", [f"openai-files://:{KEY}@a://b://c", f"openai-files://:{KEY}@[::1/v1"])
def test_a_bad_variable_is_named_without_its_value(files_connection: FilesConnection, uri: str) -> None:
    conn_id = files_connection.define("broken", uri)
    with pytest.raises(ConfigurationError, match="AIRFLOW_CONN_BROKEN") as raised:
        connection_from_env(conn_id)
    assert KEY not in str(raised.value)


# -- in a process of its own ---------------------------------------------------------------------

CHECK = """
import json, sys, time
started = time.time()
from airflow_provider_files.cli import main
status = main(sys.argv[2:])
airflow = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
with open(sys.argv[1], "w") as report:
    json.dump({"status": status, "airflow_modules": len(airflow)}, report)
"""


def run_upload(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """``airflow-files upload ARGS`` in a fresh interpreter: its report, and when it started."""
    report = tmp_path / "report.json"
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(report), "upload", *args, "--quiet"],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert report.exists(), result.stderr
    return {**json.loads(report.read_text()), "stderr": result.stderr}, started


@pytest.fixture
def small_batch(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(chat_requests(100))
    return path


def uri_of(emulator: EmulatorHandle) -> str:
    url = urlsplit(emulator.base_url)
    return f"openai-files://{url.scheme}://:{emulator.api_key}@{url.netloc}{url.path}"


@pytest.mark.parametrize("form", ["json", "uri"])
def test_conn_id_from_the_environment_does_not_import_airflow(
    emulator: EmulatorHandle, files_connection: FilesConnection, small_batch: Path, tmp_path: Path, form: str
) -> None:
    if form == "json":
        files_connection(emulator, conn_id="fast_conn")
    else:
        files_connection.define("fast_conn", uri_of(emulator))

    report, _ = run_upload(tmp_path, str(small_batch), "--purpose", "batch", "--conn-id", "fast_conn")

    assert report["status"] == 0, report["stderr"]
    assert report["airflow_modules"] == 0
    assert [entry["route"] for entry in emulator.request_log()] == ["create_file"]


def test_without_the_variable_airflow_is_asked(
    files_connection: FilesConnection, small_batch: Path, tmp_path: Path
) -> None:
    conn_id = files_connection.remove("nowhere_conn")

    report, _ = run_upload(tmp_path, str(small_batch), "--purpose", "batch", "--conn-id", conn_id)

    assert report["status"] == 2
    assert report["airflow_modules"] > 0
    assert "AIRFLOW_CONN_NOWHERE_CONN" in report["stderr"]


def test_conn_id_starts_within_1_5x_of_base_url(
    emulator: EmulatorHandle, files_connection: FilesConnection, small_batch: Path, tmp_path: Path
) -> None:
    """Start to first request, best of three each (the machine is shared: the best run is the one
    least disturbed)."""
    files_connection(emulator, conn_id="timed_conn")
    common = (str(small_batch), "--purpose", "batch")
    variants = {
        "--conn-id": ((*common, "--conn-id", "timed_conn"), None),
        "--base-url": ((*common, "--base-url", emulator.base_url), {"OPENAI_API_KEY": emulator.api_key}),
    }
    best: dict[str, float] = {}
    for _ in range(3):
        for name, (args, env) in variants.items():
            emulator.reset()
            report, started = run_upload(tmp_path, *args, env=env)
            assert report["status"] == 0, report["stderr"]
            first_request = min(entry["time"] for entry in emulator.request_log())
            best[name] = min(best.get(name, float("inf")), first_request - started)
    print(
        "\nstart to first request (best of 3): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in best.items())
    )
    assert best["--conn-id"] <= 1.5 * best["--base-url"], best
