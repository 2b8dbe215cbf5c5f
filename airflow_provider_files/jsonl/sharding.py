"""Splitting an oversize batch file into batch-sized files, streaming.

Decisions:

* The source is **validated while it is split**, with the same rules as
  :func:`~airflow_provider_files.jsonl.validation.validate_batch_file` except the whole-file limits:
  one endpoint and one model across the whole source, and ``custom_id`` unique across the whole
  source (so the outputs of all shards can still be joined on it; memory grows by about 100 bytes
  per request). Lines are checked before they are written, so an invalid line never reaches a
  shard. On the first error writing stops, the rest of the source is still checked for the
  report, the shards already written are deleted (best effort) and
  :class:`~airflow_provider_files.jsonl.validation.InvalidBatchFileError` is raised.
* Lines are copied byte for byte (CRLF endings included), never cut and never reordered. The only
  change: a last line without a newline gets one, so every shard ends with ``\\n``. With a source
  that ends with a newline, the shards concatenated in order equal the source.
* Shards are named ``<prefix>-00001.jsonl``, ``<prefix>-00002.jsonl``, ...; the default prefix is
  the source's file name without ``.jsonl``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Any, Protocol, Union

from airflow_provider_files.jsonl._reading import BatchSource, LineChunks, open_source, source_name
from airflow_provider_files.jsonl.validation import (
    BATCH_ENDPOINTS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_LINES,
    UTF8_BOM,
    BatchChecker,
    BatchLimits,
    InvalidBatchFileError,
    ValidationReport,
    file_level_checks,
    strip_bom,
)

SHARD_NUMBER_DIGITS = 5


class ShardFolder(Protocol):
    """A pathlib-like folder: ``folder / name`` gives a path with ``open("wb")``.

    ``pathlib.Path`` and Airflow's ``ObjectStoragePath`` both fit, so shards can go to a local
    folder or to s3://, gs://, ... without this module importing Airflow.
    """

    def __truediv__(self, name: str, /) -> Any: ...


ShardDestination = Union[str, "os.PathLike[str]", ShardFolder]


@dataclass(frozen=True)
class ShardInfo:
    """One written shard.

    :param path: where the shard was written (``str`` of the path, e.g. ``s3://bucket/x-00001.jsonl``).
    :param lines: number of requests in the shard.
    :param bytes: size of the shard in bytes.
    :param first_line: line number in the source of the shard's first request.
    """

    path: str
    lines: int
    bytes: int
    first_line: int


class _ShardWriter:
    """Opens shard files one after another and keeps count of what each one holds."""

    def __init__(self, folder: Any, prefix: str) -> None:
        self._folder = folder
        self._prefix = prefix
        self._file: IO[bytes] | None = None
        self._path: Any = None
        self._lines = 0
        self._bytes = 0
        self._first_line = 0
        self.written_paths: list[Any] = []
        self.shards: list[ShardInfo] = []

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def fits(self, lines: int, size: int, max_lines: int, max_bytes: int) -> bool:
        return self._file is not None and self._lines + lines <= max_lines and self._bytes + size <= max_bytes

    def start(self, first_line: int) -> None:
        self.close()
        name = f"{self._prefix}-{len(self.shards) + 1:0{SHARD_NUMBER_DIGITS}d}.jsonl"
        self._path = self._folder / name
        self.written_paths.append(self._path)
        self._file = self._path.open("wb")
        self._lines, self._bytes, self._first_line = 0, 0, first_line

    def write(self, lines: list[bytes], size: int) -> None:
        """Write ``lines`` (without newlines), whose total size with newlines is ``size``."""
        assert self._file is not None
        self._file.write(b"\n".join(lines))
        self._file.write(b"\n")
        self._lines += len(lines)
        self._bytes += size

    def close(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        self.shards.append(ShardInfo(str(self._path), self._lines, self._bytes, self._first_line))

    def discard(self) -> None:
        """Close the current shard and delete every shard written so far (best effort)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
        for path in self.written_paths:
            # Cleanup must not hide the error that caused it.
            with contextlib.suppress(Exception):
                path.unlink()
        self.written_paths.clear()
        self.shards.clear()


_LOCAL_PATH_TYPES = (Path, type(Path()))


def _shard_folder(destination_dir: ShardDestination) -> Any:
    """The folder to write into; a local folder is created if missing (object stores need no folders)."""
    if isinstance(destination_dir, str) or type(destination_dir) in _LOCAL_PATH_TYPES:
        folder = Path(os.fspath(destination_dir))  # type: ignore[arg-type]
    elif hasattr(destination_dir, "__truediv__"):
        return destination_dir
    elif isinstance(destination_dir, os.PathLike):
        folder = Path(os.fspath(destination_dir))
    else:
        raise TypeError(
            f"cannot write shards to {type(destination_dir).__name__}; pass a folder path or a "
            "pathlib-like object such as ObjectStoragePath"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _default_prefix(source: object) -> str:
    name = source_name(source)
    if name == "<stream>":
        return "batch"
    base = PurePath(name.rstrip("/")).name
    for suffix in (".jsonl", ".json", ".txt"):
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base or "batch"


def shard_batch_file(
    source: BatchSource,
    destination_dir: ShardDestination,
    *,
    max_lines: int = DEFAULT_MAX_LINES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    prefix: str | None = None,
    endpoints: frozenset[str] = BATCH_ENDPOINTS,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> list[ShardInfo]:
    """Split ``source`` into batch files of at most ``max_lines`` requests and ``max_bytes`` bytes each.

    Streams: memory holds one read chunk and the ``custom_id`` values, never a whole shard.
    A source that already fits gives one shard (a copy).

    :param source: a local path, a pathlib-like object with ``open("rb")``, or a binary file object.
    :param destination_dir: a local folder (created if missing) or a pathlib-like folder such as
        ``ObjectStoragePath("s3://bucket/batches/")``.
    :param max_lines: most requests per shard.
    :param max_bytes: largest shard in bytes.
    :param prefix: shard file names start with this; default: the source's name without ``.jsonl``.
    :param endpoints: accepted ``url`` values.
    :param max_errors: how many errors the report of an invalid source keeps.
    :return: the shards in order.
    :raises InvalidBatchFileError: if the source breaks a rule, or one of its lines alone is
        larger than ``max_bytes``; no shard is left behind.
    :raises OSError: if reading the source or writing a shard fails.
    """
    BatchLimits(max_lines=max_lines, max_bytes=max_bytes, endpoints=endpoints)  # validates the arguments
    if prefix is not None and (not prefix or "/" in prefix):
        raise ValueError(f"prefix must be a non-empty file name without '/', got {prefix!r}")
    folder = _shard_folder(destination_dir)
    writer = _ShardWriter(folder, prefix if prefix is not None else _default_prefix(source))
    checker = BatchChecker(endpoints, max_errors)
    try:
        with open_source(source) as stream:
            # A line must fit in a shard together with its newline.
            chunks = LineChunks(stream, max_line_bytes=max_bytes - 1)
            next_line = 1
            for lines in chunks:
                if next_line == 1 and lines[0][:3] == UTF8_BOM:
                    strip_bom(checker, lines)
                checker.check_lines(lines, next_line, has_truncated=chunks.last_had_truncated)
                if checker.error_count == 0:
                    _write_lines(writer, lines, next_line, max_lines, max_bytes)
                next_line += len(lines)
            total_lines = next_line - 1
            warnings = file_level_checks(checker, chunks, total_lines)
            writer.close()
    except BaseException:
        writer.discard()
        raise
    if checker.error_count:
        writer.discard()
        report = ValidationReport(
            source=source_name(source),
            lines=total_lines,
            bytes=chunks.bytes_read,
            endpoint=checker.endpoint,
            model=checker.model,
            errors=sorted(checker.errors, key=lambda error: error.line or 0),
            error_count=checker.error_count,
            warnings=warnings,
            limits=BatchLimits(max_lines=None, max_bytes=None, endpoints=endpoints),
        )
        raise InvalidBatchFileError(report)
    return list(writer.shards)


def _write_lines(
    writer: _ShardWriter, lines: list[bytes], first_line: int, max_lines: int, max_bytes: int
) -> None:
    sizes = [len(line) + 1 for line in lines]
    total = sum(sizes)
    if writer.fits(len(lines), total, max_lines, max_bytes):
        writer.write(lines, total)
        return
    start = 0
    pending_bytes = 0
    for index, size in enumerate(sizes):
        if not writer.fits(index - start + 1, pending_bytes + size, max_lines, max_bytes):
            if index > start:
                writer.write(lines[start:index], pending_bytes)
            writer.start(first_line + index)
            start, pending_bytes = index, 0
        pending_bytes += size
    writer.write(lines[start:], pending_bytes)
