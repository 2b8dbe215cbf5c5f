"""Streaming access to a batch file: open any supported source, yield its lines in chunks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any, Protocol, Union, runtime_checkable

# Big enough to amortise per-read overhead (also for object-storage streams), small enough
# that a chunk and its split lines stay in the CPU cache while they are parsed.
READ_CHUNK_BYTES = 1024 * 1024
# How much of an over-long line is kept (for its excerpt) once the line is known to be too long.
TRUNCATED_LINE_KEEP_BYTES = 1024


@runtime_checkable
class BinaryReadable(Protocol):
    """Anything with ``read(size) -> bytes``: an open file, ``io.BytesIO``, an fsspec/ObjectStoragePath handle."""

    def read(self, size: int = ..., /) -> bytes: ...


@runtime_checkable
class BinaryOpenable(Protocol):
    """Anything pathlib-like with ``open("rb")``: ``pathlib.Path``, Airflow ``ObjectStoragePath``, ``UPath``."""

    def open(self, mode: str, /) -> Any: ...


#: What the validator and the sharder accept as input: a local path, a pathlib-like object with
#: ``open("rb")``, or an already open binary stream.
BatchSource = Union[str, "os.PathLike[str]", BinaryReadable, BinaryOpenable]


class TruncatedLine(bytes):
    """The kept prefix of a line that was longer than the reader's line cap.

    :param length: the full length of the line in bytes (without its newline).
    """

    length: int


def source_name(source: object) -> str:
    """A short human name for ``source``, used in messages."""
    if isinstance(source, (str, PurePath)):
        return str(source)
    if isinstance(source, os.PathLike):
        return os.fspath(source) if isinstance(os.fspath(source), str) else repr(source)
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return name
    if hasattr(source, "open") and not hasattr(source, "read"):
        return str(source)
    return "<stream>"


@contextmanager
def open_source(source: BatchSource) -> Iterator[BinaryReadable]:
    """Yield a binary stream for ``source``; close it afterwards only if this function opened it.

    :raises TypeError: if ``source`` is none of the supported kinds.
    :raises OSError: if the file cannot be opened.
    """
    if isinstance(source, (str, PurePath)):
        # Unbuffered: we read large chunks ourselves, so a second buffer would only copy.
        with open(source, "rb", buffering=0) as local_file:
            yield local_file
    elif isinstance(source, BinaryReadable):
        yield source
    elif isinstance(source, BinaryOpenable):
        with source.open("rb") as opened:
            yield opened
    elif isinstance(source, os.PathLike):
        with open(os.fspath(source), "rb", buffering=0) as local_file:
            yield local_file
    else:
        raise TypeError(
            f"cannot read a batch file from {type(source).__name__}; pass a path, an object with "
            "open('rb') such as ObjectStoragePath, or a binary file object"
        )


class LineChunks:
    """Iterate over a binary stream as lists of complete lines, reading ``chunk_bytes`` at a time.

    Lines are yielded without their ``b"\\n"`` (a ``b"\\r"`` before it is kept). A line longer than
    ``max_line_bytes`` is not held in memory: it is yielded as a :class:`TruncatedLine`, and
    :attr:`last_had_truncated` is true for that list. After iteration, :attr:`bytes_read`,
    :attr:`ends_with_newline` and :attr:`saw_carriage_return` describe the whole stream.

    :param stream: the binary stream to read.
    :param max_line_bytes: the longest line kept in full.
    :param chunk_bytes: how much to read per call; default :data:`READ_CHUNK_BYTES`.
    """

    def __init__(self, stream: BinaryReadable, max_line_bytes: int, chunk_bytes: int | None = None) -> None:
        self._stream = stream
        self._max_line_bytes = max_line_bytes
        self._chunk_bytes = chunk_bytes if chunk_bytes is not None else READ_CHUNK_BYTES
        self.bytes_read = 0
        self.ends_with_newline = True
        self.saw_carriage_return = False
        self.last_had_truncated = False

    def __iter__(self) -> Iterator[list[bytes]]:
        read = self._stream.read
        chunk_bytes = self._chunk_bytes
        pending: list[bytes] = []  # pieces of the line that is not terminated yet
        pending_bytes = 0
        pending_truncated = False
        while True:
            chunk = read(chunk_bytes)
            if not chunk:
                break
            if type(chunk) is not bytes:
                if isinstance(chunk, str):
                    raise TypeError("the batch file was opened in text mode; open it in binary mode ('rb')")
                chunk = bytes(chunk)
            self.bytes_read += len(chunk)
            if not self.saw_carriage_return and b"\r" in chunk:
                self.saw_carriage_return = True
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if not lines:  # no newline in this chunk: the pending line goes on
                pending_bytes += len(tail)
                if not pending_truncated:
                    pending.append(tail)
                    if pending_bytes > self._max_line_bytes:
                        pending = [b"".join(pending)[:TRUNCATED_LINE_KEEP_BYTES]]
                        pending_truncated = True
                continue
            truncated = False
            if pending:
                pending_bytes += len(lines[0])
                if pending_truncated:
                    lines[0] = self._truncated(pending[0], pending_bytes)
                    truncated = True
                else:
                    pending.append(lines[0])
                    lines[0] = b"".join(pending)
            if len(chunk) > self._max_line_bytes:
                for index, line in enumerate(lines):
                    if len(line) > self._max_line_bytes and type(line) is bytes:
                        lines[index] = self._truncated(line, len(line))
                        truncated = True
            pending, pending_bytes, pending_truncated = ([tail], len(tail), False) if tail else ([], 0, False)
            if pending_bytes > self._max_line_bytes:
                pending = [tail[:TRUNCATED_LINE_KEEP_BYTES]]
                pending_truncated = True
            self.last_had_truncated = truncated
            yield lines
        if pending:
            self.ends_with_newline = False
            self.last_had_truncated = pending_truncated
            yield [self._truncated(pending[0], pending_bytes) if pending_truncated else b"".join(pending)]

    @staticmethod
    def _truncated(prefix: bytes, length: int) -> TruncatedLine:
        line = TruncatedLine(prefix[:TRUNCATED_LINE_KEEP_BYTES])
        line.length = length
        return line
