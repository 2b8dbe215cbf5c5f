"""collect_results over real HTTP against the emulator: files written, every custom_id accounted for."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import pytest

from airflow_provider_files.api import Batch, FilesClient, NotFoundError
from airflow_provider_files.api.errors import SourceNotReplayableError
from airflow_provider_files.batches.collect import (
    CollectedResults,
    ResultsNotCollectableError,
    collect_results,
    delete_files,
)
from airflow_provider_files.emulator.testing import EmulatorHandle

from .support import (
    CHAT,
    LONG_DURATION_S,
    Folder,
    checked,
    client_for,
    ids,
    jsonl,
    jsonl_ids,
    request_line,
    run_batch,
    upload_ids,
    wait_for,
)


@pytest.fixture
def client(emulator: EmulatorHandle) -> Iterator[FilesClient]:
    emulator.configure(batch_duration_s=0.2)
    with client_for(emulator) as files_client:
        yield files_client


def collect(
    client: FilesClient, batch: Batch, tmp_path: Path, **options: Any
) -> tuple[CollectedResults, Folder]:
    dest = tmp_path / "dest"
    work = tmp_path / "work"
    dest.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    folder = Folder(dest)
    return collect_results(client, batch, folder, work_dir=work, **options), folder


class FollowUp:
    """A ``run_round`` that uploads the subset, creates the batch and waits; first it applies
    ``settings`` to the emulator (the outage that made requests fail is over).

    :attr sent: ``(round, custom_ids, batch_id)`` of each follow-up.
    """

    def __init__(self, client: FilesClient, emulator: EmulatorHandle | None = None, **settings: Any) -> None:
        self.client = client
        self.emulator = emulator
        self.settings = settings
        self.sent: list[tuple[int, list[str], str]] = []

    def __call__(self, number: int, path: Path, original: Batch) -> Batch:
        if self.emulator is not None and self.settings:
            self.emulator.configure(**self.settings)
        file_id = self.client.create_file(path, "batch").id
        batch = self.client.create_batch(file_id, original.endpoint, metadata={"round": str(number)})
        self.sent.append((number, jsonl_ids(path.read_bytes()), batch.id))
        return wait_for(self.client, batch.id)


def test_completed_batch_writes_both_files_and_accounts_every_id(client: FilesClient, tmp_path: Path) -> None:
    batch = run_batch(client, ids(20))
    collected, folder = collect(client, batch, tmp_path)
    assert collected.files == {"output": f"{batch.id}_output.jsonl", "errors": f"{batch.id}_errors.jsonl"}
    output = folder.read(collected.files["output"])
    assert output == client_content(client, batch.output_file_id)  # byte for byte as served
    assert sorted(jsonl_ids(output)) == sorted(ids(20)) and folder.read(collected.files["errors"]) == b""
    summary = collected.summary
    assert summary.complete and (summary.total_input, summary.succeeded, summary.failed) == (20, 20, 0)
    rows = [line["response"]["body"]["usage"] for line in jsonl(output)]
    assert summary.usage.input_tokens == sum(u["prompt_tokens"] for u in rows) > 0
    assert summary.usage.output_tokens == sum(u["completion_tokens"] for u in rows) > 0
    assert summary.usage.cached_tokens == sum(u["prompt_tokens_details"]["cached_tokens"] for u in rows)
    assert batch.usage is not None
    assert collected.batch_usage() == {
        "input_tokens": batch.usage["input_tokens"],
        "output_tokens": batch.usage["output_tokens"],
        "cached_tokens": batch.usage["input_tokens_details"]["cached_tokens"],
        "total_tokens": batch.usage["input_tokens"] + batch.usage["output_tokens"],
    }
    assert collected.problems(max_failed_fraction=0.0) == []
    data = collected.to_dict()
    assert orjson.loads(orjson.dumps(data)) == data
    assert (data["batch_id"], data["status"], data["succeeded"], data["rounds"][0]["requests"]) == (
        batch.id,
        "completed",
        20,
        20,
    )


def client_content(client: FilesClient, file_id: str | None) -> bytes:
    assert file_id is not None
    buffer = io.BytesIO()
    client.download_file(file_id, buffer)
    return buffer.getvalue()


def test_request_errors_land_in_the_error_file_and_are_counted(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(40))
    collected, folder = collect(client, batch, tmp_path)
    errors = jsonl(folder.read(collected.files["errors"]))
    outputs = jsonl(folder.read(collected.files["output"]))
    summary = collected.summary
    assert 0 < len(errors) == summary.failed == summary.error_lines < 40
    assert summary.succeeded == len(outputs) == 40 - len(errors) and summary.complete
    codes: dict[str, int] = {}
    for line in errors:
        codes[line["error"]["code"]] = codes.get(line["error"]["code"], 0) + 1
    assert summary.error_codes == dict(sorted(codes.items(), key=lambda item: (-item[1], item[0])))
    assert set(summary.retryable) == {line["custom_id"] for line in errors}
    assert collected.problems() == []
    (problem,) = collected.problems(max_failed_fraction=0.05)
    assert f"{len(errors):,} failed, 0 missing of 40" in problem and "max_failed_fraction=0.05" in problem


def test_follow_up_round_resubmits_the_retryable_failures_and_merges(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(40))
    first_errors = set(jsonl_ids(client_content(client, batch.error_file_id)))
    run_round = FollowUp(client, emulator, batch_request_error_rate=0.0)
    collected, folder = collect(client, batch, tmp_path, resubmit_rounds=2, run_round=run_round)
    ((number, sent, follow_id),) = run_round.sent
    assert number == 2 and set(sent) == first_errors
    assert sent == [i for i in ids(40) if i in first_errors]  # input order, the input's own lines
    assert collected.files == {"results": f"{batch.id}_results.jsonl"}
    lines = jsonl(folder.read(collected.files["results"]))
    assert sorted(line["custom_id"] for line in lines) == sorted(ids(40))  # one line per custom_id
    assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in lines)
    summary = collected.summary
    assert summary.complete and (summary.succeeded, summary.failed) == (40, 0)
    assert [(r.round, r.batch.id, r.requests) for r in collected.rounds] == [
        (1, batch.id, 40),
        (2, follow_id, len(first_errors)),
    ]
    assert collected.to_dict()["rounds"][0]["resubmitted"] == len(first_errors)


def test_requests_that_keep_failing_keep_one_line_each_after_the_last_round(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_request_error_rate=0.3, batch_seed=3)  # the same ids fail every round
    batch = run_batch(client, ids(30))
    failing = set(jsonl_ids(client_content(client, batch.error_file_id)))
    run_round = FollowUp(client)
    collected, folder = collect(client, batch, tmp_path, resubmit_rounds=2, run_round=run_round)
    assert [number for number, _, _ in run_round.sent] == [2, 3]
    lines = jsonl(folder.read(collected.files["results"]))
    assert sorted(line["custom_id"] for line in lines) == sorted(ids(30))
    assert {line["custom_id"] for line in lines if line["error"] is not None} == failing
    assert collected.summary.failed == len(failing) and collected.summary.complete
    assert len(collected.rounds) == 3


def test_expired_batch_keeps_its_output_and_resubmits_only_the_expired(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S, batch_expire_after_s=50)
    created = client.create_batch(upload_ids(client, ids(10)), CHAT)
    checked(client, created.id)
    emulator.advance_clock(50)
    expired = wait_for(client, created.id)
    assert expired.status == "expired"
    alone, _ = collect(client, expired, tmp_path / "alone")
    assert (alone.summary.succeeded, alone.summary.failed) == (5, 5)
    assert alone.summary.error_codes == {"batch_expired": 5} and len(alone.summary.retryable) == 5

    run_round = FollowUp(client, emulator, batch_duration_s=0.2, batch_expire_after_s=None)
    collected, folder = collect(client, expired, tmp_path / "rounds", resubmit_rounds=1, run_round=run_round)
    ((_, sent, _),) = run_round.sent
    assert sent == ids(10)[5:]  # what was paid for is not sent again
    lines = jsonl(folder.read(collected.files["results"]))
    assert sorted(line["custom_id"] for line in lines) == sorted(ids(10))
    assert collected.summary.succeeded == 10 and collected.summary.complete


def test_cancelled_batch_keeps_its_partial_output_and_counts_the_rest_as_missing(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S)
    created = client.create_batch(upload_ids(client, ids(10)), CHAT)
    checked(client, created.id)
    emulator.advance_clock(50)
    client.cancel_batch(created.id)
    emulator.advance_clock(11)
    cancelled = wait_for(client, created.id)
    assert cancelled.status == "cancelled"
    collected, folder = collect(client, cancelled, tmp_path)
    assert sorted(jsonl_ids(folder.read(collected.files["output"]))) == ids(10)[:5]
    summary = collected.summary
    assert summary.missing == tuple(ids(10)[5:]) and summary.succeeded == 5
    assert summary.failed_fraction == 0.5
    assert collected.partial and collected.problems() == []  # missing after a cancel is expected
    (problem,) = collected.problems(max_failed_fraction=0.2)
    assert "0 failed, 5 missing of 10" in problem
    assert summary.ids_to_resubmit() == ids(10)[5:]


def test_input_order(client: FilesClient, emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.configure(batch_request_error_rate=0.3, batch_seed=5)
    wanted = [f"id-{index:03d}" for index in (7, 3, 11, 0, 9, 1, 5, 2, 8, 4, 10, 6)]
    batch = run_batch(client, wanted)
    collected, folder = collect(client, batch, tmp_path, order="input")
    assert jsonl_ids(folder.read(collected.files["results"])) == wanted
    assert collected.summary.complete and collected.summary.failed > 0


def test_an_id_of_the_input_without_result_is_named(client: FilesClient, tmp_path: Path) -> None:
    batch = run_batch(client, ids(5))
    local_input = tmp_path / "input.jsonl"
    local_input.write_bytes(b"".join(request_line(i) for i in [*ids(5), "lost-1", "lost-2"]))
    collected, _ = collect(client, batch, tmp_path, input_source=local_input)
    (problem,) = collected.problems()
    assert problem == "custom_id check failed: 2 missing (lost-1, lost-2)"


def test_unfinished_and_failed_batches_are_refused(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S)
    running = client.create_batch(upload_ids(client, ids(3)), CHAT)
    with pytest.raises(ResultsNotCollectableError, match=rf"batch {running.id} is validating, not finished"):
        collect(client, running, tmp_path)
    emulator.configure(batch_duration_s=0.2)
    bad = client.create_file(request_line("a") + b"{not json\n", "batch", filename="bad.jsonl").id
    failed = wait_for(client, client.create_batch(bad, CHAT).id)
    assert failed.status == "failed"
    with pytest.raises(
        ResultsNotCollectableError, match=rf"batch {failed.id} failed, it has no results \(line 2"
    ):
        collect(client, failed, tmp_path)


def test_a_gone_input_file_is_a_clear_error_unless_a_copy_is_given(
    client: FilesClient, tmp_path: Path
) -> None:
    batch = run_batch(client, ids(4))
    client.delete_file(batch.input_file_id)
    with pytest.raises(ResultsNotCollectableError, match="pass input_source"):
        collect(client, batch, tmp_path)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(b"".join(request_line(i) for i in ids(4)))
    collected, _ = collect(client, batch, tmp_path, input_source=copy)
    assert collected.summary.complete and collected.summary.succeeded == 4


def test_transient_errors_on_the_downloads_do_not_count_a_line_twice(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    batch = run_batch(client, ids(12))
    emulator.set_faults("file_content:500=x1,file_content:drop=x1")
    collected, folder = collect(client, batch, tmp_path)
    assert collected.summary.complete and collected.summary.output_lines == 12
    assert sorted(jsonl_ids(folder.read(collected.files["output"]))) == sorted(ids(12))


class CutOnce(FilesClient):
    """Cuts the first download of a result file midway, as a connection lost mid-body would."""

    cuts = 0

    def download_file(self, file_id: str, destination: Any) -> int:
        if self.cuts == 0 and not isinstance(destination, (str, Path)):
            self.cuts += 1
            buffer = io.BytesIO()
            super().download_file(file_id, buffer)
            half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
            cast_io: IO[bytes] = destination
            cast_io.write(half)
            raise SourceNotReplayableError("the download failed midway and the destination cannot be rewound")
        return super().download_file(file_id, destination)


def test_a_download_cut_midway_starts_the_round_again(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    batch = run_batch(client, ids(30))
    cutting = CutOnce(client.settings)
    try:
        collected, folder = collect(cutting, batch, tmp_path)
    finally:
        cutting.close()
    assert cutting.cuts == 1
    assert collected.summary.complete and collected.summary.output_lines == 30
    assert folder.read(collected.files["output"]) == client_content(client, batch.output_file_id)


def test_delete_files_removes_every_file_of_every_round(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(batch_request_error_rate=0.3, batch_seed=3)
    batch = run_batch(client, ids(20))
    collected, _ = collect(client, batch, tmp_path, resubmit_rounds=1, run_round=FollowUp(client))
    file_ids = collected.file_ids()
    # round 1: input, output, error; round 2 (the same ids fail again): input, error
    assert len(file_ids) == 5 and collected.rounds[1].batch.output_file_id is None
    client.delete_file(file_ids[0])  # already gone counts as deleted
    assert delete_files(client, file_ids) == file_ids
    for file_id in file_ids:
        with pytest.raises(NotFoundError):
            client.retrieve_file(file_id)


def test_memory_stays_flat_whatever_the_size_of_the_result_files(
    client: FilesClient, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """About 40 MB of results (10,000 lines of 4 KB), in input order (so through the work folder
    and the merge too): the peak of Python allocations stays a small fraction of it."""
    emulator.configure(batch_duration_s=0.5)
    wanted = ids(10_000)
    batch = run_batch(client, wanted, max_tokens=1000)
    assert batch.status == "completed"
    tracemalloc.start()
    try:
        collected, _ = collect(client, batch, tmp_path, order="input")
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    results = tmp_path / "dest" / collected.files["results"]
    size_bytes = results.stat().st_size
    assert size_bytes > 40_000_000 and collected.summary.succeeded == 10_000
    assert peak_bytes < 12_000_000, f"peak {peak_bytes:,} bytes for {size_bytes:,} bytes of results"
    with results.open("rb") as handle:
        assert [orjson.loads(line)["custom_id"] for line in handle] == wanted


def test_the_batch_rules_import_no_airflow() -> None:
    import ast

    import airflow_provider_files.batches as package

    folder = Path(package.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            assert not [n for n in names if n == "airflow" or n.startswith("airflow.")], path.name
