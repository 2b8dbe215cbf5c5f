"""Checkpoint housekeeping: removal once a task instance succeeded, retention of what failed
tries left, and the warning about a local folder under an executor that retries elsewhere."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.operators._checkpoint import (
    SECONDS_PER_DAY,
    checkpoint_name,
    executor_names,
    prepare_checkpoint_folder,
    prune_checkpoints,
    retention_s,
)
from airflow_provider_files.operators.batches import BatchOperator
from airflow_provider_files.operators.files import UploadJsonlOperator
from tests.support import files_under

from .support import run_task, task_context

PART_BYTES = 64 * 1024
WARNING_TEXT = "[openai_files] checkpoint_folder (AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER)"


def succeed(operator: Any, context: Any) -> None:
    """What Airflow does once the task instance is marked successful: its success callbacks."""
    for callback in operator.on_success_callback:
        callback(context)


# -- removal once the task instance has succeeded ------------------------------------------------


def test_success_removes_every_checkpoint_of_the_task_instance_and_only_those(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tmp_path / "ck"
    source = batch_file(300)
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        split=True,
        max_lines=100,
        single_request_max_bytes=1000,  # each shard in parts: one checkpoint per shard
        part_size_bytes=PART_BYTES,
        checkpoint_folder=str(folder),
    )
    run_task(operator, task_context(run_id="run_1"))
    run_task(operator, task_context(run_id="run_2"))
    name_1 = checkpoint_name("dag", "upload", "run_1", -1).rsplit("/", 1)[-1]
    assert len([p for p in files_under(folder) if p.name.startswith(name_1)]) >= 4  # manifest + 3 shards

    succeed(operator, task_context(run_id="run_1"))

    left = files_under(folder)
    assert left and not [p for p in left if p.name.startswith(name_1)]
    assert all("run_2" in p.name for p in left)  # the other run's checkpoints are its own business


def test_success_removes_an_object_storage_checkpoint(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], memory_storage: Any
) -> None:
    operator = UploadJsonlOperator(
        task_id="upload", source=str(batch_file(50)), checkpoint_folder="memory://bucket/checkpoints"
    )
    run_task(operator, task_context())
    assert any(key.startswith("/bucket/checkpoints/dag/upload/") for key in memory_storage.store)

    succeed(operator, task_context())

    assert not any(key.startswith("/bucket/checkpoints/") for key in memory_storage.store)


def test_the_batch_operator_removes_its_checkpoint_too(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    name = checkpoint_name("dag", "batch", "manual__1", -1)
    (folder / f"{name}.batch.json").parent.mkdir(parents=True)
    (folder / f"{name}.batch.json").write_text('{"batch_id": "batch_1"}')
    operator = BatchOperator(task_id="batch", input_file_id="file-1", checkpoint_folder=str(folder))

    succeed(operator, task_context("batch"))

    assert files_under(folder) == []


def test_user_success_callbacks_still_run(tmp_path: Path) -> None:
    called: list[str] = []
    operator = UploadJsonlOperator(
        task_id="upload",
        source="x.jsonl",
        checkpoint_folder=str(tmp_path),
        on_success_callback=lambda context: called.append("user"),
    )
    succeed(operator, task_context())
    assert called == ["user"]


def test_a_failed_removal_does_not_fail_the_task(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    operator = UploadJsonlOperator(task_id="upload", source="x.jsonl", checkpoint_folder="nosuchscheme://x")
    succeed(operator, task_context())  # no exception: the task has succeeded already
    assert "Could not remove the checkpoints of this task instance" in capfd.readouterr().out


# -- retention of what failed tries left --------------------------------------------------------


def _age(path: Path, days: float) -> None:
    then = time.time() - days * SECONDS_PER_DAY
    os.utime(path, (then, then))


def test_prune_removes_only_old_checkpoints(tmp_path: Path) -> None:
    old = tmp_path / f"{checkpoint_name('d', 't', 'old', -1)}.json"
    recent = tmp_path / f"{checkpoint_name('d', 't', 'new', -1)}.json"
    not_ours = tmp_path / "d" / "notes.json"
    for path in (old, recent, not_ours):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    _age(old, 8)
    _age(recent, 6)
    _age(not_ours, 30)

    assert prune_checkpoints(tmp_path, 7 * SECONDS_PER_DAY) == 1

    assert files_under(tmp_path) == sorted([recent, not_ours])


def test_prune_on_object_storage(memory_storage: Any) -> None:
    folder = ObjectStoragePath("memory://bucket/checkpoints")
    old = folder / f"{checkpoint_name('d', 't', 'old', -1)}.json"
    recent = folder / f"{checkpoint_name('d', 't', 'new', -1)}.json"
    old.write_text("{}")
    recent.write_text("{}")
    key = old.path if old.path.startswith("/") else f"/{old.path}"
    memory_storage.store[key].created = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
        days=8
    )

    assert prune_checkpoints(folder, 7 * SECONDS_PER_DAY) == 1

    assert not old.exists() and recent.exists()


def test_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_RETENTION_DAYS", raising=False)
    assert retention_s() == 7 * SECONDS_PER_DAY
    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_RETENTION_DAYS", "0.5")
    assert retention_s() == 0.5 * SECONDS_PER_DAY
    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_RETENTION_DAYS", "0")
    assert retention_s() is None  # kept for ever
    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_RETENTION_DAYS", "a week")
    with pytest.raises(ValueError, match="checkpoint_retention_days must be a number of days"):
        retention_s()


def test_first_use_of_a_folder_prunes_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_RETENTION_DAYS", "1")
    folder = tmp_path / "ck"
    first = folder / f"{checkpoint_name('d', 't', 'first', -1)}.json"
    first.parent.mkdir(parents=True)
    first.write_text("{}")
    _age(first, 2)
    log = _Recorder()

    prepare_checkpoint_folder(str(folder), log)
    assert not first.exists()
    assert any("Removed 1 checkpoint(s) older than 1 day(s)" in line for line in log.lines)

    second = folder / f"{checkpoint_name('d', 't', 'second', -1)}.json"
    second.write_text("{}")
    _age(second, 2)
    prepare_checkpoint_folder(str(folder), log)
    assert second.exists()  # once per process and folder: a task does not list the folder twice


# -- the warning about a local folder under a remote executor ----------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    def warning(self, message: str, *args: Any) -> None:
        self.warnings.append(message % args)
        self.lines.append(message % args)


@pytest.mark.parametrize(
    ("configured", "names"),
    [
        ("LocalExecutor", ["LocalExecutor"]),
        ("CeleryExecutor,KubernetesExecutor", ["CeleryExecutor", "KubernetesExecutor"]),
        (
            "LocalExecutor, fast:my_company.executors.FastExecutor",
            ["LocalExecutor", "FastExecutor"],
        ),
        ("airflow.providers.celery.executors.celery_executor.CeleryExecutor", ["CeleryExecutor"]),
    ],
)
def test_executor_names(configured: str, names: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", configured)
    assert executor_names() == names
    assert executor_names("KubernetesExecutor") == ["KubernetesExecutor"]  # the task's own


@pytest.fixture
def worker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AIRFLOW_HOME with the default (local) checkpoint folder under it."""
    home = tmp_path / "home"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.delenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER", raising=False)
    return home


def test_default_local_folder_under_celery_warns_once(
    worker_home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    for task_id in ("one", "two"):
        operator = UploadJsonlOperator(task_id=task_id, source="x.jsonl")
        operator.checkpoint_store(task_context(task_id))
        operator.checkpoint_store(task_context(task_id, run_id="manual__2"))

    warnings = [line for line in capfd.readouterr().out.splitlines() if WARNING_TEXT in line]
    assert len(warnings) == 1
    assert str(worker_home / "upload_checkpoints") in warnings[0] and "(CeleryExecutor)" in warnings[0]


@pytest.mark.parametrize(
    ("executor", "chosen", "configured"),
    [
        ("LocalExecutor", None, None),
        ("SequentialExecutor", None, None),
        ("KubernetesExecutor", "/mnt/shared/checkpoints", None),  # chosen: a shared mount, say
        ("KubernetesExecutor", None, "s3://bucket/checkpoints"),
    ],
)
def test_no_warning_when_retries_find_the_folder(
    worker_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: str,
    chosen: str | None,
    configured: str | None,
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    if configured:
        monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER", configured)
    log = _Recorder()
    monkeypatch.setattr("airflow_provider_files.operators._checkpoint.as_storage_path", _without_filesystem)
    prepare_checkpoint_folder(chosen, log)
    assert not [w for w in log.warnings if WARNING_TEXT in w]


def _without_filesystem(location: Any) -> ObjectStoragePath:
    """as_storage_path without resolving a filesystem (no s3 filesystem is installed here)."""
    text = os.fspath(location)
    return ObjectStoragePath(text if "://" in text else f"file://{text}")
