"""Checkpoint names and the ObjectStoragePath checkpoint store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_files.operators._checkpoint import (
    ObjectStorageCheckpointStore,
    as_storage_path,
    checkpoint_name,
    checkpoint_name_from_context,
)
from airflow_provider_files.uploads import CheckpointStore

from .support import task_context


def test_name_is_readable_and_stable() -> None:
    name = checkpoint_name("my_dag", "upload", "manual__2025-01-01T00:00:00+00:00", 2)
    assert name.startswith("my_dag/upload/manual__2025-01-01T00_00_00_00_00__map2__")
    assert name == checkpoint_name("my_dag", "upload", "manual__2025-01-01T00:00:00+00:00", 2)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("d", "t", "a:b", -1), ("d", "t", "a_b", -1)),  # same text once sanitised
        (("d", "t", "r", 0), ("d", "t", "r", 1)),
        (("d", "t", "r", None), ("d", "t", "r", 0)),
        (("d", "t1", "r", -1), ("d", "t2", "r", -1)),
    ],
)
def test_different_task_instances_get_different_names(one: tuple[Any, ...], other: tuple[Any, ...]) -> None:
    assert checkpoint_name(*one) != checkpoint_name(*other)


def test_name_cannot_escape_the_folder() -> None:
    name = checkpoint_name("../../etc", "..", "run/../../x", -1)
    assert ".." not in name.split("/")
    assert name.count("/") == 2


def test_name_from_context() -> None:
    context = task_context("upload", dag_id="d", run_id="r", map_index=5)
    assert checkpoint_name_from_context(context) == checkpoint_name("d", "upload", "r", 5)


def test_store_round_trip_on_local_disk(tmp_path: Path) -> None:
    store = ObjectStorageCheckpointStore.for_task(str(tmp_path / "ck"), "d/t/r__map-1__abc")
    assert isinstance(store, CheckpointStore)
    assert store.load() is None
    store.save({"upload_id": "upload_1", "parts": {"0": "part_a"}})
    store.save({"upload_id": "upload_1", "parts": {"0": "part_a", "1": "part_b"}})
    assert store.load() == {"upload_id": "upload_1", "parts": {"0": "part_a", "1": "part_b"}}
    folder = tmp_path / "ck" / "d" / "t"
    assert [p.name for p in folder.iterdir()] == ["r__map-1__abc.json"]  # no temporary file left
    store.clear()
    assert store.load() is None
    store.clear()  # clearing twice is fine


def test_unreadable_checkpoint_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "ck.json"
    path.write_text("{not json")
    assert ObjectStorageCheckpointStore(as_storage_path(str(path))).load() is None
    path.write_text("[1, 2]")
    assert ObjectStorageCheckpointStore(as_storage_path(str(path))).load() is None


def test_sibling_store(tmp_path: Path) -> None:
    store = ObjectStorageCheckpointStore.for_task(str(tmp_path), "d/t/r")
    shard = store.sibling(".shard00001")
    assert shard.path.name == "r.shard00001.json"
    shard.save({"a": 1})
    assert store.load() is None


def test_store_on_object_storage(memory_storage: Any) -> None:
    store = ObjectStorageCheckpointStore.for_task("memory://bucket/ck", "d/t/r")
    store.save({"file": {"id": "file-1"}})
    assert store.load() == {"file": {"id": "file-1"}}
    assert "/bucket/ck/d/t/r.json" in memory_storage.store
    store.clear()
    assert store.load() is None


def test_as_storage_path() -> None:
    assert str(as_storage_path("/tmp/x")) == "file:///tmp/x"
    path = ObjectStoragePath("file:///tmp/y")
    assert as_storage_path(path) is path
    with pytest.raises(ValueError, match="empty"):
        as_storage_path("")
