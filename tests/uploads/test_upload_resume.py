"""Checkpoints: resume sends only the missing parts; a finished upload is reused; stale ones start over."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_files.api import FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.uploads import (
    CheckpointError,
    ChunkedUploader,
    JsonFileCheckpointStore,
    UploadCancelledError,
    UploadProgress,
)

from .support import md5_file, requests_to

pytestmark = pytest.mark.timeout(60)

PART = 256 * 1024
SIZE = 12 * PART + 1000  # 13 parts


def upload_partly(client: FilesClient, path: Path, store: JsonFileCheckpointStore, parts: int) -> str:
    """Upload until ``parts`` parts are acknowledged, then stop as a cancelled task would; returns the upload id."""
    uploader = ChunkedUploader(
        client, part_size_bytes=PART, concurrency=1, checkpoint=store, progress_interval_s=0
    )

    def stop_after(progress: UploadProgress) -> None:
        if progress.parts_done >= parts:
            uploader.request_cancel()

    uploader.progress = stop_after
    with pytest.raises(UploadCancelledError):
        uploader.upload(path, purpose="batch")
    state = store.load()
    assert state is not None and state["file"] is None
    return str(state["upload_id"])


def test_resume_sends_only_the_missing_parts(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "upload.ckpt.json")
    upload_id = upload_partly(client, path, store, parts=4)
    acknowledged = len(store.load()["parts"])  # type: ignore[index]
    assert 4 <= acknowledged < 13
    assert emulator.stats()["uploads"][upload_id]["status"] == "pending"
    log_start = len(emulator.request_log())

    result = ChunkedUploader(client, part_size_bytes=PART, concurrency=4, checkpoint=store).upload(
        path, purpose="batch"
    )

    sent = requests_to(emulator, "add_part", since=log_start)
    assert len(sent) == 13 - acknowledged
    assert all(upload_id in entry["path"] for entry in sent)
    assert requests_to(emulator, "create_upload", since=log_start) == []
    assert result.resumed and result.upload_id == upload_id
    assert (result.parts_sent, result.parts_reused) == (13 - acknowledged, acknowledged)
    assert emulator.file_md5(result.file.id) == md5_file(path)
    saved = store.load()
    assert saved is not None and saved["file"]["id"] == result.file.id and saved["md5"] == md5_file(path)


def test_completed_checkpoint_returns_the_file_without_uploading(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    first = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
    log_start = len(emulator.request_log())

    again = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert again.reused_file and again.file.id == first.file.id
    # the file is looked up; its content is not read back: the checkpoint binds it to the md5 the
    # server verified on complete
    assert [e["route"] for e in emulator.request_log()[log_start:]] == ["retrieve_file"]
    assert emulator.stats()["file_count"] == 1


def test_deleted_file_is_uploaded_again(
    emulator: EmulatorHandle,
    client: FilesClient,
    make_file: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    first = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
    client.delete_file(first.file.id)

    again = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert not again.reused_file and again.file.id != first.file.id
    assert again.restart_reason is not None and "no longer exists" in again.restart_reason
    assert "no longer exists" in caplog.text
    assert emulator.file_md5(again.file.id) == md5_file(path)


def test_changed_source_starts_over_and_cancels_the_old_upload(
    emulator: EmulatorHandle,
    client: FilesClient,
    make_file: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    old_upload = upload_partly(client, path, store, parts=3)
    make_file(SIZE, seed=2)  # same name and size, new content
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))

    result = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert not result.resumed and result.upload_id != old_upload
    assert result.restart_reason is not None and "source changed" in result.restart_reason
    assert "source changed" in caplog.text
    assert emulator.stats()["uploads"][old_upload]["status"] == "cancelled"
    assert emulator.file_md5(result.file.id) == md5_file(path)


def test_checkpoint_past_its_expiry_starts_over(
    emulator: EmulatorHandle,
    client: FilesClient,
    make_file: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    old_upload = upload_partly(client, path, store, parts=3)
    state = store.load()
    assert state is not None
    state["expires_at"] = time.time() - 5
    store.save(state)

    result = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert result.upload_id != old_upload and not result.resumed
    assert result.restart_reason == f"upload {old_upload} has expired"
    assert "has expired" in caplog.text
    assert emulator.file_md5(result.file.id) == md5_file(path)


def test_upload_expired_on_the_server_starts_over(
    emulator_factory: Callable[..., EmulatorHandle],
    make_file: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from .support import client_for

    emulator = emulator_factory(upload_expiry_s=3)
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    with client_for(emulator) as client:
        old_upload = upload_partly(client, path, store, parts=3)
        emulator.advance_clock(10)  # the server expires it; the checkpoint still looks fresh
        state = store.load()
        assert state is not None
        state["expires_at"] = time.time() + 3600
        store.save(state)

        result = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert result.upload_id != old_upload and not result.resumed
    assert result.restart_reason is not None and "gone" in result.restart_reason
    assert "starting a new upload" in caplog.text
    assert emulator.stats()["uploads"][old_upload]["status"] == "expired"
    assert emulator.file_md5(result.file.id) == md5_file(path)


def test_resume_keeps_the_checkpoint_part_size(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    upload_id = upload_partly(client, path, store, parts=2)

    result = ChunkedUploader(client, part_size_bytes=4 * PART, checkpoint=store).upload(path, purpose="batch")

    assert result.upload_id == upload_id and result.resumed and result.parts_total == 13
    assert emulator.file_md5(result.file.id) == md5_file(path)


def test_a_file_that_is_not_a_checkpoint_is_never_overwritten(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    precious = tmp_path / "data.json"
    precious.write_text(json.dumps({"rows": [1, 2, 3]}))

    with pytest.raises(CheckpointError, match="not an upload checkpoint"):
        ChunkedUploader(client, checkpoint=JsonFileCheckpointStore(precious)).upload(path, purpose="batch")

    assert json.loads(precious.read_text()) == {"rows": [1, 2, 3]}
    assert emulator.request_log() == []


def test_checkpoint_for_another_file_name_starts_over(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    first = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    other = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(
        path, purpose="batch", filename="other.jsonl"
    )

    assert other.file.id != first.file.id and other.file.filename == "other.jsonl"
    assert other.restart_reason is not None and "other.jsonl" in other.restart_reason


def test_content_changed_behind_an_unchanged_fingerprint_is_caught_by_md5(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    old_upload = upload_partly(client, path, store, parts=3)
    stat = path.stat()
    with open(path, "r+b") as handle:  # same inode, size and mtime: only the bytes differ
        handle.write(b"X" * 100)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    result = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert result.upload_id != old_upload and not result.resumed
    assert result.restart_reason is not None and "do not match the source" in result.restart_reason
    assert emulator.stats()["uploads"][old_upload]["status"] == "cancelled"
    assert emulator.file_md5(result.file.id) == md5_file(path)
    assert emulator.stats()["file_count"] == 1
