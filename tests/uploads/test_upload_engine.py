"""The chunked upload engine against the emulator over real HTTP: parts, md5, progress, faults, cancel."""

from __future__ import annotations

import io
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from airflow_provider_files.api import FilesClient, QuotaExceededError
from airflow_provider_files.api.bodies import BodySource
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.uploads import (
    MAX_PART_SIZE_BYTES,
    MIN_PART_SIZE_BYTES,
    ChunkedUploader,
    JsonFileCheckpointStore,
    LocalFileSource,
    OpenFileSource,
    UploadCancelledError,
    UploadError,
    UploadProgress,
    parse_size_bytes,
)
from airflow_provider_files.uploads import parts as upload_parts_module
from airflow_provider_files.uploads.limits import even_part_size

from .support import MIB, client_for, md5_file, requests_to, write_random

pytestmark = pytest.mark.timeout(60)

PART = 256 * 1024


def test_parallel_upload_sends_parts_in_order_and_md5(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(10 * MIB + 123)
    uploader = ChunkedUploader(client, part_size_bytes=MIB, concurrency=4)

    result = uploader.upload(path, purpose="batch")

    assert emulator.file_md5(result.file.id) == md5_file(path)
    assert result.md5 == md5_file(path)
    stored = emulator.stats()["files"][result.file.id]
    assert stored["md5"] == md5_file(path)  # the server checked the md5 we sent
    assert stored["bytes"] == path.stat().st_size
    assert (result.parts_total, result.parts_sent, result.parts_reused) == (11, 11, 0)
    assert result.bytes_sent == path.stat().st_size
    assert len(requests_to(emulator, "add_part")) == 11
    assert [e["route"] for e in emulator.request_log()].count("create_upload") == 1
    assert result.file.filename == "requests.jsonl" and result.file.purpose == "batch"
    assert not result.resumed and not result.reused_file


@pytest.mark.parametrize(
    ("size", "parts"),
    [(PART, 1), (PART + 1, 2), (1, 1), (3 * PART, 3)],
    ids=["exactly-one-part", "one-byte-over", "one-byte", "three-full-parts"],
)
def test_part_boundaries(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], size: int, parts: int
) -> None:
    path = make_file(size)

    result = ChunkedUploader(client, part_size_bytes=PART, concurrency=3).upload(path, purpose="batch")

    assert result.parts_total == parts
    assert len(requests_to(emulator, "add_part")) == parts
    assert emulator.file_md5(result.file.id) == md5_file(path)
    assert result.file.bytes == size


def test_create_upload_carries_name_mime_type_and_expiry(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(1000, name="data.bin")
    uploader = ChunkedUploader(client, part_size_bytes=PART, expires_after_s=7200)

    result = uploader.upload(path, purpose="user_data", filename="renamed.jsonl")

    assert result.file.filename == "renamed.jsonl"
    assert result.file.expires_at is not None and result.file.created_at is not None
    assert result.file.expires_at - result.file.created_at == 7200


def test_progress_is_monotone_and_ends_at_total(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(3 * MIB + 7)
    reports: list[UploadProgress] = []
    uploader = ChunkedUploader(
        client, part_size_bytes=PART, concurrency=4, progress=reports.append, progress_interval_s=0
    )

    uploader.upload(path, purpose="batch")

    done = [report.bytes_done for report in reports]
    assert done == sorted(done) and len(set(done)) == len(done)
    assert done[-1] == reports[-1].total_bytes == path.stat().st_size
    assert reports[-1].parts_done == reports[-1].parts_total == 13
    assert reports[-1].describe().startswith("100% ")
    assert all(report.rate_bytes_per_s >= 0 for report in reports)


def test_open_file_source_reads_each_part_through_its_own_handle(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(2 * MIB + 5)
    opened: list[int] = []

    def opener() -> IO[bytes]:
        opened.append(1)
        return open(path, "rb")

    source = OpenFileSource(opener, size=path.stat().st_size, name="remote.jsonl", fingerprint="etag-1")

    result = ChunkedUploader(client, part_size_bytes=PART, concurrency=4).upload(source, purpose="batch")

    assert emulator.file_md5(result.file.id) == md5_file(path)
    assert result.file.filename == "remote.jsonl"
    assert len(opened) == result.parts_total + 1  # one handle per part, one for the md5


def test_upload_survives_injected_faults(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(4 * MIB + 99)
    emulator.set_faults("parts:429=0.15,parts:500=0.1,parts:503=0.1,parts:drop=0.1,uploads:502=0.05", seed=3)

    result = ChunkedUploader(client, part_size_bytes=PART, concurrency=4).upload(path, purpose="batch")

    assert emulator.file_md5(result.file.id) == md5_file(path)
    assert emulator.stats()["file_count"] == 1
    faulty = [e for e in requests_to(emulator, "add_part") if e["fault"]]
    assert faulty, "the fault plan should have hit some parts"


def test_lost_complete_response_finds_the_file_instead_of_failing(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(MIB)
    emulator.set_faults("complete:drop_after=x1")

    result = ChunkedUploader(client, part_size_bytes=PART).upload(path, purpose="batch")

    assert emulator.stats()["file_count"] == 1
    assert result.file.id in emulator.stats()["files"]
    assert emulator.file_md5(result.file.id) == md5_file(path)
    statuses = [e["status"] for e in requests_to(emulator, "complete_upload")]
    assert statuses == ["dropped_after", 400]


def test_lost_complete_response_with_look_alike_files_fails_with_a_clear_message(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(MIB)
    # Two other files of the same name and size but other content, created just before.
    for seed in (7, 8):
        folder = tmp_path / f"other-{seed}"
        folder.mkdir()
        other = write_random(folder / path.name, MIB, seed=seed)
        client.create_file(other, "batch")
    emulator.set_faults("complete:drop_after=x1")

    with pytest.raises(UploadError, match="completed by an attempt whose answer was lost") as caught:
        ChunkedUploader(client, part_size_bytes=PART).upload(path, purpose="batch")

    assert "a retry uploads the file again" in str(caught.value)
    assert emulator.stats()["file_count"] == 3


def test_non_retryable_failure_cancels_the_upload(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(2 * MIB)
    emulator.set_faults("parts:quota=x1")

    with pytest.raises(QuotaExceededError):
        ChunkedUploader(client, part_size_bytes=PART, concurrency=2).upload(path, purpose="batch")

    uploads = emulator.stats()["uploads"]
    assert [u["status"] for u in uploads.values()] == ["cancelled"]
    assert emulator.stats()["file_count"] == 0


def test_failure_with_checkpoint_leaves_upload_pending(
    emulator: EmulatorHandle,
    client: FilesClient,
    make_file: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = make_file(2 * MIB)
    emulator.set_faults("parts:quota=x1")
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")

    with pytest.raises(QuotaExceededError):
        ChunkedUploader(client, part_size_bytes=PART, concurrency=2, checkpoint=store).upload(
            path, purpose="batch"
        )

    uploads = emulator.stats()["uploads"]
    assert [u["status"] for u in uploads.values()] == ["pending"]
    assert "left pending" in caplog.text


def test_request_cancel_stops_a_slow_upload_promptly(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    emulator.set_bandwidth(1.0)  # 1 MB/s per connection: the whole file would take ~4 s
    path = make_file(8 * MIB)
    uploader = ChunkedUploader(client, part_size_bytes=4 * MIB, concurrency=2)
    timer = threading.Timer(0.5, uploader.request_cancel)
    timer.start()
    started = time.monotonic()

    with pytest.raises(UploadCancelledError):
        uploader.upload(path, purpose="batch")

    assert time.monotonic() - started < 3.0
    assert [u["status"] for u in emulator.stats()["uploads"].values()] == ["cancelled"]
    assert emulator.stats()["file_count"] == 0


@pytest.mark.parametrize("part_size", [0, 1000, MIN_PART_SIZE_BYTES - 1, MAX_PART_SIZE_BYTES + 1])
def test_bad_part_size_is_refused_before_any_request(
    emulator: EmulatorHandle, client: FilesClient, part_size: int
) -> None:
    with pytest.raises(ValueError, match="part_size_bytes must be between"):
        ChunkedUploader(client, part_size_bytes=part_size)
    assert emulator.request_log() == []


@pytest.mark.parametrize("concurrency", [0, -1, 1000])
def test_bad_concurrency_is_refused(client: FilesClient, concurrency: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        ChunkedUploader(client, concurrency=concurrency)


def test_empty_file_is_refused_with_a_clear_error(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(0)
    with pytest.raises(ValueError, match="is empty"):
        ChunkedUploader(client).upload(path, purpose="batch")
    assert emulator.request_log() == []


def test_missing_file_is_refused(emulator: EmulatorHandle, client: FilesClient, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ChunkedUploader(client).upload(tmp_path / "nope.jsonl", purpose="batch")
    assert emulator.request_log() == []


def test_too_many_parts_is_refused(emulator: EmulatorHandle, client: FilesClient, tmp_path: Path) -> None:
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as handle:
        handle.truncate(10_001 * MIN_PART_SIZE_BYTES)
    with pytest.raises(ValueError, match="at most 10000"):
        ChunkedUploader(client, part_size_bytes=MIN_PART_SIZE_BYTES).upload(path, purpose="batch")
    assert emulator.request_log() == []


def test_part_size_parsing() -> None:
    assert parse_size_bytes("32MiB") == 32 * MIB
    assert parse_size_bytes("64MB") == 64_000_000
    assert parse_size_bytes("1048576") == MIB
    with pytest.raises(ValueError, match="not a size"):
        parse_size_bytes("12 parsecs")


def test_small_connection_pool_still_completes(
    emulator: EmulatorHandle, make_file: Callable[..., Path]
) -> None:
    path = make_file(2 * MIB)
    with client_for(emulator, max_connections=2) as small:
        result = ChunkedUploader(small, part_size_bytes=PART, concurrency=8).upload(path, purpose="batch")
    assert emulator.file_md5(result.file.id) == md5_file(path)


class _ForwardOnly(io.RawIOBase):
    """A stream that cannot seek, like some remote object readers."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed in close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._handle.readinto(buffer)

    def close(self) -> None:
        self._handle.close()
        super().close()


def test_open_file_source_without_seek_skips_forward(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(MIB + 3)
    source = OpenFileSource(
        lambda: io.BufferedReader(_ForwardOnly(path)),
        size=path.stat().st_size,
        name="s.jsonl",
        fingerprint="v1",
    )

    result = ChunkedUploader(client, part_size_bytes=PART, concurrency=2).upload(source, purpose="batch")

    assert emulator.file_md5(result.file.id) == md5_file(path)


class _StartRecordingSource:
    """A local file whose parts record their offset in ``starts`` when they begin streaming."""

    def __init__(self, path: Path, starts: list[int]) -> None:
        self._inner = LocalFileSource(path)
        self._starts = starts
        self.name = self._inner.name

    @property
    def size(self) -> int:
        return self._inner.size

    def fingerprint(self) -> str:
        return self._inner.fingerprint()

    def open(self) -> IO[bytes]:
        return self._inner.open()

    def range(self, offset: int, length: int) -> BodySource:
        inner = self._inner.range(offset, length)
        starts = self._starts

        class Recording:
            length = inner.length
            replayable = inner.replayable

            def chunks(self) -> Iterator[bytes]:
                starts.append(offset)
                yield from inner.chunks()

        return Recording()


def test_parts_start_streaming_in_file_order_even_when_the_first_is_slow_to_begin(
    emulator: EmulatorHandle,
    client: FilesClient,
    make_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a wide gap between starts, so that a busy machine cannot reorder two starts in a row
    monkeypatch.setattr(upload_parts_module, "START_ORDER_GAP_S", 0.1)
    path = make_file(12 * PART)
    starts: list[int] = []
    add_part = client.add_upload_part
    calls = itertools.count()

    def slow_first_part(upload_id: str, data: Any) -> Any:
        if next(calls) == 0:
            time.sleep(0.5)  # the first request to go out is held back before it is sent
        return add_part(upload_id, data)

    monkeypatch.setattr(client, "add_upload_part", slow_first_part)
    uploader = ChunkedUploader(client, part_size_bytes=PART, concurrency=8)

    result = uploader.upload(_StartRecordingSource(path, starts), purpose="batch")

    assert starts == [index * PART for index in range(12)]
    assert emulator.file_md5(result.file.id) == md5_file(path)


@pytest.mark.parametrize(
    ("size", "concurrency", "parts"),
    [
        (1024 * MIB, 8, 64),  # already whole waves of 16 MiB: unchanged
        (1100 * MIB, 8, 72),  # 69 parts of 16 MiB would leave a last wave of 5
        (40 * MIB, 8, 8),  # smaller than one wave: every connection still gets a part
        (4096 * MIB, 8, 256),
        (10 * MIB + 123, 3, 3),
        (100, 8, 1),  # the smallest part size comes first
    ],
)
def test_even_part_size_fills_every_wave(size: int, concurrency: int, parts: int) -> None:
    part_size = even_part_size(size, concurrency)
    assert MIN_PART_SIZE_BYTES <= part_size <= MAX_PART_SIZE_BYTES
    assert math.ceil(size / part_size) == parts
    assert part_size <= 16 * MIB or parts == 1


def test_the_default_part_size_makes_the_last_wave_full(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path]
) -> None:
    path = make_file(20 * MIB + 5)  # two parts of 16 MiB would leave three connections idle
    result = ChunkedUploader(client, concurrency=4).upload(path, purpose="batch")
    assert result.parts_total == 4
    sizes = sorted(entry["bytes_received"] for entry in requests_to(emulator, "add_part"))
    assert sizes[-1] - sizes[0] <= 4  # equal parts, within rounding
    assert emulator.file_md5(result.file.id) == md5_file(path)


def test_a_part_waits_for_its_predecessor_only_so_long_and_not_after_a_stop() -> None:
    order = upload_parts_module.StartOrder([3, 5, 7], gap_s=0.0, max_wait_s=0.3)
    started = time.monotonic()
    order.wait_turn(3, lambda: False)  # the first part never waits
    assert time.monotonic() - started < 0.1
    order.wait_turn(5, lambda: True)  # stopping: no wait
    assert time.monotonic() - started < 0.2
    order.wait_turn(5, lambda: False)  # part 3 never starts: part 5 goes after max_wait_s
    waited_s = time.monotonic() - started
    assert 0.3 <= waited_s < 1.5
    order.started(5)
    before = time.monotonic()
    order.wait_turn(7, lambda: False)
    assert time.monotonic() - before < 0.1
