"""Checkpoints in real DAG runs (``dag.test()`` against the emulator): removed once their task
instance has succeeded, kept after a failed try so that the retry resumes, and found by a retry on
another worker (another AIRFLOW_HOME) when the checkpoint folder is shared storage."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.utils.state import DagRunState

from airflow_provider_files.demo import example_data_folder, write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.support import files_under
from tests.support import request_routes as routes

from .support import output_of, task_states, xcom_of

CHECKPOINT_FOLDER_ENV = "AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER"
CORPUS_MB = 9  # three 4 MiB parts in example_chunked_upload


def test_a_successful_run_leaves_no_checkpoint(
    load_example_dag: Callable[[str], ModuleType],
    dag_conn: EmulatorHandle,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = write_sample_requests(tmp_path / "requests.jsonl", 300)

    dag_run = load_example_dag("example_upload_jsonl").dag.test(run_conf={"source": str(source)})

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    folder = tmp_path / "checkpoints"
    assert folder.is_dir()  # the upload kept its checkpoint here while it ran ...
    assert files_under(folder) == []  # ... and it was removed once the task succeeded
    assert "Removed 1 checkpoint(s) of this task instance" in output_of(capfd, caplog)


def test_the_example_sample_is_written_once_and_reused(
    load_example_dag: Callable[[str], ModuleType], dag_conn: EmulatorHandle
) -> None:
    dag = load_example_dag("example_upload_jsonl").dag
    conf = {"sample_requests": 40}

    first = dag.test(run_conf=conf)
    second = dag.test(run_conf=conf)

    assert first.state == second.state == DagRunState.SUCCESS
    path = xcom_of(first, "prepare_requests")
    assert xcom_of(second, "prepare_requests") == path
    assert Path(path).parent == example_data_folder()
    assert [p.name for p in example_data_folder().iterdir() if p.name.startswith("requests-40")] == [
        "requests-40.jsonl"
    ]


def _run_with_a_failed_first_try(
    module: ModuleType, emulator: EmulatorHandle, on_retry: Callable[[Any], None]
) -> Any:
    """example_chunked_upload whose first try sends every part, then fails on complete (a 500
    the connection does not retry); ``on_retry`` runs between the tries."""
    emulator.set_faults("complete_upload:500=x1")
    module.dag.task_dict["upload_file"].on_retry_callback = [on_retry]
    return module.dag.test(run_conf={"size_mb": CORPUS_MB})


def test_a_failed_try_keeps_its_checkpoint_and_the_retry_resumes(
    load_example_dag: Callable[[str], ModuleType],
    emulator: EmulatorHandle,
    use_emulator: Callable[..., None],
    tmp_path: Path,
) -> None:
    use_emulator(emulator, max_retries=0)
    folder = tmp_path / "checkpoints"
    after_failed_try: list[list[Path]] = []

    dag_run = _run_with_a_failed_first_try(
        load_example_dag("example_chunked_upload"),
        emulator,
        lambda context: after_failed_try.append(files_under(folder)),
    )

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    assert len(after_failed_try) == 1 and len(after_failed_try[0]) == 1  # kept for the retry
    sent = routes(emulator)
    assert sent.count("create_upload") == 1 and sent.count("add_part") == 3  # no part sent twice
    assert sent.count("complete_upload") == 2
    assert emulator.stats()["file_count"] == 1
    assert files_under(folder) == []  # and gone once the retry succeeded


@pytest.mark.parametrize("shared", [True, False], ids=["shared-folder", "default-local-folder"])
def test_a_retry_on_another_worker_resumes_from_a_shared_folder(
    load_example_dag: Callable[[str], ModuleType],
    emulator: EmulatorHandle,
    use_emulator: Callable[..., None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shared: bool,
) -> None:
    """The first try runs on worker A (its own AIRFLOW_HOME), the retry on worker B. With the
    checkpoint folder on shared storage (a URL, read through ObjectStoragePath) B resumes A's
    upload; with the default folder under each AIRFLOW_HOME, B cannot see it and starts over."""
    worker_a, worker_b = tmp_path / "worker-a", tmp_path / "worker-b"
    use_emulator(emulator, max_retries=0)
    shared_folder = tmp_path / "object-store" / "upload-checkpoints"
    if shared:
        monkeypatch.setenv(CHECKPOINT_FOLDER_ENV, f"file://{shared_folder}")
    else:
        monkeypatch.delenv(CHECKPOINT_FOLDER_ENV)
    monkeypatch.setenv("AIRFLOW_HOME", str(worker_a))  # restored after the test
    seen_by_retry: list[list[Path]] = []

    def move_to_worker_b(context: Any) -> None:
        seen_by_retry.append(files_under(shared_folder if shared else worker_a / "upload_checkpoints"))
        os.environ["AIRFLOW_HOME"] = str(worker_b)

    dag_run = _run_with_a_failed_first_try(
        load_example_dag("example_chunked_upload"), emulator, move_to_worker_b
    )

    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    assert len(seen_by_retry) == 1 and len(seen_by_retry[0]) == 1  # the first try's checkpoint
    sent = routes(emulator)
    file = xcom_of(dag_run, "upload_file")
    assert file["bytes"] == CORPUS_MB * 1_000_000
    if shared:
        assert sent.count("create_upload") == 1 and sent.count("add_part") == 3  # resumed
        assert emulator.stats()["file_count"] == 1
        assert files_under(shared_folder) == []
    else:
        assert sent.count("create_upload") == 2 and sent.count("add_part") == 6  # started over
        assert files_under(worker_a / "upload_checkpoints")  # left behind on worker A
    assert (
        not (worker_b / "upload_checkpoints").exists() or files_under(worker_b / "upload_checkpoints") == []
    )
