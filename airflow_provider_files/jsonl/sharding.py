"""Splitting an oversize batch file into batch-sized files, streaming.

Decisions:

* The source is **validated while it is split**, with the same rules as
  :func:`~airflow_provider_files.jsonl.validation.validate_batch_file` except the whole-file limits:
  one endpoint and one model across the whole source, and ``custom_id`` unique across the whole
  source (so the outputs of all shards can still be joined on it; memory grows by about 100 bytes
  per request). Lines are checked before they are written, so an invalid line never reaches a
  shard. On the first error writing stops, the rest of the source is still checked for the
  report (up to a line longer than the line cap, where reading stops), and
  :class:`~airflow_provider_files.jsonl.validation.InvalidBatchFileError` is raised.
* **A failed run leaves the destination as it was.** Shards are written under hidden temporary
  names (``.<name>.<random>.tmp``) and renamed only after the whole source was read and found
  valid; on any error they are deleted, and a local folder this run created is removed again.
* **The source is never written over**: a destination shard that is the source (same device and
  inode, or same resolved path or URL) is refused before anything is written.
* **One run per prefix**: a destination that already holds ``<prefix>-NNNNN.jsonl`` files is
  refused unless ``replace=True`` (``--replace``); then the new shards replace them and the old
  ones the new run does not write are removed, so a glob over the folder never mixes two runs.
  (A folder that cannot be listed is not checked.)
* Lines are copied byte for byte (CRLF endings included), never cut and never reordered. The only
  change: a last line without a newline gets one, so every shard ends with ``\\n``. With a source
  that ends with a newline, the shards concatenated in order equal the source.
* Shards are named ``<prefix>-00001.jsonl``, ``<prefix>-00002.jsonl``, ...; the default prefix is
  the source's file name without ``.jsonl``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Any, Protocol, Union

from airflow_provider_files.jsonl._reading import BatchSource, LineChunks, open_source, source_name
from airflow_provider_files.jsonl.checker import BatchChecker, file_level_checks, strip_bom
from airflow_provider_files.jsonl.report import (
    BATCH_ENDPOINTS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_LINES,
    UTF8_BOM,
    BatchLimits,
    InvalidBatchFileError,
    ValidationReport,
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
    """Writes shard files one after another under temporary names; :meth:`commit` gives them their names.

    :param folder: where the shards go.
    :param prefix: shard file names start with this.
    :param make_folder: creates the folder (a local one, when it is missing) before the first shard.
    """

    def __init__(self, folder: Any, prefix: str, make_folder: Callable[[], None]) -> None:
        self._folder = folder
        self._prefix = prefix
        self._make_folder = make_folder
        self._file: IO[bytes] | None = None
        self._final: Any = None
        self._lines = 0
        self._bytes = 0
        self._first_line = 0
        self._token = secrets.token_hex(4)
        #: (where the shard is written, the name it gets) for every shard started
        self.written: list[tuple[Any, Any]] = []
        self.shards: list[ShardInfo] = []

    def fits(self, lines: int, size: int, max_lines: int, max_bytes: int) -> bool:
        return self._file is not None and self._lines + lines <= max_lines and self._bytes + size <= max_bytes

    def start(self, first_line: int) -> None:
        self.close()
        if not self.written:
            self._make_folder()
        name = shard_name(self._prefix, len(self.shards) + 1)
        final = self._folder / name
        # A hidden name that no "*.jsonl" glob matches; folders that cannot rename (rare
        # object-store wrappers) get the final name directly.
        temporary = self._folder / f".{name}.{self._token}.tmp" if hasattr(final, "rename") else final
        self.written.append((temporary, final))
        self._final = final
        self._file = temporary.open("wb")
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
        self.shards.append(ShardInfo(str(self._final), self._lines, self._bytes, self._first_line))

    def commit(self, is_source: Callable[[Any], bool], old_shards: list[Any]) -> None:
        """Give every shard its name (replacing a same-named old shard), then remove the other old shards."""
        self.close()
        for _, final in self.written:
            if is_source(final):
                raise ValueError(f"{final} is the source; sharding it into this folder would overwrite it")
        for temporary, final in self.written:
            if temporary is not final:
                _rename(temporary, final)
        new_names = {str(final) for _, final in self.written}
        for old in old_shards:
            if str(old) not in new_names:
                old.unlink()

    def discard(self) -> None:
        """Close the current shard and delete every shard written so far (best effort)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
        for temporary, _ in self.written:
            # Cleanup must not hide the error that caused it.
            with contextlib.suppress(Exception):
                temporary.unlink()
        self.written.clear()
        self.shards.clear()


def shard_name(prefix: str, number: int) -> str:
    """The file name of shard ``number`` (1-based): ``<prefix>-00001.jsonl``."""
    return f"{prefix}-{number:0{SHARD_NUMBER_DIGITS}d}.jsonl"


def _rename(temporary: Any, final: Any) -> None:
    if isinstance(temporary, Path):
        os.replace(temporary, final)  # atomic, and replaces an old shard of the same name
    else:
        temporary.rename(final)


_LOCAL_PATH_TYPES = (Path, type(Path()))


class _Destination:
    """The folder shards go to: a local ``Path`` (created only once a shard is written, and removed
    again if the run fails) or a pathlib-like object-store folder."""

    def __init__(self, destination_dir: ShardDestination) -> None:
        self._created: list[Path] = []
        if isinstance(destination_dir, str) or type(destination_dir) in _LOCAL_PATH_TYPES:
            self.folder: Any = Path(os.fspath(destination_dir))  # type: ignore[arg-type]
        elif hasattr(destination_dir, "__truediv__"):
            self.folder = destination_dir
        elif isinstance(destination_dir, os.PathLike):
            self.folder = Path(os.fspath(destination_dir))
        else:
            raise TypeError(
                f"cannot write shards to {type(destination_dir).__name__}; pass a folder path or a "
                "pathlib-like object such as ObjectStoragePath"
            )
        self.local = isinstance(self.folder, Path)

    def make(self) -> None:
        """Create a missing local folder (object stores need none), remembering what was created."""
        if not self.local:
            return
        missing = []
        folder = self.folder
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = missing

    def remove_created(self) -> None:
        """Remove the folders :meth:`make` created, if they are empty again (best effort)."""
        for folder in self._created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._created = []

    def shards_of(self, prefix: str) -> list[Any]:
        """The files already in the folder named like shards of ``prefix``; empty if it cannot be listed."""
        pattern = re.compile(rf"{re.escape(prefix)}-\d{{{SHARD_NUMBER_DIGITS},}}\.jsonl")
        iterdir = getattr(self.folder, "iterdir", None)
        if iterdir is None:
            return []
        try:
            return sorted((path for path in iterdir() if pattern.fullmatch(path.name)), key=str)
        except (FileNotFoundError, NotADirectoryError):
            return []


def _local_path(path: object) -> str | None:
    """The local file system path of ``path``, if it is one (a ``str``, ``Path`` or ``file://`` path)."""
    if isinstance(path, (str, PurePath)):
        return os.fspath(path)
    inner = getattr(path, "path", None)  # e.g. ObjectStoragePath("file:///...")
    if getattr(path, "protocol", None) in ("file", "local") and isinstance(inner, str):
        return inner
    return None


def _source_identity(source: object) -> tuple[os.stat_result | None, str | None]:
    """What identifies the source on disk: its ``stat`` (device and inode) and its resolved path."""
    status = None
    resolved = None
    try:
        local = _local_path(source)
        if local is not None:
            resolved = os.path.realpath(local)
            status = os.stat(resolved)
        elif hasattr(source, "fileno"):
            status = os.fstat(source.fileno())
    except Exception:  # best effort: an unknown kind of source is compared by name below
        pass
    if resolved is None:
        name = source_name(source)
        resolved = None if name == "<stream>" else name
    return status, resolved


def _is_source_check(source: object) -> Callable[[Any], bool]:
    """A test: is this path the source (same device and inode, or same resolved path or URL)?"""
    status, resolved = _source_identity(source)

    def is_source(path: Any) -> bool:
        local = _local_path(path)
        if local is None:
            return resolved is not None and str(path) == resolved
        if status is not None:
            try:
                return os.path.samestat(status, os.stat(local))
            except OSError:
                return False
        return resolved is not None and os.path.realpath(local) == resolved

    return is_source


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
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    replace: bool = False,
) -> list[ShardInfo]:
    """Split ``source`` into batch files of at most ``max_lines`` requests and ``max_bytes`` bytes each.

    Streams: memory holds one read chunk and the ``custom_id`` values, never a whole shard.
    A source that already fits gives one shard (a copy). Shards are written under temporary names
    and renamed once the whole source is read and valid, so a failed run leaves the destination
    as it was.

    :param source: a local path, a pathlib-like object with ``open("rb")``, or a binary file object.
    :param destination_dir: a local folder (created if missing) or a pathlib-like folder such as
        ``ObjectStoragePath("s3://bucket/batches/")``.
    :param max_lines: most requests per shard.
    :param max_bytes: largest shard in bytes.
    :param prefix: shard file names start with this; default: the source's name without ``.jsonl``.
    :param endpoints: accepted ``url`` values.
    :param max_errors: how many errors the report of an invalid source keeps.
    :param max_line_bytes: the longest line (one request); reading stops at a longer one.
    :param replace: the destination may hold shards of an earlier run with the same prefix: they
        are replaced, and those the new run does not write are removed. Without it such a
        destination is refused, so a glob over it never mixes two runs.
    :return: the shards in order.
    :raises InvalidBatchFileError: if the source breaks a rule, or one of its lines alone is
        larger than ``max_bytes``; no shard is left behind.
    :raises FileExistsError: if the destination holds shards with this prefix and ``replace`` is false.
    :raises ValueError: if the source itself is named like one of the shards in the destination
        (it would be overwritten), or an argument is out of range.
    :raises OSError: if reading the source or writing a shard fails.
    """
    BatchLimits(max_lines=max_lines, max_bytes=max_bytes, endpoints=endpoints, max_line_bytes=max_line_bytes)
    if prefix is not None and (not prefix or "/" in prefix):
        raise ValueError(f"prefix must be a non-empty file name without '/', got {prefix!r}")
    prefix = prefix if prefix is not None else _default_prefix(source)
    destination = _Destination(destination_dir)
    is_source = _is_source_check(source)
    old_shards = destination.shards_of(prefix)
    for old in old_shards:
        if is_source(old):
            raise ValueError(
                f"{old} is the source, and is named like a shard of prefix {prefix!r} in "
                f"{destination.folder}: sharding would overwrite it; choose another folder or prefix"
            )
    if old_shards and not replace:
        raise FileExistsError(
            f"{destination.folder} already holds {len(old_shards)} shard(s) named {prefix}-NNNNN.jsonl "
            f"(first: {PurePath(str(old_shards[0])).name}); remove them, choose another folder or prefix, "
            "or replace them (--replace, replace=True)"
        )
    writer = _ShardWriter(destination.folder, prefix, destination.make)
    checker = BatchChecker(endpoints, max_errors)
    try:
        with open_source(source) as stream:
            # A line must fit in a shard together with its newline.
            chunks = LineChunks(stream, max_line_bytes=min(max_bytes - 1, max_line_bytes))
            next_line = 1
            for lines in chunks:
                if next_line == 1 and lines[0][:3] == UTF8_BOM:
                    strip_bom(checker, lines)
                checker.check_lines(lines, next_line, has_truncated=chunks.last_had_truncated)
                if checker.error_count == 0:
                    _write_lines(writer, lines, next_line, max_lines, max_bytes)
                next_line += len(lines)
            total_lines = chunks.lines
            warnings = file_level_checks(checker, chunks, total_lines)
            writer.close()
        if not checker.error_count:
            writer.commit(is_source, old_shards)
    except BaseException:
        writer.discard()
        destination.remove_created()
        raise
    if checker.error_count:
        writer.discard()
        destination.remove_created()
        report = ValidationReport(
            source=source_name(source),
            lines=total_lines,
            bytes=chunks.bytes_read,
            endpoint=checker.endpoint,
            model=checker.model,
            errors=sorted(checker.errors, key=lambda error: error.line or 0),
            error_count=checker.error_count,
            warnings=warnings,
            limits=BatchLimits(
                max_lines=None, max_bytes=None, endpoints=endpoints, max_line_bytes=max_line_bytes
            ),
            read_whole=chunks.stopped is None,
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
