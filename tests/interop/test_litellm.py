"""The real LiteLLM proxy (1.108.7) in front of the emulator, configured as docs/gateways.md says:
the five Files operations and the Batches API through our hook, the CLI, an example DAG and the
official SDK; our refusal of the Uploads API (nothing sent); the ``/openai`` pass-through."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from airflow_provider_files.api.errors import UnsupportedOperationError
from airflow_provider_files.demo import write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from tests.support import FilesConnection

from .exercise import BATCHES_OPERATIONS, FILES_OPERATIONS, Recorder, hook_batches, hook_files, sdk_operations
from .support import (
    LITELLM_MASTER_KEY,
    GatewayProcess,
    InteropTable,
    doc_block,
    litellm_connection,
    md5_of,
    run_upload_cli,
    upload_through_example_dag,
)

pytestmark = pytest.mark.timeout(300)

CONN_ID = "litellm_proxy"


@pytest.fixture
def hook(litellm: GatewayProcess, upstream: EmulatorHandle, files_connection: FilesConnection) -> FilesHook:
    files_connection.define(CONN_ID, litellm_connection(litellm.base_url))
    return FilesHook(CONN_ID)


def test_the_documented_config_is_the_one_run(litellm: GatewayProcess) -> None:
    config = doc_block("litellm-config")
    assert (
        "files_settings:" in config
        and "model_list:" in config
        and "api_base: os.environ/OPENAI_API_BASE" in config
    )
    assert (Path(litellm.log_path).parent / "litellm-config.yaml").read_text() == config


def test_hook_files_and_batches(
    hook: FilesHook, upstream: EmulatorHandle, source: Path, tmp_path: Path, interop_table: InteropTable
) -> None:
    rec = Recorder(interop_table, "litellm", "ours (hook)")
    kept = hook_files(rec, hook, upstream, source, tmp_path)
    hook_batches(rec, hook, kept)
    hook.close()
    assert rec.statuses == dict.fromkeys((*FILES_OPERATIONS, *BATCHES_OPERATIONS), "ok"), rec.statuses


def test_uploads_are_refused_with_nothing_sent(
    hook: FilesHook, litellm: GatewayProcess, upstream: EmulatorHandle, interop_table: InteropTable
) -> None:
    log_before = litellm.log_text()
    with pytest.raises(UnsupportedOperationError, match="single request"):
        hook.create_upload("a.jsonl", "batch", 10, "text/jsonl")
    hook.close()
    for operation in ("uploads.create", "uploads.add_part", "uploads.complete", "uploads.cancel"):
        interop_table.record("litellm", "ours (hook)", operation, "refused, 0 requests")
    assert upstream.request_log() == []
    assert "/uploads" not in litellm.log_text()[len(log_before) :]


def test_cli_single_request_and_the_refusal_naming_it(
    litellm: GatewayProcess, upstream: EmulatorHandle, source: Path
) -> None:
    args = [str(source), "--purpose", "batch", "--base-url", litellm.base_url, "--gateway", "litellm"]
    args += ["--api-key-env", "LITELLM_KEY"]
    env = {"LITELLM_KEY": LITELLM_MASTER_KEY}
    refused = run_upload_cli(*args, "--chunked", env=env)
    assert refused.returncode == 2
    assert "--single-request" in refused.stderr
    assert upstream.request_log() == []
    single = run_upload_cli(*args, "--single-request", env=env)
    assert single.returncode == 0, single.stderr[-2000:]
    assert upstream.file_md5(json.loads(single.stdout)["id"]) == md5_of(source.read_bytes())
    assert LITELLM_MASTER_KEY not in single.stderr + refused.stderr


def test_example_dag_through_litellm(
    litellm: GatewayProcess,
    upstream: EmulatorHandle,
    files_connection: FilesConnection,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    files_connection.define("openai_files_default", litellm_connection(litellm.base_url))
    upload_through_example_dag(upstream, monkeypatch, tmp_path)


def test_openai_pass_through_carries_the_uploads_api(
    litellm: GatewayProcess, upstream: EmulatorHandle, files_connection: FilesConnection, tmp_path: Path
) -> None:
    from airflow_provider_files.uploads import ChunkedUploader

    files_connection.define(
        "litellm_pass_through",
        {
            "host": litellm.root_url + "/openai",
            "password": LITELLM_MASTER_KEY,
            "extra": {"gateway": "custom"},
        },
    )
    hook = FilesHook("litellm_pass_through")
    source = write_sample_requests(tmp_path / "big.jsonl", 2000)
    result = ChunkedUploader(hook.client, part_size_bytes=64 * 1024, concurrency=2).upload(
        source, purpose="batch"
    )
    hook.close()
    assert result.parts_sent >= 2
    assert upstream.file_md5(result.file.id) == md5_of(source.read_bytes())


def test_openai_sdk_through_the_same_proxy(
    litellm: GatewayProcess, upstream: EmulatorHandle, source: Path, interop_table: InteropTable
) -> None:
    client = openai.OpenAI(base_url=litellm.base_url, api_key=LITELLM_MASTER_KEY, max_retries=0)
    rec = Recorder(interop_table, "litellm", "openai SDK")
    sdk_operations(rec, client, upstream, source, uploads=True)
    client.close()
    print(rec.statuses)
    assert {k: v for k, v in rec.statuses.items() if not k.startswith("uploads.")} == dict.fromkeys(
        (*FILES_OPERATIONS, *BATCHES_OPERATIONS), "ok"
    ), rec.statuses
    assert rec.statuses["uploads.create"] == "404 NotFoundError"
