"""Sharding never loses data (issue 12 item 1): the source is never written over, shards of an
earlier run are never silently mixed with new ones, and a failed run leaves the destination as it
was (shards are written under temporary names and renamed at the end)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from airflow_provider_files.cli import main
from airflow_provider_files.jsonl import InvalidBatchFileError, shard_batch_file

from .support import line, lines, write


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` (hidden ones included) with its content."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def earlier_run(folder: Path, count: int = 30, max_lines: int = 10) -> dict[str, bytes]:
    """Shards ``count`` requests into ``folder`` with prefix ``batch``; returns the folder's content."""
    shard_batch_file(io.BytesIO(lines(count)), folder, max_lines=max_lines, prefix="batch")
    return snapshot(folder)


@pytest.mark.parametrize("replace", [False, True])
def test_resharding_a_shard_into_its_own_folder_is_refused(tmp_path: Path, replace: bool) -> None:
    out = tmp_path / "out"
    before = earlier_run(out)
    source = out / "batch-00001.jsonl"
    with pytest.raises(ValueError, match="is the source"):
        shard_batch_file(source, out, max_lines=5, prefix="batch", replace=replace)
    assert snapshot(out) == before


def test_a_link_to_a_shard_is_recognised_as_the_source(tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = earlier_run(out)
    link = tmp_path / "link.jsonl"
    link.symlink_to(out / "batch-00002.jsonl")
    hard = tmp_path / "hard.jsonl"
    os.link(out / "batch-00003.jsonl", hard)
    for source in (link, hard, str(hard)):
        with pytest.raises(ValueError, match="is the source"):
            shard_batch_file(source, out, max_lines=3, prefix="batch", replace=True)
    # an open file is compared by inode
    with (out / "batch-00003.jsonl").open("rb") as stream, pytest.raises(ValueError, match="is the source"):
        shard_batch_file(stream, str(out), max_lines=3, prefix="batch", replace=True)
    assert snapshot(out) == before


def test_cli_reshard_into_own_folder_exits_2_and_keeps_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    before = earlier_run(out)
    source = str(out / "batch-00001.jsonl")
    for extra in ([], ["--replace"]):
        assert main(["shard", source, str(out), "--prefix", "batch", "--max-lines", "5", *extra]) == 2
        assert "is the source" in capsys.readouterr().err
    assert snapshot(out) == before


def test_destination_with_shards_of_an_earlier_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = earlier_run(out)
    with pytest.raises(FileExistsError, match=r"3 shard\(s\) named batch-NNNNN.jsonl.*replace") as raised:
        shard_batch_file(io.BytesIO(lines(12, start=100)), out, max_lines=10, prefix="batch")
    assert "batch-00001.jsonl" in str(raised.value)
    assert snapshot(out) == before
    # another prefix in the same folder is fine
    other = shard_batch_file(io.BytesIO(lines(3)), out, prefix="other")
    assert [Path(shard.path).name for shard in other] == ["other-00001.jsonl"]


def test_replace_removes_the_old_shards(tmp_path: Path) -> None:
    out = tmp_path / "out"
    earlier_run(out)  # 3 shards, 30 requests
    new = lines(12, start=100)
    shards = shard_batch_file(io.BytesIO(new), out, max_lines=10, prefix="batch", replace=True)
    assert [Path(shard.path).name for shard in shards] == ["batch-00001.jsonl", "batch-00002.jsonl"]
    content = snapshot(out)
    assert sorted(content) == ["batch-00001.jsonl", "batch-00002.jsonl"]
    assert b"".join(content.values()) == new  # 12 requests, no old one left for a glob to send again


def test_cli_replace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    earlier_run(out)
    source = write(tmp_path / "new.jsonl", lines(4))
    assert main(["shard", str(source), str(out), "--prefix", "batch"]) == 2
    assert "--replace" in capsys.readouterr().err
    assert main(["shard", str(source), str(out), "--prefix", "batch", "--replace"]) == 0
    assert snapshot(out) == {"batch-00001.jsonl": lines(4)}


@pytest.mark.parametrize("replace", [False, True])
def test_invalid_input_leaves_the_destination_as_it_was(tmp_path: Path, replace: bool) -> None:
    out = tmp_path / "out"
    before = earlier_run(out) if replace else {}
    out.mkdir(exist_ok=True)
    invalid = lines(25, start=200) + b"{broken\n" + lines(5, start=300)  # fails after 2 shards
    with pytest.raises(InvalidBatchFileError):
        shard_batch_file(io.BytesIO(invalid), out, max_lines=10, prefix="batch", replace=replace)
    assert snapshot(out) == before  # old shards intact, no temporary file left


def test_invalid_input_creates_no_folder(tmp_path: Path) -> None:
    invalid = lines(25) + line(3)  # duplicate custom_id on line 26, after two shards
    with pytest.raises(InvalidBatchFileError):
        shard_batch_file(io.BytesIO(invalid), tmp_path / "a" / "b" / "c", max_lines=10)
    assert list(tmp_path.iterdir()) == []
    assert main(["shard", "/dev/zero", str(tmp_path / "zero")]) == 1  # a line past the cap
    assert list(tmp_path.iterdir()) == []


class WatchingStream(io.BytesIO):
    """A source that records which files the destination holds each time it is read."""

    def __init__(self, data: bytes, folder: Path) -> None:
        super().__init__(data)
        self.folder = folder
        self.seen: set[str] = set()

    def read(self, size: int | None = -1, /) -> bytes:
        if self.folder.exists():
            self.seen.update(path.name for path in self.folder.iterdir())
        return super().read(size)


def test_shards_get_their_names_only_at_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_files.jsonl import _reading

    monkeypatch.setattr(_reading, "READ_CHUNK_BYTES", 500)
    out = tmp_path / "out"
    stream = WatchingStream(lines(40), out)
    shards = shard_batch_file(stream, out, max_lines=10)
    assert len(shards) == 4
    assert stream.seen and not any(name.endswith(".jsonl") for name in stream.seen)
    assert all(name.startswith(".batch-0000") and name.endswith(".tmp") for name in stream.seen)
    assert sorted(snapshot(out)) == [f"batch-0000{number}.jsonl" for number in (1, 2, 3, 4)]
