from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from airflow_provider_files.jsonl import (
    BatchLimits,
    InvalidBatchFileError,
    ShardInfo,
    _reading,
    shard_batch_file,
    validate_batch_file,
)

from .support import MODEL, line, lines, write


def varied_lines(count: int) -> bytes:
    """Lines of different sizes (about 120 to 700 bytes)."""
    return b"".join(
        line(
            index,
            body={"model": MODEL, "messages": [{"role": "user", "content": "w" * ((index * 37) % 600)}]},
        )
        for index in range(1, count + 1)
    )


def assert_shards_are_valid_batches(shards: list[ShardInfo], max_lines: int, max_bytes: int) -> None:
    limits = BatchLimits(max_lines=max_lines, max_bytes=max_bytes)
    for shard in shards:
        data = Path(shard.path).read_bytes()
        assert (len(data), data.count(b"\n")) == (shard.bytes, shard.lines)
        assert data.endswith(b"\n")
        report = validate_batch_file(shard.path, limits=limits)
        assert report.valid, report.summary()


def test_split_by_lines(tmp_path: Path) -> None:
    source = write(tmp_path / "requests.jsonl", lines(23))
    shards = shard_batch_file(source, tmp_path / "out", max_lines=5)
    assert [shard.lines for shard in shards] == [5, 5, 5, 5, 3]
    assert [shard.first_line for shard in shards] == [1, 6, 11, 16, 21]
    assert [Path(shard.path).name for shard in shards] == [
        f"requests-0000{number}.jsonl" for number in range(1, 6)
    ]
    assert b"".join(Path(shard.path).read_bytes() for shard in shards) == source.read_bytes()
    assert_shards_are_valid_batches(shards, 5, 10**9)


def test_split_by_bytes_is_greedy_and_never_cuts_a_line(tmp_path: Path) -> None:
    data = varied_lines(60)
    max_bytes = 2000
    shards = shard_batch_file(io.BytesIO(data), tmp_path, max_bytes=max_bytes)
    assert len(shards) > 5
    assert b"".join(Path(shard.path).read_bytes() for shard in shards) == data
    assert_shards_are_valid_batches(shards, 50_000, max_bytes)
    source_lines = data.split(b"\n")[:-1]
    for shard, following in itertools.pairwise(shards):
        assert shard.bytes <= max_bytes
        # the next line would not have fitted
        assert shard.bytes + len(source_lines[following.first_line - 1]) + 1 > max_bytes
    for shard in shards:
        for text in Path(shard.path).read_bytes().splitlines():
            assert orjson.loads(text)["method"] == "POST"


def test_split_by_lines_and_bytes_together(tmp_path: Path) -> None:
    data = varied_lines(40)
    shards = shard_batch_file(io.BytesIO(data), tmp_path, max_lines=7, max_bytes=3000, prefix="part")
    assert all(shard.lines <= 7 and shard.bytes <= 3000 for shard in shards)
    assert sum(shard.lines for shard in shards) == 40
    assert b"".join(Path(shard.path).read_bytes() for shard in shards) == data
    assert Path(shards[0].path).name == "part-00001.jsonl"


def test_a_line_exactly_max_bytes_with_newline_fits(tmp_path: Path) -> None:
    first = line(1)
    shards = shard_batch_file(io.BytesIO(first + line(2)), tmp_path, max_bytes=len(first))
    assert [shard.lines for shard in shards] == [1, 1]


@pytest.mark.parametrize("chunk_bytes", [1, 13, 500, 1 << 20])
def test_chunk_size_does_not_change_the_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    monkeypatch.setattr(_reading, "READ_CHUNK_BYTES", chunk_bytes)
    data = varied_lines(30)
    shards = shard_batch_file(io.BytesIO(data), tmp_path, max_lines=4, max_bytes=1500)
    expected = shard_batch_file(io.BytesIO(data), tmp_path / "reference", max_lines=4, max_bytes=1500)
    assert [(shard.lines, shard.bytes, shard.first_line) for shard in shards] == [
        (shard.lines, shard.bytes, shard.first_line) for shard in expected
    ]
    assert b"".join(Path(shard.path).read_bytes() for shard in shards) == data


def test_small_source_gives_one_copy(tmp_path: Path) -> None:
    data = lines(3)
    (shard,) = shard_batch_file(io.BytesIO(data), tmp_path)
    assert Path(shard.path).read_bytes() == data
    assert Path(shard.path).name == "batch-00001.jsonl"
    assert shard == ShardInfo(str(tmp_path / "batch-00001.jsonl"), 3, len(data), 1)


def test_crlf_kept_and_final_newline_added(tmp_path: Path) -> None:
    data = lines(5).replace(b"\n", b"\r\n")[:-2]  # CRLF, and no final line ending
    shards = shard_batch_file(io.BytesIO(data), tmp_path, max_lines=2)
    joined = b"".join(Path(shard.path).read_bytes() for shard in shards)
    assert joined == data + b"\n"
    assert Path(shards[0].path).read_bytes() == lines(2).replace(b"\n", b"\r\n")


def test_destination_folder_is_created(tmp_path: Path) -> None:
    shards = shard_batch_file(io.BytesIO(lines(2)), str(tmp_path / "a" / "b"))
    assert Path(shards[0].path).parent == tmp_path / "a" / "b"


class MemoryFile(io.BytesIO):
    def __init__(self, store: dict[str, bytes], key: str) -> None:
        super().__init__()
        self._store, self._key = store, key

    def close(self) -> None:
        self._store[self._key] = self.getvalue()
        super().close()


class MemoryFolder:
    """A pathlib-like object-store folder, as ObjectStoragePath would be."""

    def __init__(self, store: dict[str, bytes], key: str = "mem://bucket/shards") -> None:
        self.store, self.key = store, key

    def __truediv__(self, name: str) -> MemoryFolder:
        return MemoryFolder(self.store, f"{self.key}/{name}")

    def open(self, mode: str) -> MemoryFile:
        assert mode == "wb"
        return MemoryFile(self.store, self.key)

    def unlink(self) -> None:
        self.store.pop(self.key, None)

    def __str__(self) -> str:
        return self.key


def test_object_store_like_destination() -> None:
    store: dict[str, bytes] = {}
    shards = shard_batch_file(io.BytesIO(lines(5)), MemoryFolder(store), max_lines=2, prefix="job")
    assert [shard.path for shard in shards] == [
        f"mem://bucket/shards/job-0000{number}.jsonl" for number in (1, 2, 3)
    ]
    assert b"".join(store[shard.path] for shard in shards) == lines(5)


def test_airflow_object_storage_path_destination(tmp_path: Path) -> None:
    object_storage = pytest.importorskip("airflow.sdk").ObjectStoragePath
    (tmp_path / "out").mkdir()
    source = write(tmp_path / "in.jsonl", lines(5))
    shards = shard_batch_file(
        object_storage(f"file://{source}"), object_storage(f"file://{tmp_path / 'out'}"), max_lines=3
    )
    assert [shard.lines for shard in shards] == [3, 2]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["in-00001.jsonl", "in-00002.jsonl"]


@pytest.mark.parametrize(
    ("data", "rule", "line_number"),
    [
        (lines(39) + line(3) + lines(10, start=41), "duplicate_custom_id", 40),  # across shards
        (lines(25) + b"{broken\n" + lines(5, start=27), "invalid_json", 26),
        (lines(12) + line(13, url="/v1/embeddings") + lines(2, start=14), "mixed_endpoints", 13),
        (lines(12) + line(13, body={"model": "x", "messages": []}), "mixed_models", 13),
        (b"\xef\xbb\xbf" + lines(3), "bom", 1),
        (b"", "empty_file", None),
    ],
)
def test_invalid_source_raises_and_leaves_no_shards(
    tmp_path: Path, data: bytes, rule: str, line_number: int | None
) -> None:
    store: dict[str, bytes] = {}
    for destination in (tmp_path / "out", MemoryFolder(store)):
        with pytest.raises(InvalidBatchFileError) as raised:
            shard_batch_file(io.BytesIO(data), destination, max_lines=10)
        assert [(error.line, error.rule) for error in raised.value.report.errors] == [(line_number, rule)]
    assert not (tmp_path / "out").exists()  # not even an empty folder is left (issue 12 item 1)
    assert store == {}


def test_line_larger_than_a_shard_is_an_error(tmp_path: Path) -> None:
    big = line(2, body={"model": MODEL, "messages": [{"content": "x" * 3000}]})
    with pytest.raises(InvalidBatchFileError) as raised:
        shard_batch_file(io.BytesIO(lines(1) + big + line(3)), tmp_path, max_bytes=1000)
    assert [(error.line, error.rule) for error in raised.value.report.errors] == [(2, "line_too_long")]
    assert list(tmp_path.iterdir()) == []


def test_invalid_lines_are_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reading, "READ_CHUNK_BYTES", 13)
    store: dict[str, bytes] = {}
    written: list[bytes] = []

    class RecordingFolder(MemoryFolder):
        def __truediv__(self, name: str) -> Any:
            return RecordingFolder(self.store, f"{self.key}/{name}")

        def open(self, mode: str) -> MemoryFile:
            handle = super().open(mode)
            original_close = handle.close

            def close() -> None:
                written.append(handle.getvalue())
                original_close()

            handle.close = close  # type: ignore[method-assign]
            return handle

    with pytest.raises(InvalidBatchFileError):
        shard_batch_file(
            io.BytesIO(lines(3) + b'{"bad": 1}\n' + lines(3, start=5)), RecordingFolder(store), max_lines=2
        )
    assert written and not any(b"bad" in data for data in written)
    assert store == {}


def test_write_failure_removes_partial_shards(tmp_path: Path) -> None:
    store: dict[str, bytes] = {}

    class BrokenFolder(MemoryFolder):
        def __truediv__(self, name: str) -> Any:
            if name.endswith("00003.jsonl"):
                raise OSError("disk full")
            return BrokenFolder(self.store, f"{self.key}/{name}")

    with pytest.raises(OSError, match="disk full"):
        shard_batch_file(io.BytesIO(lines(10)), BrokenFolder(store), max_lines=3)
    assert store == {}


@pytest.mark.parametrize("kwargs", [{"max_lines": 0}, {"max_bytes": 0}, {"prefix": ""}, {"prefix": "a/b"}])
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        shard_batch_file(io.BytesIO(lines(2)), tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []
