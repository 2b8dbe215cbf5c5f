"""The hook registers every credential with Airflow's secrets masker and leaks none over real HTTP."""

from __future__ import annotations

import logging
import traceback

import pytest
from airflow.sdk._shared.secrets_masker.secrets_masker import _secrets_masker

from airflow_provider_files.api import AuthenticationError
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import AsyncFilesHook, FilesHook
from tests.support import FilesConnection

KEY = "sk-hook-MASKCHECK-90210abc"
VIRTUAL_KEY = "vk-hook-MASKCHECK-5551212"
CONFIG = "pc-hook-MASKCHECK-cfg"
HEADER_SECRET = "hdr-hook-MASKCHECK-4242"


SECRET_EXTRA = {
    "gateway": "portkey",
    "portkey_virtual_key": VIRTUAL_KEY,
    "portkey_config": CONFIG,
    "headers": {"X-Api-Token": HEADER_SECRET, "X-Team": "data-eng"},
    "max_retries": 0,
}


def test_hook_registers_credentials_with_the_secrets_masker(files_connection: FilesConnection) -> None:
    files_connection("https://api.portkey.ai/v1", conn_id="files_masked", password=KEY, **SECRET_EXTRA)
    masker = _secrets_masker()
    line = f"key={KEY} vk={VIRTUAL_KEY} cfg={CONFIG} hdr={HEADER_SECRET} team=data-eng"
    assert masker.redact(line) == line  # nothing registered yet
    hook = FilesHook("files_masked")
    _ = hook.settings
    redacted = masker.redact(line)
    for secret in (KEY, VIRTUAL_KEY, CONFIG, HEADER_SECRET):
        assert secret not in redacted
    assert "team=data-eng" in redacted
    assert_reprs_clean(hook)


@pytest.mark.asyncio
async def test_async_hook_registers_credentials(files_connection: FilesConnection) -> None:
    key = "sk-async-MASKCHECK-777000"
    files_connection("https://api.portkey.ai/v1", conn_id="files_async_masked", password=key, **SECRET_EXTRA)
    assert key in _secrets_masker().redact(f"k={key}")
    await AsyncFilesHook("files_async_masked").get_settings()
    assert key not in _secrets_masker().redact(f"k={key}")


def assert_reprs_clean(hook: FilesHook) -> None:
    for text in (
        repr(hook),
        str(hook),
        repr(hook.settings),
        repr(hook.client),
        str(vars(hook.client).get("settings")),
    ):
        for secret in (KEY, VIRTUAL_KEY, CONFIG, HEADER_SECRET):
            assert secret not in text


def test_auth_failure_over_http_leaks_nothing(
    strict_emulator: EmulatorHandle, files_connection: FilesConnection, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk-wrong-LEAKCHECK-hook-24680"
    files_connection(strict_emulator, conn_id="files_leak", password=wrong_key, **SECRET_EXTRA)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "airflow_provider_files"):
        caplog.set_level(logging.DEBUG, logger=name)
    hook = FilesHook("files_leak")
    with pytest.raises(AuthenticationError) as caught:
        hook.list_files()
    ok, message = hook.test_connection()
    hook.close()
    assert ok is False
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log at DEBUG/INFO
    error = caught.value
    texts = [message, str(error), repr(error), "".join(traceback.format_exception(error))]
    texts += [str(v) for v in vars(error).values()]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args)]
    for text in texts:
        for secret in (wrong_key, VIRTUAL_KEY, CONFIG, HEADER_SECRET):
            assert secret not in text, text[:300]
    assert "files_leak" in str(error)
