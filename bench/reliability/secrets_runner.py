"""Prints the reprs and exception texts the secrets scenario searches (run with its environment).

``python -m bench.reliability.secrets_runner`` builds the hook, settings, client and operators of
the secrets DAG's connections, provokes the errors a user would see (wrong key, a rejected
purpose, http:// to a remote host), and prints ``repr``/``str``/traceback of each.
"""

from __future__ import annotations

import os
import sys
import traceback


def _show(label: str, value: object) -> None:
    print(f"--- {label}: {value!r}")
    print(f"--- {label} (str): {value}")


def _error(label: str, call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        _show(label, exc)
        print(traceback.format_exc())
    else:
        print(f"--- {label}: no error")


def main() -> int:
    from airflow_provider_files.api import ClientSettings, FilesClient
    from airflow_provider_files.hooks.files import AsyncFilesHook, FilesHook
    from airflow_provider_files.operators.files import ChunkedUploadOperator, UploadJsonlOperator
    from airflow_provider_files.triggers.files import UploadCompleteTrigger
    from bench.reliability.secrets import SECRET_CONN_ID, WRONG_KEY_CONN_ID

    source = os.environ["RELIABILITY_JSONL"]
    hook = FilesHook(SECRET_CONN_ID)
    _show("hook", hook)
    _show("settings", hook.settings)
    _show("client", hook.client)
    _show("async hook", AsyncFilesHook(SECRET_CONN_ID))
    _show("test_connection", hook.test_connection())
    _show("operator", UploadJsonlOperator(task_id="t", source=source, files_conn_id=SECRET_CONN_ID))
    _show("chunked operator", ChunkedUploadOperator(task_id="c", source=source, purpose="batch"))
    _show("trigger", UploadCompleteTrigger(["file-x"], SECRET_CONN_ID, deadline=0).serialize())

    wrong = FilesHook(WRONG_KEY_CONN_ID)
    _show("wrong-key test_connection", wrong.test_connection())
    _error("wrong key, POST /files", lambda: wrong.upload_file(source, "batch"))
    _error(
        "wrong key, POST /uploads", lambda: wrong.create_upload("x.jsonl", "batch", 10, "application/jsonl")
    )
    _error("rejected purpose", lambda: hook.upload_file(source, "not-a-purpose"))
    _error("unknown file", lambda: hook.get_file("file-does-not-exist"))
    settings = hook.settings
    remote = ClientSettings(
        api_key=settings.api_key, base_url="http://files.example.com/v1", headers=dict(settings.headers)
    )
    _show("remote settings", remote)
    _error("http to a remote host", lambda: FilesClient(remote))
    dead = ClientSettings(
        api_key=settings.api_key,
        base_url="http://127.0.0.1:9/v1",
        headers=dict(settings.headers),
        portkey_virtual_key=settings.portkey_virtual_key,
        max_retries=0,
    )
    _error("connection refused", lambda: FilesClient(dead).list_files())
    return 0


if __name__ == "__main__":
    sys.exit(main())
