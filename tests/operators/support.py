"""Helpers of the operator tests (imported by the tests; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_files.emulator.testing import EmulatorHandle

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

    from bench.perf.object_storage import CountingS3Server


def task_context(
    task_id: str = "upload", *, dag_id: str = "dag", run_id: str = "manual__1", map_index: int = -1
) -> Context:
    """The part of an Airflow task context the operators read (the task instance's key)."""
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index, try_number=1)
    return cast("Context", {"ti": ti, "run_id": run_id})


def run_task(operator: BaseOperator, context: Context | None = None) -> Any:
    """``operator.execute`` with a task context (default: ``task_context(operator.task_id)``)."""
    return operator.execute(context if context is not None else task_context())


def downloaded_content(files: list[dict[str, Any]], folder: Path) -> bytes:
    """The content of ``files`` (file dicts an upload returned) downloaded through the API and
    joined in order, as the shards of a split must give back their source."""
    from airflow_provider_files.hooks.files import FilesHook

    hook = FilesHook()
    joined = b""
    for index, file in enumerate(files):
        target = folder / f"shard{index}"
        hook.download_file(file["id"], target)
        joined += target.read_bytes()
    return joined


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def upload_requests(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    """API requests that send data to /files or /uploads (the introspection routes excluded)."""
    return [
        entry
        for entry in emulator.request_log()
        if entry["method"] == "POST" and ("/files" in entry["path"] or "/uploads" in entry["path"])
    ]


@dataclass
class S3Bucket:
    """A bucket on the tests' local S3 server: ``put`` an object, read what the server sent.

    :param server: the server (its ``bytes_sent`` counts the body bytes of every GET).
    :param fs: an s3fs filesystem on it.
    :param name: the bucket.
    """

    server: CountingS3Server
    fs: Any
    name: str

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` at ``key``; returns its ``s3://`` URL."""
        self.fs.pipe_file(f"{self.name}/{key}", data)
        return f"s3://{self.name}/{key}"
