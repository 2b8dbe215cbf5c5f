"""The operations run through each gateway, by our hook and by the official ``openai`` SDK.

Every step is recorded in the operation x gateway table with what the client got (``ok``, or
the HTTP status / error class); the tests then assert the statuses they expect.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import openai

from airflow_provider_files.api import FilesApiError, UploadPart
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook

from .support import InteropTable, md5_of

T = TypeVar("T")

FILES_OPERATIONS = ("files.create", "files.list", "files.retrieve", "files.content", "files.delete")
UPLOADS_OPERATIONS = ("uploads.create", "uploads.add_part", "uploads.complete", "uploads.cancel")
BATCHES_OPERATIONS = ("batches.create", "batches.retrieve", "batches.list", "batches.cancel")
BATCH_ENDPOINT: Final = "/v1/chat/completions"


class Recorder:
    """Runs steps of one client through one gateway and records each outcome."""

    def __init__(self, table: InteropTable, gateway: str, client: str) -> None:
        self.table, self.gateway, self.client = table, gateway, client
        self.statuses: dict[str, str] = {}

    def step(self, operation: str, call: Callable[[], T]) -> T | None:
        try:
            result = call()
        except (FilesApiError, openai.APIError) as exc:
            status = getattr(exc, "status_code", None)
            self._record(operation, f"{status} {type(exc).__name__}" if status else type(exc).__name__)
            return None
        self._record(operation, "ok")
        return result

    def _record(self, operation: str, status: str) -> None:
        self.statuses[operation] = status
        self.table.record(self.gateway, self.client, operation, status)


def hook_files(rec: Recorder, hook: FilesHook, upstream: EmulatorHandle, source: Path, tmp_path: Path) -> str:
    """The five Files operations through the hook; returns the id of a file left in place."""
    data = source.read_bytes()
    created = rec.step("files.create", lambda: hook.upload_file(source, "batch", filename=source.name))
    assert created is not None, rec.statuses
    assert upstream.file_md5(created.id) == md5_of(data)
    listed = rec.step("files.list", lambda: hook.list_files("batch"))
    assert listed is not None and created.id in [f.id for f in listed]
    got = rec.step("files.retrieve", lambda: hook.get_file(created.id))
    assert got is not None and got.bytes == len(data)
    copy = tmp_path / f"{rec.gateway}-copy.jsonl"
    rec.step("files.content", lambda: hook.download_file(created.id, copy))
    assert copy.read_bytes() == data
    kept = hook.upload_file(source, "batch", filename="kept.jsonl")
    deleted = rec.step("files.delete", lambda: hook.delete_file(created.id))
    assert deleted is not None and deleted.deleted
    return kept.id


def hook_uploads(rec: Recorder, hook: FilesHook, upstream: EmulatorHandle, source: Path) -> None:
    """The four Uploads operations through the hook, parts in file order, md5 sent."""
    data = source.read_bytes()
    half = len(data) // 2
    upload = rec.step(
        "uploads.create", lambda: hook.create_upload(source.name, "batch", len(data), "text/jsonl")
    )
    assert upload is not None, rec.statuses
    parts = []
    for chunk in (data[:half], data[half:]):

        def add(chunk: bytes = chunk) -> UploadPart:
            return hook.add_upload_part(upload.id, chunk)

        parts.append(rec.step("uploads.add_part", add))
    assert all(parts), rec.statuses
    done = rec.step(
        "uploads.complete",
        lambda: hook.complete_upload(upload.id, [p.id for p in parts if p], md5=md5_of(data)),
    )
    assert done is not None and done.file is not None and done.status == "completed"
    assert upstream.file_md5(done.file.id) == md5_of(data)
    other = hook.create_upload("cancelled.jsonl", "batch", len(data), "text/jsonl")
    cancelled = rec.step("uploads.cancel", lambda: hook.cancel_upload(other.id))
    assert cancelled is not None and cancelled.status == "cancelled"


def hook_batches(rec: Recorder, hook: FilesHook, input_file_id: str) -> None:
    """The four Batches operations through the hook."""
    batch = rec.step("batches.create", lambda: hook.create_batch(input_file_id, BATCH_ENDPOINT))
    if batch is None:
        return
    rec.step("batches.retrieve", lambda: hook.get_batch(batch.id))
    rec.step("batches.list", lambda: hook.list_batches(limit=10))
    rec.step("batches.cancel", lambda: hook.cancel_batch(batch.id))


def sdk_operations(
    rec: Recorder, client: openai.OpenAI, upstream: EmulatorHandle, source: Path, uploads: bool
) -> None:
    """Every operation with the official SDK through the same gateway (what a user's script gets)."""
    data = source.read_bytes()
    created = rec.step("files.create", lambda: client.files.create(file=(source.name, data), purpose="batch"))
    if created is not None:
        assert upstream.file_md5(created.id) == md5_of(data)
        rec.step("files.list", lambda: client.files.list(purpose="batch"))
        rec.step("files.retrieve", lambda: client.files.retrieve(created.id))
        content = rec.step("files.content", lambda: client.files.content(created.id).read())
        assert content in (None, data)
        batch = rec.step(
            "batches.create",
            lambda: client.batches.create(
                input_file_id=created.id, endpoint=BATCH_ENDPOINT, completion_window="24h"
            ),
        )
        if batch is not None:
            rec.step("batches.retrieve", lambda: client.batches.retrieve(batch.id))
            rec.step("batches.list", lambda: client.batches.list(limit=10))
            rec.step("batches.cancel", lambda: client.batches.cancel(batch.id))
        rec.step("files.delete", lambda: client.files.delete(created.id))
    if not uploads:
        return
    upload = rec.step(
        "uploads.create",
        lambda: client.uploads.create(
            filename=source.name, purpose="batch", bytes=len(data), mime_type="text/jsonl"
        ),
    )
    if upload is None:
        return
    part = rec.step(
        "uploads.add_part", lambda: client.uploads.parts.create(upload_id=upload.id, data=io.BytesIO(data))
    )
    if part is not None:
        done = rec.step(
            "uploads.complete", lambda: client.uploads.complete(upload_id=upload.id, part_ids=[part.id])
        )
        if done is not None and done.file is not None:
            assert upstream.file_md5(done.file.id) == md5_of(data)
    other = client.uploads.create(filename="c.jsonl", purpose="batch", bytes=1, mime_type="text/jsonl")
    rec.step("uploads.cancel", lambda: client.uploads.cancel(other.id))


def summary(statuses: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in statuses.items())
