"""UploadJsonlOperator and ChunkedUploadOperator: arguments, XCom, paths, retries, waiting.

Tests that upload talk to the emulator over real HTTP; they call ``execute`` with a minimal
task context (the DAG-level runs are in tests/dags/).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_files.demo import SAMPLE_MODEL, write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.operators.files import (
    ChunkedUploadOperator,
    InvalidBatchFileException,
    UploadJsonlOperator,
)
from airflow_provider_files.sensors.files import (
    FileProcessingFailedError,
    FileWaitError,
    FileWaitTimeoutError,
)
from airflow_provider_files.triggers.files import UploadCompleteTrigger
from airflow_provider_files.uploads import UploadCancelledError
from tests.support import FilesConnection

from .support import downloaded_content, md5_of, run_task, task_context, upload_requests

PART_BYTES = 64 * 1024
FILE_KEYS = {"id", "bytes", "filename", "purpose", "status"}


def routes(emulator: EmulatorHandle) -> list[str]:
    return [str(entry["route"]) for entry in upload_requests(emulator)]


# -- arguments ------------------------------------------------------------------------------------


def test_template_fields() -> None:
    for operator in (UploadJsonlOperator, ChunkedUploadOperator):
        assert {"source", "purpose", "filename", "files_conn_id", "checkpoint_folder"} <= set(
            operator.template_fields
        )
    assert "shard_destination" in UploadJsonlOperator.template_fields


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": None}, "source must be"),
        ({"source": ""}, "source must be"),
        ({"source": 42}, "source must be"),
        ({"purpose": ""}, "purpose must be"),
        ({"part_size_bytes": 1000}, "part_size_bytes must be between"),
        ({"part_size_bytes": 65 * 1024 * 1024}, "part_size_bytes must be between"),
        ({"concurrency": 0}, "concurrency must be"),
        ({"expires_after_s": 60}, "expires_after_s must be between"),
        ({"timeout_s": 0}, "timeout_s must be"),
        ({"poll_interval_s": -1}, "poll_interval_s must be"),
        ({"single_request_max_bytes": 600 * 1024 * 1024}, "single_request_max_bytes"),
        ({"max_errors": 0}, "max_errors must be"),
        ({"max_lines": 100}, "only apply with split=True"),
        ({"split": True, "max_bytes": 0}, "max_bytes must be"),
    ],
)
def test_bad_arguments_fail_at_init(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"task_id": "upload", "source": "/data/requests.jsonl", **kwargs}
    with pytest.raises((TypeError, ValueError), match=message):
        UploadJsonlOperator(**arguments)


def test_init_does_no_io(tmp_path: Path) -> None:
    operator = ChunkedUploadOperator(
        task_id="upload",
        source=str(tmp_path / "does-not-exist-yet.bin"),
        purpose="user_data",
        checkpoint_folder=str(tmp_path / "not-created"),
        files_conn_id="no_such_connection",
    )
    assert operator.deferrable is False
    assert not (tmp_path / "not-created").exists()


def test_rendered_source_is_checked_at_execute() -> None:
    operator = ChunkedUploadOperator(task_id="upload", source="{{ params.x }}", purpose="user_data")
    operator.source = 12  # type: ignore[assignment]  # what a template rendering to a number gives
    with pytest.raises(TypeError, match="source must be a local path"):
        run_task(operator, task_context())


def test_checkpoint_key_comes_from_the_task_instance(tmp_path: Path) -> None:
    operator = UploadJsonlOperator(task_id="upload", source="x.jsonl", checkpoint_folder=str(tmp_path))
    store = operator.checkpoint_store(task_context(dag_id="d1", run_id="scheduled__2025-01-01", map_index=3))
    path = str(store.path)
    assert path.startswith(f"file://{tmp_path}/d1/upload/scheduled__2025-01-01__map3__")
    other = operator.checkpoint_store(task_context(dag_id="d1", run_id="scheduled__2025-01-01", map_index=4))
    assert str(other.path) != path


def test_default_checkpoint_folder_is_under_airflow_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER", raising=False)
    operator = UploadJsonlOperator(task_id="upload", source="x.jsonl")
    assert str(operator.checkpoint_store(task_context()).path).startswith(
        f"file://{tmp_path}/upload_checkpoints/dag/upload/"
    )


# -- UploadJsonlOperator ----------------------------------------------------------------------------


def test_small_file_goes_through_post_files(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(200)
    operator = UploadJsonlOperator(
        task_id="upload", source=str(source), checkpoint_folder=str(tmp_path / "ck")
    )

    result = run_task(operator, task_context())

    assert isinstance(result, dict)
    assert set(result) >= FILE_KEYS
    json.dumps(result)  # plain data, fit for XCom
    assert result["bytes"] == source.stat().st_size
    assert result["filename"] == "requests.jsonl"
    assert result["purpose"] == "batch"
    assert routes(files_conn) == ["create_file"]
    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())


def test_file_above_threshold_goes_through_the_uploads_api(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(1000)  # about 280 KB
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        single_request_max_bytes=100_000,
        part_size_bytes=PART_BYTES,
        checkpoint_folder=str(tmp_path / "ck"),
    )

    result = run_task(operator, task_context())

    sent = routes(files_conn)
    assert "create_file" not in sent
    assert sent[0] == "create_upload" and sent[-1] == "complete_upload"
    assert sent.count("add_part") == -(-source.stat().st_size // PART_BYTES)
    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())
    assert result["purpose"] == "batch"


def test_invalid_jsonl_fails_with_line_number_and_sends_nothing(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(5)
    lines = source.read_text().splitlines()
    lines[2] = '{"custom_id": "request-000000", "method": "POST"'  # line 3: truncated JSON
    source.write_text("\n".join(lines) + "\n")
    operator = UploadJsonlOperator(
        task_id="upload", source=str(source), checkpoint_folder=str(tmp_path / "ck")
    )

    with pytest.raises(InvalidBatchFileException, match="line 3") as failure:
        run_task(operator, task_context())

    assert isinstance(failure.value, AirflowFailException)  # no retries for a bad file
    assert not failure.value.report.valid
    assert files_conn.stats()["body_bytes_received"] == 0
    assert upload_requests(files_conn) == []


def test_retry_after_success_reuses_the_file(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(100)
    context = task_context()
    first = UploadJsonlOperator(task_id="upload", source=str(source), checkpoint_folder=str(tmp_path / "ck"))
    result = run_task(first, context)
    # A retry is a new operator object with the same task instance key; XCom is gone.
    second = UploadJsonlOperator(task_id="upload", source=str(source), checkpoint_folder=str(tmp_path / "ck"))
    again = run_task(second, context)

    assert again["id"] == result["id"]
    assert files_conn.stats()["file_count"] == 1
    assert routes(files_conn) == ["create_file"]


def test_retry_after_success_through_uploads_api_reuses_the_file(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(500)
    arguments: dict[str, Any] = {
        "task_id": "upload",
        "source": str(source),
        "single_request_max_bytes": 1000,
        "part_size_bytes": PART_BYTES,
        "checkpoint_folder": str(tmp_path / "ck"),
    }
    result = run_task(UploadJsonlOperator(**arguments), task_context())
    again = run_task(UploadJsonlOperator(**arguments), task_context())

    assert again["id"] == result["id"]
    assert files_conn.stats()["file_count"] == 1
    assert routes(files_conn).count("create_upload") == 1


def test_other_task_instances_do_not_share_checkpoints(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(50)
    operator = UploadJsonlOperator(
        task_id="upload", source=str(source), checkpoint_folder=str(tmp_path / "ck")
    )
    first = run_task(operator, task_context(run_id="run_1"))
    second = run_task(operator, task_context(run_id="run_2"))
    assert first["id"] != second["id"]


def test_changed_source_is_uploaded_again(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(50)
    operator = UploadJsonlOperator(
        task_id="upload", source=str(source), checkpoint_folder=str(tmp_path / "ck")
    )
    first = run_task(operator, task_context())
    batch_file(60)  # same path, new content
    second = run_task(operator, task_context())
    assert second["id"] != first["id"]
    assert second["bytes"] == source.stat().st_size


def test_retry_finds_the_file_a_lost_response_created(
    files_conn: EmulatorHandle,
    batch_file: Callable[..., Path],
    tmp_path: Path,
    files_connection: FilesConnection,
) -> None:
    """The response to POST /files is lost and the client gives up; the retry of the task finds
    the stored file instead of uploading a duplicate."""
    files_connection(files_conn, max_retries=0)
    source = batch_file(80)
    files_conn.set_faults("create_file:drop_after=x1")
    arguments: dict[str, Any] = {
        "task_id": "upload",
        "source": str(source),
        "checkpoint_folder": str(tmp_path),
    }
    with pytest.raises(Exception, match=r"(?i)connect|disconnect|closed|protocol"):
        run_task(UploadJsonlOperator(**arguments), task_context())
    assert files_conn.stats()["file_count"] == 1  # stored, but the client never heard back

    result = run_task(UploadJsonlOperator(**arguments), task_context())

    assert files_conn.stats()["file_count"] == 1
    assert result["id"] in files_conn.stats()["files"]


def test_retry_does_not_take_another_tasks_file_of_the_same_name_and_size(
    files_conn: EmulatorHandle, tmp_path: Path, files_connection: FilesConnection
) -> None:
    files_connection(files_conn, max_retries=0)
    source = tmp_path / "a" / "requests.jsonl"
    other = tmp_path / "b" / "requests.jsonl"
    write_sample_requests(source, 40)
    write_sample_requests(other, 40, model="gpt-4o-nano")  # same name and size, other content
    assert source.stat().st_size == other.stat().st_size
    arguments: dict[str, Any] = {
        "task_id": "upload",
        "source": str(source),
        "checkpoint_folder": str(tmp_path),
    }
    files_conn.set_faults("create_file:drop_after=x1")
    with pytest.raises(Exception, match=r"(?i)connect|disconnect|closed|protocol"):
        run_task(UploadJsonlOperator(**arguments), task_context())
    files_conn.clear_faults()
    for stored_id in list(files_conn.stats()["files"]):
        FilesHook().delete_file(stored_id)  # the lost file is gone ...
    FilesHook().upload_file(other, "batch")  # ... and another task stored a look-alike

    result = run_task(UploadJsonlOperator(**arguments), task_context())

    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())
    assert files_conn.stats()["file_count"] == 2


def test_split_uploads_every_shard(
    files_conn: EmulatorHandle,
    batch_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = batch_file(250)
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        split=True,
        max_lines=100,
        checkpoint_folder=str(tmp_path / "ck"),
    )

    result = run_task(operator, task_context())

    assert isinstance(result, list) and len(result) == 3
    assert [f["filename"] for f in result] == [f"requests-0000{i}.jsonl" for i in (1, 2, 3)]
    assert downloaded_content(result, tmp_path) == source.read_bytes()
    assert list(system_tmp.iterdir()) == []  # the temporary shards were removed

    again = run_task(
        UploadJsonlOperator(
            task_id="upload",
            source=str(source),
            split=True,
            max_lines=100,
            checkpoint_folder=str(tmp_path / "ck"),
        )
    )
    assert [f["id"] for f in again] == [f["id"] for f in result]
    assert files_conn.stats()["file_count"] == 3


def test_split_keeps_shards_in_a_given_destination(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(30)
    destination = tmp_path / "shards"
    UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        split=True,
        max_lines=10,
        shard_destination=str(destination),
        checkpoint_folder=str(tmp_path / "ck"),
    ).execute(task_context())
    assert sorted(p.name for p in destination.iterdir()) == [f"requests-0000{i}.jsonl" for i in (1, 2, 3)]


def test_split_into_a_destination_holding_shards_of_an_earlier_try_replaces_them(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(30)
    destination = tmp_path / "shards"
    destination.mkdir()
    for number in range(1, 6):  # an earlier try split the source differently
        (destination / f"requests-0000{number}.jsonl").write_bytes(b"old\n")
    result = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        split=True,
        max_lines=10,
        shard_destination=str(destination),
        checkpoint_folder=str(tmp_path / "ck"),
    ).execute(task_context())
    assert len(result) == 3
    assert sorted(p.name for p in destination.iterdir()) == [f"requests-0000{i}.jsonl" for i in (1, 2, 3)]
    assert b"".join((destination / f"requests-0000{i}.jsonl").read_bytes() for i in (1, 2, 3)) == (
        source.read_bytes()
    )


def test_split_of_an_invalid_file_sends_nothing(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = batch_file(30)
    with source.open("a") as handle:
        handle.write("not json\n")
    operator = UploadJsonlOperator(
        task_id="upload", source=str(source), split=True, max_lines=10, checkpoint_folder=str(tmp_path)
    )
    with pytest.raises(InvalidBatchFileException, match="line 31"):
        run_task(operator, task_context())
    assert upload_requests(files_conn) == []


def test_object_storage_source_and_checkpoints(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], memory_storage: Any
) -> None:
    """A non-local ObjectStoragePath is validated from a stream and uploaded part by part through
    ``open()``; the checkpoint lives on object storage too."""
    local = batch_file(400)
    remote = ObjectStoragePath("memory://bucket/input/requests.jsonl")
    remote.write_bytes(local.read_bytes())
    arguments: dict[str, Any] = {
        "task_id": "upload",
        "source": remote,
        "single_request_max_bytes": 1000,
        "part_size_bytes": PART_BYTES,
        "checkpoint_folder": "memory://bucket/checkpoints",
    }

    result = run_task(UploadJsonlOperator(**arguments), task_context())

    assert files_conn.file_md5(result["id"]) == md5_of(local.read_bytes())
    assert result["filename"] == "requests.jsonl"
    assert any(key.startswith("/bucket/checkpoints/dag/upload/") for key in memory_storage.store)
    again = run_task(UploadJsonlOperator(**arguments), task_context())
    assert again["id"] == result["id"]
    assert files_conn.stats()["file_count"] == 1


# -- ChunkedUploadOperator --------------------------------------------------------------------------


def test_chunked_upload_logs_progress(
    files_conn: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 2000)  # 512,000 bytes
    operator = ChunkedUploadOperator(
        task_id="upload",
        source=str(source),
        purpose="user_data",
        part_size_bytes=PART_BYTES,
        concurrency=3,
        checkpoint_folder=str(tmp_path / "ck"),
    )
    result = run_task(operator, task_context())

    assert result["purpose"] == "user_data"
    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())
    assert "create_file" not in routes(files_conn)
    # The task logger writes through structlog to stdout, not to the logging module.
    progress = [line for line in capsys.readouterr().out.splitlines() if "MiB/s" in line]
    assert progress, "no progress line in the task log"
    assert "data.bin: 100% 500 KiB of 500 KiB, " in progress[-1]
    assert len(progress) <= 3  # the first report, the last, and none in between (5 s apart)


def test_chunked_upload_default_part_size_fills_every_connection(
    files_conn: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 MiB at the default part size: one 16 MiB part would leave 3 of 4 connections idle; the
    # evened default sends 4 parts of 256 KiB, one per connection.
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    operator = ChunkedUploadOperator(
        task_id="upload",
        source=str(source),
        purpose="user_data",
        concurrency=4,
        checkpoint_folder=str(tmp_path),
    )
    result = run_task(operator, task_context())

    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())
    assert routes(files_conn).count("add_part") == 4
    assert "in parts of 256 KiB, 4 at a time" in capsys.readouterr().out


def _run_in_thread(operator: ChunkedUploadOperator) -> tuple[threading.Thread, dict[str, BaseException]]:
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            run_task(operator, task_context())
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    return worker, outcome


def _wait_for_parts(emulator: EmulatorHandle, count: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        uploads = list(emulator.stats()["uploads"].values())
        if uploads and uploads[0]["part_count"] >= count:
            return int(uploads[0]["part_count"])
        time.sleep(0.02)
    raise AssertionError(f"the emulator did not receive {count} parts in time")


def test_retry_resumes_the_same_upload(files_conn: EmulatorHandle, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * (40 * PART_BYTES // 256))
    arguments: dict[str, Any] = {
        "task_id": "upload",
        "source": str(source),
        "purpose": "user_data",
        "part_size_bytes": PART_BYTES,
        "concurrency": 2,
        "checkpoint_folder": str(tmp_path / "ck"),
    }
    files_conn.set_bandwidth(1.0)  # about 2.6 s for the whole file: time enough to stop it
    first = ChunkedUploadOperator(**arguments)
    worker, outcome = _run_in_thread(first)
    _wait_for_parts(files_conn, 3)
    first.on_kill()  # the try ends (like a killed worker); resume is on, so the upload stays
    worker.join(15)
    assert isinstance(outcome.get("error"), UploadCancelledError)
    files_conn.set_bandwidth(None)

    result = run_task(ChunkedUploadOperator(**arguments), task_context())

    sent = upload_requests(files_conn)
    assert [e["route"] for e in sent].count("create_upload") == 1  # the same upload was resumed
    acknowledged = [e for e in sent if e["route"] == "add_part" and e["status"] == 200]
    # Each part is stored once, except parts in flight when the try was stopped (their answer
    # was lost), at most ``concurrency`` of them.
    assert 40 <= len(acknowledged) <= 40 + 2
    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())
    assert files_conn.stats()["file_count"] == 1


@pytest.mark.parametrize(("retries", "expected_status"), [(1, "pending"), (0, "cancelled")])
def test_failed_upload_is_left_for_a_retry_or_cancelled_on_the_last_try(
    files_conn: EmulatorHandle,
    tmp_path: Path,
    files_connection: FilesConnection,
    retries: int,
    expected_status: str,
) -> None:
    files_connection(files_conn, max_retries=0)
    source = tmp_path / "data.bin"
    source.write_bytes(b"z" * (4 * PART_BYTES))
    operator = ChunkedUploadOperator(
        task_id="upload",
        source=str(source),
        purpose="user_data",
        part_size_bytes=PART_BYTES,
        concurrency=1,
        retries=retries,
        checkpoint_folder=str(tmp_path / "ck"),
    )
    files_conn.set_faults("add_part:500=x2")
    with pytest.raises(Exception, match="500"):
        run_task(operator, task_context())  # try 1

    uploads = list(files_conn.stats()["uploads"].values())
    assert [u["status"] for u in uploads] == [expected_status]


@pytest.mark.parametrize("resume", [True, False])
def test_on_kill_stops_the_upload(files_conn: EmulatorHandle, tmp_path: Path, resume: bool) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"x" * (40 * PART_BYTES))
    files_conn.set_bandwidth(1.0)  # about 2.6 s for the whole file: time enough to kill it
    operator = ChunkedUploadOperator(
        task_id="upload",
        source=str(source),
        purpose="user_data",
        part_size_bytes=PART_BYTES,
        concurrency=2,
        resume=resume,
        checkpoint_folder=str(tmp_path / "ck"),
    )
    worker, outcome = _run_in_thread(operator)
    _wait_for_parts(files_conn, 1)
    operator.on_kill()
    worker.join(15)

    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), UploadCancelledError)
    uploads = list(files_conn.stats()["uploads"].values())
    assert len(uploads) == 1
    assert uploads[0]["status"] == ("pending" if resume else "cancelled")
    assert files_conn.stats()["file_count"] == 0


# -- waiting for processing -------------------------------------------------------------------------


def test_wait_for_completion_blocks_until_processed(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    files_conn.set_processing_delay(1.0)
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(batch_file(20)),
        wait_for_completion=True,
        deferrable=False,
        poll_interval_s=0.3,
        timeout_s=30,
        checkpoint_folder=str(tmp_path),
    )
    result = run_task(operator, task_context())
    assert result["status"] == "processed"


def test_deferrable_wait_defers_with_the_trigger(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    files_conn.set_processing_delay(60.0)
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(batch_file(20)),
        split=True,
        max_lines=10,
        wait_for_completion=True,
        deferrable=True,
        poll_interval_s=2,
        timeout_s=120,
        checkpoint_folder=str(tmp_path),
    )
    with pytest.raises(TaskDeferred) as deferred:
        run_task(operator, task_context())

    trigger = deferred.value.trigger
    assert isinstance(trigger, UploadCompleteTrigger)
    assert deferred.value.method_name == "execute_complete"
    kwargs = trigger.serialize()[1]
    assert len(kwargs["file_ids"]) == 2
    assert kwargs["files_conn_id"] == "openai_files_default"
    assert time.time() + 100 < kwargs["deadline"] <= time.time() + 120
    files = [{"id": file_id, "status": "processed"} for file_id in kwargs["file_ids"]]
    target = {"endpoint": "/v1/chat/completions", "model": SAMPLE_MODEL}  # what the source was validated for
    assert operator.execute_complete(task_context(), {"status": "success", "files": files}) == [
        {**f, **target} for f in files
    ]


def test_deferrable_wait_skips_the_trigger_when_already_processed(
    files_conn: EmulatorHandle, batch_file: Callable[..., Path], tmp_path: Path
) -> None:
    operator = ChunkedUploadOperator(
        task_id="upload",
        source=str(batch_file(20)),
        purpose="batch",
        wait_for_completion=True,
        deferrable=True,
        checkpoint_folder=str(tmp_path),
    )
    assert run_task(operator, task_context())["status"] == "processed"


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, FileWaitError),
        ({"status": "timeout", "message": "not ready after 60s"}, FileWaitTimeoutError),
        (
            {"status": "error", "message": "file-1 is error", "reason": "file_failed"},
            FileProcessingFailedError,
        ),
        ({"status": "error", "message": "401", "reason": "api_error"}, FileWaitError),
        ({"status": "success", "files": []}, FileWaitError),
        ({"status": "weird"}, FileWaitError),
    ],
)
def test_execute_complete_rejects_bad_events(event: dict[str, Any] | None, error: type[Exception]) -> None:
    operator = ChunkedUploadOperator(task_id="upload", source="x.bin", purpose="batch")
    with pytest.raises(error):
        operator.execute_complete(task_context(), event)


def test_execute_complete_returns_a_dict_for_one_file() -> None:
    operator = ChunkedUploadOperator(task_id="upload", source="x.bin", purpose="batch")
    file = {"id": "file-1", "bytes": 3, "status": "processed"}
    assert operator.execute_complete(task_context(), {"status": "success", "files": [file]}) == file
