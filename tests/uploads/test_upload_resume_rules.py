"""The resume rules of uploads/: the pure decision, the progress reporter, the single-request
checkpoint and the split manifest (including checkpoints in the format written before they moved)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.api import FilesClient
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.uploads import (
    LocalFileSource,
    MemoryCheckpointStore,
    SingleRequestUploader,
    UploadProgress,
)
from airflow_provider_files.uploads.checkpoint import CheckpointState
from airflow_provider_files.uploads.manifest import ShardSource, reuse_split, save_split, split_fingerprint
from airflow_provider_files.uploads.progress import ProgressReporter
from airflow_provider_files.uploads.resume import decide_resume, recorded_file_problem
from airflow_provider_files.uploads.reuse import recorded_file_id

from .support import requests_to

pytestmark = pytest.mark.timeout(60)

NOW = 1_800_000_000.0
BASE = "http://api.test/v1"


def checkpoint(**changes: Any) -> dict[str, Any]:
    state = CheckpointState(
        upload_id="upload_1",
        filename="a.jsonl",
        purpose="batch",
        bytes=1000,
        part_size=256,
        fingerprint="fp",
        base_url=BASE,
        expires_at=NOW + 3000,
        created_at=NOW - 600,
        parts={0: "part_0"},
    ).to_dict()
    state.update(changes)
    return state


def decide(raw: dict[str, Any] | None, **changes: Any) -> Any:
    facts: dict[str, Any] = {
        "fingerprint": "fp",
        "size": 1000,
        "filename": "a.jsonl",
        "purpose": "batch",
        "base_url": BASE,
        "max_part_size": 64 * 1024 * 1024,
        "now": NOW,
    }
    facts.update(changes)
    return decide_resume(raw, **facts)


def test_a_matching_pending_checkpoint_is_resumed() -> None:
    decision = decide(checkpoint())
    assert decision.action == "resume" and decision.state.parts == {0: "part_0"}
    assert decide(None).action == "new"
    assert decide(checkpoint(file={"id": "file-1"})).action == "reuse_file"


@pytest.mark.parametrize(
    ("raw", "facts", "reason", "cancel"),
    [
        (checkpoint(version=99), {}, "cannot be used", None),
        (checkpoint(), {"fingerprint": "other"}, "source changed", "upload_1"),
        (checkpoint(), {"purpose": "fine-tune"}, "not 'a.jsonl' with purpose 'fine-tune'", "upload_1"),
        (checkpoint(), {"base_url": "http://other/v1"}, "another API", None),
        (checkpoint(part_size=0), {}, "invalid part size", "upload_1"),
        (checkpoint(), {"now": NOW + 3000}, "has expired", None),
        (checkpoint(), {"now": NOW + 2950}, "too soon to resume", "upload_1"),
        (checkpoint(file={"id": "file-1"}), {"size": 999}, "source changed", None),
    ],
)
def test_an_unusable_checkpoint_restarts_with_its_reason(
    raw: dict[str, Any], facts: dict[str, Any], reason: str, cancel: str | None
) -> None:
    decision = decide(raw, **facts)
    assert decision.action == "restart" and decision.state is None
    assert reason in decision.reason
    assert decision.cancel_upload_id == cancel


def test_a_recorded_file_is_reused_only_while_it_exists_with_the_same_size() -> None:
    file = FileObject.from_dict(
        {"id": "file-1", "object": "file", "bytes": 1000, "filename": "a", "purpose": "batch"}
    )
    assert recorded_file_problem("file-1", file, 1000) is None
    assert "no longer exists" in (recorded_file_problem("file-1", None, 1000) or "")
    assert "has 1000 bytes, not 999" in (recorded_file_problem("file-1", file, 999) or "")


def test_a_finished_checkpoint_names_its_file_only_for_its_own_source_and_api() -> None:
    finished = checkpoint(file={"id": "file-1"})
    same: dict[str, Any] = {"fingerprint": "fp", "filename": "a.jsonl", "purpose": "batch"}
    assert recorded_file_id(finished, **same) == "file-1"
    assert recorded_file_id(finished, **same, base_url=BASE) == "file-1"
    assert recorded_file_id(finished, **same, base_url="http://other/v1") is None
    assert recorded_file_id(checkpoint(file={"id": "file-1"}, base_url=""), **same, base_url=BASE) == "file-1"
    assert recorded_file_id(checkpoint(), **same, base_url=BASE) is None  # still pending
    assert recorded_file_id(finished, **{**same, "fingerprint": "changed"}) is None


def test_progress_reporter_reports_at_most_once_per_interval_and_never_the_same_twice() -> None:
    reports: list[UploadProgress] = []
    reporter = ProgressReporter(reports.append, interval_s=0.2, total_bytes=100, started=time.monotonic() - 1)
    reporter.report(bytes_done=10, bytes_sent=10, parts_done=1, parts_total=10)
    reporter.report(bytes_done=20, bytes_sent=20, parts_done=2, parts_total=10)  # within the interval
    assert 0 < reporter.wait_s(1.0) <= 0.2
    time.sleep(0.25)
    reporter.report(bytes_done=30, bytes_sent=30, parts_done=3, parts_total=10)
    reporter.report(bytes_done=100, bytes_sent=100, parts_done=10, parts_total=10, force=True)
    reporter.report(bytes_done=100, bytes_sent=100, parts_done=10, parts_total=10, force=True)
    assert [r.bytes_done for r in reports] == [10, 30, 100]
    assert reports[-1].fraction == 1.0 and reports[0].eta_s is not None


def old_single_checkpoint(path: Path, started_at: float, file: dict[str, Any] | None) -> dict[str, Any]:
    """A single-request checkpoint exactly as the operator wrote it before the rules moved to uploads/."""
    source = LocalFileSource(path)
    return {
        "kind": "airflow-provider-files/single-request-checkpoint",
        "fingerprint": source.fingerprint(),
        "filename": path.name,
        "purpose": "batch",
        "bytes": source.size,
        "started_at": started_at,
        "file": file,
    }


def test_single_request_finds_the_file_of_a_lost_answer_from_an_old_checkpoint(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(50_000)
    started_at = time.time() - 1
    lost = client.create_file(path, "batch")  # stored; the earlier run died before recording it
    store = MemoryCheckpointStore(old_single_checkpoint(path, started_at, None))

    result = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")

    assert result.recovered and not result.reused_file and result.file.id == lost.id
    assert emulator.stats()["file_count"] == 1
    assert store.load()["file"]["id"] == lost.id  # type: ignore[index]
    again = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")
    assert again.reused_file and again.file.id == lost.id
    assert len(requests_to(emulator, "create_file")) == 1


def test_single_request_uploads_again_when_the_recorded_file_is_gone(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(50_000)
    store = MemoryCheckpointStore(old_single_checkpoint(path, time.time(), {"id": "file-gone"}))

    result = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")

    assert not result.reused_file and not result.recovered
    assert emulator.stats()["file_count"] == 1
    assert store.load()["file"]["id"] == result.file.id  # type: ignore[index]


def test_split_manifest_in_the_old_format_is_reused_while_every_shard_exists(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    shards = [client.create_file(make_file(1000 + i, name=f"s{i}.jsonl", seed=i), "batch") for i in range(2)]
    split = split_fingerprint("fp", 10, 2000)
    store = MemoryCheckpointStore(
        {
            "kind": "airflow-provider-files/split-checkpoint",
            "fingerprint": "fp:10:2000",
            "purpose": "batch",
            "files": [f.to_dict() for f in shards],
        }
    )

    assert [f.id for f in reuse_split(client, store, fingerprint=split, purpose="batch") or []] == [
        f.id for f in shards
    ]
    assert reuse_split(client, store, fingerprint=split_fingerprint("fp", 11, 2000), purpose="batch") is None
    assert reuse_split(client, store, fingerprint=split, purpose="fine-tune") is None
    client.delete_file(shards[1].id)
    assert reuse_split(client, store, fingerprint=split, purpose="batch") is None
    save_split(store, fingerprint=split, purpose="batch", files=shards[:1])
    assert store.load()["files"] == [shards[0].to_dict()]  # type: ignore[index]


def test_a_shard_keeps_its_fingerprint_when_rewritten(make_file: Callable[..., Path]) -> None:
    path = make_file(1234, name="shard.jsonl")
    before = ShardSource(LocalFileSource(path), "fp:10:2000", 3).fingerprint()
    path.write_bytes(path.read_bytes())  # rewritten: new mtime
    after = ShardSource(LocalFileSource(path), "fp:10:2000", 3).fingerprint()
    assert before == after == "fp:10:2000:3:1234"
