"""The upload operators reading their source from object storage: ``memory://`` and ``s3://`` on a
local S3 server (moto) that counts the bytes it sends, so each case also checks that the whole run
(validation, md5 and upload) fetches the object once, through the spool, which is gone after."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_files.demo import SAMPLE_MODEL, write_sample_requests
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.exceptions import InvalidBatchFileError
from airflow_provider_files.operators._checkpoint import as_storage_path
from airflow_provider_files.operators.files import ChunkedUploadOperator, UploadJsonlOperator
from airflow_provider_files.uploads import spool as spool_module
from tests.support import RangeCountingFileSystem

from .support import S3Bucket, downloaded_content, md5_of, run_task, task_context, upload_requests

PART_BYTES = 128 * 1024
LINES = 4000  # about 1.1 MB
FETCH_SLACK = 1.05  # a whole run may fetch at most this much more than the object's size
SPOOL_RANGE_BYTES = 64 * 1024


class Stored:
    """A batch file put in one kind of object storage, and the bytes its server sent since."""

    def __init__(self, url: str, data: bytes, sent: Callable[[], int | None]) -> None:
        self.url = url
        self.data = data
        self._sent = sent
        self._start = sent()

    def fetched(self) -> int | None:
        """Bytes the storage served since the object was put (None: not counted)."""
        now = self._sent()
        return None if now is None or self._start is None else now - self._start

    def assert_fetched_once(self) -> None:
        fetched = self.fetched()
        if fetched is not None:
            assert fetched <= FETCH_SLACK * len(self.data), (
                f"{fetched} bytes fetched for an object of {len(self.data)}"
            )


@pytest.fixture(autouse=True)
def small_spool_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranged reads of 64 KiB: the spool of a 1 MB object takes many, as a large object's would."""
    monkeypatch.setattr(spool_module, "SPOOL_RANGE_BYTES", SPOOL_RANGE_BYTES)


@pytest.fixture(autouse=True)
def spool_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``[openai_files] spool_folder`` for the test; it must be empty again after every run."""
    folder = tmp_path / "spool"
    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__SPOOL_FOLDER", str(folder))
    yield folder
    assert not folder.exists() or list(folder.iterdir()) == []
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("object-spool")]


@pytest.fixture(params=["memory", "s3"])
def stored(
    request: pytest.FixtureRequest, tmp_path: Path, memory_storage: MemoryFileSystem
) -> Callable[..., Stored]:
    """``stored(lines, tail)``: a batch file of ``lines`` requests (then ``tail``) in memory:// or in
    the local S3."""

    def put(lines: int = LINES, tail: bytes = b"") -> Stored:
        data = write_sample_requests(tmp_path / "requests.jsonl", lines).read_bytes() + tail
        if request.param == "memory":
            memory_storage.pipe_file("/bucket/in/requests.jsonl", data)
            return Stored("memory://bucket/in/requests.jsonl", data, lambda: None)
        bucket: S3Bucket = request.getfixturevalue("s3_storage")
        url = bucket.put("in/requests.jsonl", data)
        return Stored(url, data, lambda: bucket.server.bytes_sent)

    return put


def _arguments(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {"task_id": "upload", "checkpoint_folder": str(tmp_path / "ck"), **overrides}


def test_upload_jsonl_in_parts(
    files_conn: EmulatorHandle, stored: Callable[..., Stored], tmp_path: Path
) -> None:
    source = stored(LINES)
    operator = UploadJsonlOperator(
        **_arguments(tmp_path, source=source.url, single_request_max_bytes=1000, part_size_bytes=PART_BYTES)
    )

    result = run_task(operator, task_context())

    assert files_conn.file_md5(result["id"]) == md5_of(source.data)
    assert result["filename"] == "requests.jsonl"
    assert result["endpoint"] == "/v1/chat/completions"
    # validation (which takes the md5) and the parts read the spool; the endpoint and model come
    # from the validation
    source.assert_fetched_once()


def test_upload_jsonl_in_one_request(
    files_conn: EmulatorHandle, stored: Callable[..., Stored], tmp_path: Path
) -> None:
    source = stored(LINES)

    result = run_task(UploadJsonlOperator(**_arguments(tmp_path, source=source.url)), task_context())

    assert files_conn.file_md5(result["id"]) == md5_of(source.data)
    assert result["model"] == SAMPLE_MODEL
    source.assert_fetched_once()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_chunked_upload(
    files_conn: EmulatorHandle, stored: Callable[..., Stored], tmp_path: Path, concurrency: int
) -> None:
    source = stored(LINES)
    operator = ChunkedUploadOperator(
        **_arguments(
            tmp_path, source=source.url, purpose="batch", part_size_bytes=PART_BYTES, concurrency=concurrency
        )
    )

    result = run_task(operator, task_context())

    assert files_conn.file_md5(result["id"]) == md5_of(source.data)
    assert result["filename"] == "requests.jsonl"
    source.assert_fetched_once()  # the md5 and the parts read the spool


def test_split_upload(files_conn: EmulatorHandle, stored: Callable[..., Stored], tmp_path: Path) -> None:
    source = stored(LINES)
    operator = UploadJsonlOperator(**_arguments(tmp_path, source=source.url, split=True, max_lines=1500))

    result = run_task(operator, task_context())

    assert len(result) == 3
    assert downloaded_content(result, tmp_path) == source.data
    # one pass validates and splits into local shards; the endpoint comes from the first shard
    assert result[0]["endpoint"] == "/v1/chat/completions"
    source.assert_fetched_once()


@pytest.mark.filterwarnings("ignore:UPath 'countingrange' filesystem not explicitly implemented")
@pytest.mark.parametrize("operator_class", [ChunkedUploadOperator, UploadJsonlOperator])
def test_a_fetch_that_fails_mid_way_completes_nothing_and_names_the_object(
    files_conn: EmulatorHandle,
    counting_storage: RangeCountingFileSystem,
    tmp_path: Path,
    operator_class: type[ChunkedUploadOperator | UploadJsonlOperator],
) -> None:
    data = write_sample_requests(tmp_path / "requests.jsonl", LINES).read_bytes()
    counting_storage.pipe_file("bucket/in/requests.jsonl", data)
    counting_storage.fail_from_byte = len(data) // 2
    url = "countingrange://bucket/in/requests.jsonl"
    extra: dict[str, Any] = {"purpose": "batch"} if operator_class is ChunkedUploadOperator else {}
    operator = operator_class(
        **_arguments(tmp_path, source=url, part_size_bytes=PART_BYTES, single_request_max_bytes=0, **extra)
        if operator_class is UploadJsonlOperator
        else _arguments(tmp_path, source=url, part_size_bytes=PART_BYTES, **extra)
    )

    with pytest.raises(
        OSError, match=rf"fetching {url} failed after \d+ of {len(data)} bytes: .*connection reset"
    ):
        run_task(operator, task_context())

    assert files_conn.stats()["file_count"] == 0
    if operator_class is UploadJsonlOperator:  # validation reads first: nothing reached the API
        assert upload_requests(files_conn) == []
    assert counting_storage.bytes_fetched <= len(data)


def test_an_invalid_object_sends_nothing_and_leaves_no_spool(
    files_conn: EmulatorHandle, stored: Callable[..., Stored], tmp_path: Path
) -> None:
    source = stored(LINES, b'{"custom_id": "request-000000", "method": "POST"\n')

    with pytest.raises(InvalidBatchFileError, match=f"line {LINES + 1}"):
        run_task(UploadJsonlOperator(**_arguments(tmp_path, source=source.url)), task_context())

    assert upload_requests(files_conn) == []


@pytest.mark.filterwarnings("ignore:UPath 'countingrange' filesystem not explicitly implemented")
def test_on_kill_stops_the_fetch_and_removes_the_spool(
    files_conn: EmulatorHandle, counting_storage: RangeCountingFileSystem, tmp_path: Path, spool_folder: Path
) -> None:
    data = write_sample_requests(tmp_path / "requests.jsonl", LINES).read_bytes()
    counting_storage.pipe_file("bucket/in/requests.jsonl", data)
    counting_storage.hold_from_byte = 4 * PART_BYTES  # the fetch stalls after 4 parts' bytes
    operator = ChunkedUploadOperator(
        **_arguments(
            tmp_path,
            source="countingrange://bucket/in/requests.jsonl",
            purpose="batch",
            part_size_bytes=PART_BYTES,
        )
    )
    outcome: list[BaseException | None] = []

    def execute() -> None:
        try:
            run_task(operator, task_context())
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    task = threading.Thread(target=execute)
    task.start()
    deadline = time.monotonic() + 30
    while files_conn.stats()["upload_count"] == 0 or not list(spool_folder.iterdir()):
        assert time.monotonic() < deadline and task.is_alive(), outcome
        time.sleep(0.02)
    killer = threading.Thread(target=operator.on_kill)
    killer.start()
    time.sleep(0.2)
    counting_storage.released.set()  # the reads in flight end; no new one starts
    killer.join(30)
    task.join(30)

    assert not killer.is_alive() and not task.is_alive()
    assert outcome and outcome[0] is not None
    assert files_conn.stats()["file_count"] == 0
    assert counting_storage.bytes_fetched < len(data)


def test_fetched_bytes_are_counted(s3_storage: S3Bucket) -> None:
    """The S3 cases' byte counts are real: reading through a default s3fs handle, which reads
    ahead, costs several times the parts it serves."""
    data = bytes(range(256)) * 8192  # 2 MiB
    s3_storage.put("readahead.bin", data)
    before = s3_storage.server.bytes_sent

    for offset in range(0, len(data), PART_BYTES):
        with s3_storage.fs.open(f"{s3_storage.name}/readahead.bin", "rb") as handle:
            handle.seek(offset)
            handle.read(PART_BYTES)

    assert s3_storage.server.bytes_sent - before > 4 * len(data)


def test_missing_object_is_named(files_conn: EmulatorHandle, s3_storage: S3Bucket, tmp_path: Path) -> None:
    url = f"s3://{s3_storage.name}/absent.jsonl"
    with pytest.raises(FileNotFoundError, match=f"source object not found: {url}"):
        run_task(ChunkedUploadOperator(**_arguments(tmp_path, source=url, purpose="batch")), task_context())


def test_scheme_that_needs_attach_says_so() -> None:
    """fsspec has an ftp:// filesystem but no installed provider registers it with Airflow."""
    with pytest.raises(ValueError, match=r"attach it first") as caught:
        as_storage_path("ftp://host/in/requests.jsonl")
    assert 'airflow.sdk.io.attach("ftp", fs=fsspec.filesystem("ftp"))' in str(caught.value)
    assert "install the provider" not in str(caught.value)


def test_scheme_served_by_a_provider_names_it() -> None:
    with pytest.raises(ValueError, match=r"install apache-airflow-providers-google"):
        as_storage_path("gs://bucket/in/requests.jsonl")
