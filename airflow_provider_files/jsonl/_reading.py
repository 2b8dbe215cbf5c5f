"""Streaming access to a batch file: open any supported source, yield its lines in chunks."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any, Literal, Protocol, Union, runtime_checkable

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

    :param length: the bytes of the line that were read (more than ``limit``): its full length
        if its end was read (``complete``), else how far reading got before it stopped.
    :param limit: the cap the line went past.
    :param complete: whether the end of the line was read.
    """

    length: int
    limit: int
    complete: bool

    def size_text(self) -> str:
        """``"1,234 bytes"``, or ``"at least 1,234 bytes"`` when the end of the line was not read."""
        return f"{self.length:,} bytes" if self.complete else f"at least {self.length:,} bytes"


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


StopReason = Literal["line_too_long", "byte_limit"]


class LineChunks:
    """Iterate over a binary stream as lists of complete lines, reading ``chunk_bytes`` at a time.

    Lines are yielded without their ``b"\\n"`` (a ``b"\\r"`` before it is kept). Reading is bounded:

    * a line longer than ``max_line_bytes`` is never held whole: once it passes the cap it is
      yielded as a :class:`TruncatedLine` (its first KiB), :attr:`last_had_truncated` is true for
      that list, and reading stops (:attr:`stopped` is ``"line_too_long"``);
    * with ``max_read_bytes``, at most that many bytes are read; when the stream holds that many,
      reading stops there (:attr:`stopped` is ``"byte_limit"``) and the line it stopped in, if cut,
      is not yielded (:attr:`stop_line` and :attr:`stop_excerpt` describe it);
    * with ``max_yield_lines``, only that many lines are yielded; the rest are only counted.

    After iteration, :attr:`lines`, :attr:`bytes_read`, :attr:`ends_with_newline` and
    :attr:`saw_carriage_return` describe what was read.

    :param stream: the binary stream to read.
    :param max_line_bytes: the longest line kept in full.
    :param chunk_bytes: how much to read per call; default :data:`READ_CHUNK_BYTES`.
    :param max_read_bytes: read at most this many bytes; ``None`` to read to the end.
    :param max_yield_lines: yield at most this many lines, count the rest; ``None`` to yield all.
    """

    def __init__(
        self,
        stream: BinaryReadable,
        max_line_bytes: int,
        chunk_bytes: int | None = None,
        *,
        max_read_bytes: int | None = None,
        max_yield_lines: int | None = None,
    ) -> None:
        self._stream = stream
        self._max_line_bytes = max_line_bytes
        self._chunk_bytes = chunk_bytes if chunk_bytes is not None else READ_CHUNK_BYTES
        self._max_read_bytes = max_read_bytes
        self._max_yield_lines = max_yield_lines
        self.bytes_read = 0
        self.lines = 0
        self.ends_with_newline = True
        self.saw_carriage_return = False
        self.last_had_truncated = False
        self.stopped: StopReason | None = None
        #: with ``stopped == "byte_limit"``: number of the line reading stopped in, and its start
        #: (empty when that line was only counted).
        self.stop_line = 0
        self.stop_excerpt = b""
        self._to_yield: int | None = None

    def __iter__(self) -> Iterator[list[bytes]]:
        read = self._stream.read
        chunk_bytes = self._chunk_bytes
        cap = self._max_line_bytes
        budget = self._max_read_bytes
        self._to_yield = self._max_yield_lines
        pending: list[bytes] = []  # pieces of the line that is not terminated yet
        pending_bytes = 0
        last_line = b""
        while True:
            size = chunk_bytes if budget is None else min(chunk_bytes, budget - self.bytes_read)
            if size <= 0:
                self._stop_at_byte_limit(pending, last_line)
                return
            chunk = read(size)
            if not chunk:
                break
            if type(chunk) is not bytes:
                if isinstance(chunk, str):
                    raise TypeError("the batch file was opened in text mode; open it in binary mode ('rb')")
                chunk = bytes(chunk)
            if len(chunk) > size:  # a stream that returns more than it was asked for
                chunk = chunk[:size]
            self.bytes_read += len(chunk)
            if not self.saw_carriage_return and b"\r" in chunk:
                self.saw_carriage_return = True
            if self._to_yield is not None and self._to_yield <= 0:
                # Past the lines to yield: count the lines, hold only the start of the open one.
                newlines = chunk.count(b"\n")
                self.lines += newlines
                if newlines:
                    last_line = b""
                    tail = chunk[chunk.rfind(b"\n") + 1 :]
                    pending, pending_bytes = (
                        ([tail[:TRUNCATED_LINE_KEEP_BYTES]], len(tail)) if tail else ([], 0)
                    )
                else:
                    pending_bytes += len(chunk)
                    if pending_bytes - len(chunk) < TRUNCATED_LINE_KEEP_BYTES:
                        pending.append(chunk[:TRUNCATED_LINE_KEEP_BYTES])
                continue
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if not lines:  # no newline in this chunk: the pending line goes on
                pending_bytes += len(tail)
                pending.append(tail)
                if pending_bytes > cap:
                    yield self._stop_at_long_line([self._truncated(pending, pending_bytes, complete=False)])
                    return
                continue
            if pending:
                pending_bytes += len(lines[0])
                if pending_bytes > cap:
                    pending.append(lines[0][:TRUNCATED_LINE_KEEP_BYTES])
                    yield self._stop_at_long_line([self._truncated(pending, pending_bytes, complete=True)])
                    return
                pending.append(lines[0])
                lines[0] = b"".join(pending)
            pending, pending_bytes = ([tail], len(tail)) if tail else ([], 0)
            if len(chunk) > cap:
                for index, line in enumerate(lines):
                    if len(line) > cap:
                        truncated = self._truncated([line], len(line), complete=True)
                        yield self._stop_at_long_line([*lines[:index], truncated])
                        return
                if pending_bytes > cap:
                    truncated = self._truncated(pending, pending_bytes, complete=False)
                    yield self._stop_at_long_line([*lines, truncated])
                    return
            read_lines = len(lines)
            self._take(lines)
            # the last line read has an excerpt only if it is yielded
            last_line = lines[-1] if len(lines) == read_lines else b""
            self.last_had_truncated = False
            yield lines
        if pending:
            self.ends_with_newline = False
            self.lines += 1
            if self._to_yield is None or self._to_yield > 0:
                self.last_had_truncated = False
                yield [b"".join(pending)]

    def _take(self, lines: list[bytes]) -> None:
        """Count ``lines``, and drop those past the lines to yield (they are only counted)."""
        if self._to_yield is not None:
            if len(lines) > self._to_yield:
                self.lines += len(lines) - self._to_yield
                del lines[self._to_yield :]
            self._to_yield -= len(lines)
        self.lines += len(lines)

    def _stop_at_long_line(self, lines: list[bytes]) -> list[bytes]:
        self.stopped = "line_too_long"
        self._take(lines)
        self.last_had_truncated = isinstance(lines[-1], TruncatedLine)
        return lines

    def _stop_at_byte_limit(self, pending: list[bytes], last_line: bytes) -> None:
        self.stopped = "byte_limit"
        if pending:  # the stop cut a line: it counts, but was not (and is not) yielded
            self.lines += 1
            self.stop_excerpt = _prefix(pending)
        else:
            self.stop_excerpt = last_line[:TRUNCATED_LINE_KEEP_BYTES]
        self.stop_line = self.lines

    def _truncated(self, pieces: list[bytes], length: int, *, complete: bool) -> TruncatedLine:
        line = TruncatedLine(_prefix(pieces))
        line.length = length
        line.limit = self._max_line_bytes
        line.complete = complete
        return line


def _prefix(pieces: list[bytes]) -> bytes:
    """The first :data:`TRUNCATED_LINE_KEEP_BYTES` of the pieces, without joining all of them."""
    kept: list[bytes] = []
    size = 0
    for piece in pieces:
        if size >= TRUNCATED_LINE_KEEP_BYTES:
            break
        kept.append(piece[: TRUNCATED_LINE_KEEP_BYTES - size])
        size += len(kept[-1])
    return b"".join(kept)


def total_size(stream: BinaryReadable, bytes_read: int) -> int | None:
    """The size of the stream's content (from where reading started), if it can be known unread.

    :param bytes_read: how much was read from the stream so far.
    """
    try:
        position = stream.tell()  # type: ignore[attr-defined]
        try:
            status = os.fstat(stream.fileno())  # type: ignore[attr-defined]
        except (AttributeError, OSError, ValueError):
            if not stream.seekable():  # type: ignore[attr-defined]
                return None
            end = stream.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
            stream.seek(position)  # type: ignore[attr-defined]
        else:
            if not stat.S_ISREG(status.st_mode):
                return None
            end = status.st_size
        return int(end) - (int(position) - bytes_read)
    except (AttributeError, OSError, ValueError, TypeError):
        return None
