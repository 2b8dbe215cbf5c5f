"""The real Portkey gateway (self-hosted, 1.15.2 with its lockfile's hono versions) in front of
the emulator: every Files, Uploads and Batches operation through our hook, the CLI, an example
DAG and the official SDK, with the documented connection."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import openai
import pytest

from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from tests.support import FilesConnection

from .exercise import (
    BATCHES_OPERATIONS,
    FILES_OPERATIONS,
    UPLOADS_OPERATIONS,
    Recorder,
    hook_batches,
    hook_files,
    hook_uploads,
    sdk_operations,
)
from .support import (
    DOC_GATEWAY_URL,
    DOC_UPSTREAM_URL,
    UPSTREAM_KEY,
    GatewayProcess,
    InteropTable,
    doc_block,
    md5_of,
    portkey_self_hosted_connection,
    run_upload_cli,
    upload_through_example_dag,
    xcom_of,
)

pytestmark = pytest.mark.timeout(240)

CONN_ID = "portkey_self_hosted"
EVERY_OPERATION = (*FILES_OPERATIONS, *UPLOADS_OPERATIONS, *BATCHES_OPERATIONS)


@pytest.fixture
def hook(portkey: GatewayProcess, upstream: EmulatorHandle, files_connection: FilesConnection) -> FilesHook:
    files_connection.define(
        CONN_ID, portkey_self_hosted_connection(portkey.base_url, upstream.base_url, UPSTREAM_KEY)
    )
    return FilesHook(CONN_ID)


def test_the_documented_connection_is_the_one_run() -> None:
    documented = json.loads(doc_block("portkey-self-hosted"))
    assert documented["extra"] == {
        "gateway": "portkey",
        "portkey_provider": "openai",
        "portkey_custom_host": DOC_UPSTREAM_URL,
    }
    assert documented["host"] == DOC_GATEWAY_URL
    assert portkey_self_hosted_connection("http://gw/v1", "http://up/v1", "k") == {
        **documented,
        "host": "http://gw/v1",
        "password": "k",
        "extra": {**documented["extra"], "portkey_custom_host": "http://up/v1"},
    }


def test_hook_every_operation(
    hook: FilesHook, upstream: EmulatorHandle, source: Path, tmp_path: Path, interop_table: InteropTable
) -> None:
    rec = Recorder(interop_table, "portkey", "ours (hook)")
    kept = hook_files(rec, hook, upstream, source, tmp_path)
    hook_uploads(rec, hook, upstream, source)
    hook_batches(rec, hook, kept)
    hook.close()
    assert rec.statuses == dict.fromkeys(EVERY_OPERATION, "ok")
    # what reached the upstream came through the gateway, with the key where the gateway puts it
    log = upstream.request_log()
    assert {e["route"] for e in log} >= {"create_file", "create_upload", "add_part", "complete_upload"}
    assert all(e["status"] < 400 for e in log), [e for e in log if e["status"] >= 400]
    assert all("authorization" in e["headers"] for e in log)


def test_chunked_engine_many_parts(hook: FilesHook, upstream: EmulatorHandle, tmp_path: Path) -> None:
    from airflow_provider_files.uploads import ChunkedUploader

    source = write_sample_requests(tmp_path / "big.jsonl", 3000)
    result = ChunkedUploader(hook.client, part_size_bytes=64 * 1024, concurrency=4).upload(
        source, purpose="batch"
    )
    hook.close()
    assert result.parts_sent >= 4
    assert upstream.file_md5(result.file.id) == md5_of(source.read_bytes())


def test_cli_as_documented_and_through_a_connection(
    portkey: GatewayProcess, upstream: EmulatorHandle, files_connection: FilesConnection, source: Path
) -> None:
    text = doc_block("portkey-cli").replace("\\\n", " ")
    words = shlex.split(text)
    env_word, command = words[0], words[1:]
    assert env_word.startswith("OPENAI_API_KEY=") and command[:2] == ["airflow-files", "upload"]
    args = [
        a.replace(DOC_GATEWAY_URL, portkey.base_url).replace(DOC_UPSTREAM_URL, upstream.base_url)
        for a in command[2:]
    ]
    args = [str(source) if a == "requests.jsonl" else a for a in args]
    chunked = run_upload_cli(
        *args, "--chunked", "--part-size", "64KiB", "--quiet", env={"OPENAI_API_KEY": UPSTREAM_KEY}
    )
    assert chunked.returncode == 0, chunked.stderr[-2000:]
    uploaded = json.loads(chunked.stdout)
    assert upstream.file_md5(uploaded["id"]) == md5_of(source.read_bytes())
    assert sum(1 for e in upstream.request_log() if e["route"] == "add_part") >= 2
    assert UPSTREAM_KEY not in chunked.stderr

    files_connection.define(
        CONN_ID, portkey_self_hosted_connection(portkey.base_url, upstream.base_url, UPSTREAM_KEY)
    )
    single = run_upload_cli(str(source), "--purpose", "batch", "--files-conn-id", CONN_ID, "--single-request")
    assert single.returncode == 0, single.stderr[-2000:]
    assert upstream.file_md5(json.loads(single.stdout)["id"]) == md5_of(source.read_bytes())


def test_the_gateways_400_without_a_provider_is_caught_before_sending(
    portkey: GatewayProcess, upstream: EmulatorHandle, source: Path
) -> None:
    import httpx

    answer = httpx.get(portkey.base_url + "/files", headers={"Authorization": f"Bearer {UPSTREAM_KEY}"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "Either x-portkey-config or x-portkey-provider header is required"
    result = run_upload_cli(
        str(source),
        "--purpose",
        "batch",
        "--base-url",
        portkey.base_url,
        "--gateway",
        "portkey",
        "--single-request",
        env={"OPENAI_API_KEY": UPSTREAM_KEY},
    )
    assert result.returncode == 2
    assert "needs portkey_provider" in result.stderr
    assert upstream.request_log() == []


def test_example_dag_through_portkey(
    portkey: GatewayProcess,
    upstream: EmulatorHandle,
    files_connection: FilesConnection,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    files_connection.define(
        "openai_files_default",
        portkey_self_hosted_connection(portkey.base_url, upstream.base_url, UPSTREAM_KEY),
    )
    dag_run = upload_through_example_dag(upstream, monkeypatch, tmp_path)
    assert xcom_of(dag_run, "wait_until_processed")["status"] == "processed"


def test_openai_sdk_through_the_same_gateway(
    portkey: GatewayProcess, upstream: EmulatorHandle, source: Path, interop_table: InteropTable
) -> None:
    client = openai.OpenAI(
        base_url=portkey.base_url,
        api_key=UPSTREAM_KEY,
        max_retries=0,
        default_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.base_url},
    )
    rec = Recorder(interop_table, "portkey", "openai SDK")
    sdk_operations(rec, client, upstream, source, uploads=True)
    client.close()
    # The SDK sends ``Content-Type: application/json`` with an empty body on uploads.cancel, and the
    # gateway fails parsing it ("Proxy error: Unexpected end of JSON input"); ours sends no body type.
    assert rec.statuses == {
        **dict.fromkeys(EVERY_OPERATION, "ok"),
        "uploads.cancel": "500 InternalServerError",
    }, rec.statuses
