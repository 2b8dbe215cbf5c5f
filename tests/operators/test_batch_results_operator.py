"""DownloadBatchResultsOperator over real HTTP against the emulator: files in a folder (local or
object storage), the summary it returns, the checks it fails on, follow-up rounds, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_files.api import Batch, FilesClient, NotFoundError
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.operators.batch_results import DownloadBatchResultsOperator
from tests.batches.support import CHAT, checked, ids, jsonl, jsonl_ids, run_batch, upload_ids, wait_for

from .support import run_task, task_context


@pytest.fixture
def client(files_conn: EmulatorHandle) -> Iterator[FilesClient]:
    """The client of the default connection (the emulator), with quick batches."""
    files_conn.configure(batch_duration_s=0.2)
    hook = FilesHook()
    yield hook.client
    hook.close()


def download(batch: Any, destination: Any, **options: Any) -> DownloadBatchResultsOperator:
    options.setdefault("poll_interval_s", 0.05)
    return DownloadBatchResultsOperator(task_id="results", batch=batch, destination=destination, **options)


def batches_created(emulator: EmulatorHandle) -> int:
    return int(emulator.stats()["batches_created"])


def test_results_of_a_batch_created_through_the_hook_land_in_a_local_folder(
    client: FilesClient, tmp_path: Path
) -> None:
    created = FilesHook().create_batch(upload_ids(client, ids(25)), CHAT)
    batch = wait_for(client, created.id)
    summary = run_task(download(batch.id, str(tmp_path / "out")))
    output = tmp_path / "out" / f"{batch.id}_output.jsonl"
    errors = tmp_path / "out" / f"{batch.id}_errors.jsonl"
    assert summary["files"] == {"output": f"file://{output}", "errors": f"file://{errors}"}
    assert sorted(jsonl_ids(output.read_bytes())) == sorted(ids(25)) and errors.read_bytes() == b""
    assert (summary["batch_id"], summary["status"], summary["total_input"]) == (batch.id, "completed", 25)
    assert (summary["succeeded"], summary["failed"], summary["missing_count"]) == (25, 0, 0)
    assert summary["complete"] and summary["error_codes"] == {}
    assert summary["usage"]["input_tokens"] > 0 and summary["usage"]["output_tokens"] > 0
    assert batch.usage is not None and summary["batch_usage"]["input_tokens"] == batch.usage["input_tokens"]
    assert orjson.loads(orjson.dumps(summary)) == summary  # plain data for XCom


def test_a_batch_dict_and_a_memory_destination(client: FilesClient, memory_storage: MemoryFileSystem) -> None:
    batch = run_batch(client, ids(8))
    summary = run_task(download(batch.to_dict(), "memory://bucket/results", order="input"))
    assert summary["files"] == {"results": f"memory://bucket/results/{batch.id}_results.jsonl"}
    data = memory_storage.cat(f"/bucket/results/{batch.id}_results.jsonl")
    assert jsonl_ids(data) == ids(8)  # input order
    assert summary["succeeded"] == 8


def test_failed_requests_over_max_failed_fraction_fail_the_task_after_the_files_are_written(
    client: FilesClient, files_conn: EmulatorHandle, tmp_path: Path
) -> None:
    files_conn.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(40))
    summary = run_task(download(batch.id, tmp_path / "ok", max_failed_fraction=0.9))
    failed = summary["failed"]
    assert 0 < failed < 40 and sum(summary["error_codes"].values()) == failed
    assert set(summary["error_codes"]) <= {"rate_limit_exceeded", "server_error"}
    with pytest.raises(
        AirflowFailException, match=rf"{failed} failed, 0 missing of 40\), more than max_failed"
    ):
        run_task(download(batch.id, tmp_path / "strict", max_failed_fraction=0.05))
    errors = jsonl((tmp_path / "strict" / f"{batch.id}_errors.jsonl").read_bytes())
    assert len(errors) == failed  # written before the task failed


def test_follow_up_round_merges_to_one_line_per_custom_id_and_a_retry_creates_no_second_one(
    client: FilesClient, files_conn: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files_conn.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(40))
    files_conn.configure(batch_request_error_rate=0.0)  # the outage is over for the follow-up
    assert batches_created(files_conn) == 1

    # First try: dies while waiting for the follow-up batch it created.
    def lost(self: FilesHook, batch_id: str, **_: Any) -> Batch:
        raise AirflowException("worker lost")

    with monkeypatch.context() as patched:
        patched.setattr(FilesHook, "wait_for_batch", lost)
        operator = download(batch.id, tmp_path / "out", resubmit_failed=2)
        with pytest.raises(AirflowException, match="worker lost"):
            run_task(operator, task_context("results"))
    assert batches_created(files_conn) == 2

    # The retry (same task, same run) finds the upload and the follow-up batch of the first try.
    summary = run_task(download(batch.id, tmp_path / "out", resubmit_failed=2), task_context("results"))
    assert batches_created(files_conn) == 2
    uploads = [f for f in client.list_files(purpose="batch").data if "_round2_" in (f.filename or "")]
    assert len(uploads) == 1
    lines = jsonl((tmp_path / "out" / f"{batch.id}_results.jsonl").read_bytes())
    assert sorted(line["custom_id"] for line in lines) == sorted(ids(40))
    assert summary["succeeded"] == 40 and summary["failed"] == 0 and summary["complete"]
    first, second = summary["rounds"]
    assert (first["batch_id"], first["requests"], second["requests"]) == (batch.id, 40, first["resubmitted"])
    follow_up = client.retrieve_batch(second["batch_id"])
    assert follow_up.metadata["resubmit_of"] == batch.id and follow_up.metadata["round"] == "2"

    # Another run of the DAG is another task run: it gets its own follow-up batch.
    run_task(
        download(batch.id, tmp_path / "rerun", resubmit_failed=1), task_context("results", run_id="manual__2")
    )
    assert batches_created(files_conn) == 3


def test_cleanup_deletes_every_file_once_the_results_are_written(
    client: FilesClient, files_conn: EmulatorHandle, tmp_path: Path
) -> None:
    files_conn.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(20))
    summary = run_task(download(batch.id, tmp_path, cleanup_files=True))
    deleted = summary["deleted_files"]
    assert set(deleted) == {batch.input_file_id, batch.output_file_id, batch.error_file_id}
    for file_id in deleted:
        with pytest.raises(NotFoundError):
            client.retrieve_file(file_id)
    assert files_conn.stats()["file_count"] == 0
    assert len(jsonl((tmp_path / f"{batch.id}_errors.jsonl").read_bytes())) == summary["failed"] > 0


def test_cleanup_waits_for_the_checks(
    client: FilesClient, files_conn: EmulatorHandle, tmp_path: Path
) -> None:
    files_conn.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(20))
    with pytest.raises(AirflowFailException):
        run_task(download(batch.id, tmp_path, cleanup_files=True, max_failed_fraction=0.0))
    assert client.retrieve_file(batch.input_file_id).id == batch.input_file_id  # kept for a rerun


def test_an_unfinished_batch_fails_the_try_and_a_failed_one_fails_for_good(
    client: FilesClient, files_conn: EmulatorHandle, tmp_path: Path
) -> None:
    files_conn.configure(batch_duration_s=100)
    running = client.create_batch(upload_ids(client, ids(3)), CHAT)
    with pytest.raises(AirflowException, match="not finished") as raised:
        run_task(download(running.id, tmp_path))
    assert not isinstance(raised.value, AirflowFailException)  # a retry may find it done
    files_conn.configure(batch_duration_s=0.2)
    bad = client.create_file(b'{"custom_id": "a"}\n{oops\n', "batch", filename="bad.jsonl").id
    failed = client.create_batch(bad, CHAT)
    assert wait_for(client, failed.id).status == "failed"
    with pytest.raises(AirflowFailException, match="failed, it has no results"):
        run_task(download(failed.id, tmp_path))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"order": "random"}, "order must be one of results, input"),
        ({"max_failed_fraction": 1.5}, "max_failed_fraction must be between"),
        ({"resubmit_failed": -1}, "resubmit_failed must be an int"),
        ({"cleanup_files": "maybe"}, "cleanup_files must be true or false"),
        ({"poll_interval_s": 0}, "must be positive"),
    ],
)
def test_bad_options_are_refused_when_the_task_is_built(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        download("batch_x", "/tmp/x", **options)


def test_templated_options_are_checked_once_rendered(client: FilesClient, tmp_path: Path) -> None:
    batch = run_batch(client, ids(3))
    operator = download(batch.id, tmp_path, resubmit_failed="{{ params.rounds }}", order="{{ params.order }}")
    operator.resubmit_failed, operator.order = "1", "input"  # as rendered
    assert run_task(operator)["files"] == {"results": f"file://{tmp_path}/{batch.id}_results.jsonl"}
    operator.resubmit_failed = "lots"
    with pytest.raises(AirflowFailException, match="resubmit_failed must be an int >= 0, got 'lots'"):
        run_task(operator)


def test_the_batch_argument_must_name_a_batch(files_conn: EmulatorHandle, tmp_path: Path) -> None:
    with pytest.raises(AirflowFailException, match="batch must be a batch id"):
        run_task(download({"no": "id"}, tmp_path))


def test_a_cancelled_batch_keeps_what_was_done_and_counts_the_rest_as_missing(
    client: FilesClient, files_conn: EmulatorHandle, tmp_path: Path
) -> None:
    files_conn.configure(batch_duration_s=100)
    created = client.create_batch(upload_ids(client, ids(10)), CHAT)
    checked(client, created.id)
    files_conn.advance_clock(50)
    client.cancel_batch(created.id)
    files_conn.advance_clock(11)
    cancelled = wait_for(client, created.id)
    summary = run_task(download(cancelled.id, tmp_path, max_failed_fraction=0.5))
    assert (summary["status"], summary["succeeded"], summary["missing_count"]) == ("cancelled", 5, 5)
    assert summary["missing"] == ids(10)[5:] and not summary["complete"]
    assert sorted(jsonl_ids((tmp_path / f"{cancelled.id}_output.jsonl").read_bytes())) == ids(10)[:5]
    with pytest.raises(
        AirflowFailException, match=r"0 failed, 5 missing of 10\), more than max_failed_fraction=0.4"
    ):
        run_task(download(cancelled.id, tmp_path, max_failed_fraction=0.4))
