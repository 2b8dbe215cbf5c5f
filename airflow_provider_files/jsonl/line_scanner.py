"""A writable binary sink that stores what it is given and sees every line on the way.

So one download pass both writes a file (local, s3://, gs://, ... through any binary handle) and
reads it: the bytes go on unchanged, and each complete line is handed to a callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class BinaryWritable(Protocol):
    """Anything with ``write(bytes)``: an open file, an fsspec/ObjectStoragePath handle, ``io.BytesIO``."""

    def write(self, data: bytes | bytearray | memoryview, /) -> Any: ...


class LineTooLongError(ValueError):
    """A line grew past the scanner's cap (held in memory, it would have no bound).

    :param source: name of the stream.
    :param line: 1-based number of the line.
    :param size: bytes of the line seen so far.
    :param max_line_bytes: the cap.
    """

    def __init__(self, source: str, line: int, size: int, max_line_bytes: int) -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source} line {line}: line is over {size:,} bytes, more than {max_line_bytes:,}")


class LineScanner:
    """Pass every byte on to ``inner`` unchanged and hand the complete lines to ``on_lines``.

    Lines may be split across writes in any way; the last line, if it has no newline, is handed
    over by :meth:`finish` (or :meth:`close`). Memory: one write plus the longest line, whatever
    the stream's size. The bytes of a write reach ``inner`` before its lines are handed over, so
    the stored copy is complete up to the line a callback rejects.

    :param on_lines: called once per write that completes lines, with those lines (without
        ``\\n``, in order) and the 1-based number of the first.
    :param inner: where the bytes go; ``None`` to only scan.
    :param source: name of the stream, for errors.
    :param max_line_bytes: longest line accepted; a longer one raises :class:`LineTooLongError`.
    """

    def __init__(
        self,
        on_lines: Callable[[list[bytes], int], object],
        inner: BinaryWritable | None = None,
        *,
        source: str = "<stream>",
        max_line_bytes: int,
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
        self._on_lines = on_lines
        self._inner = inner
        self._source = source
        self._max_line_bytes = max_line_bytes
        self._pending: list[bytes] = []  # pieces of the line not terminated yet
        self._pending_bytes = 0
        self._finished = False
        self.lines = 0
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._finished

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Forward ``data`` to the inner handle, then scan the lines it completes."""
        if self._finished:
            raise ValueError(f"write to {self._source} after finish()")
        if self._inner is not None:
            self._inner.write(data)
        chunk = bytes(data)
        size = len(chunk)
        self.bytes_written += size
        if b"\n" not in chunk:
            self._keep(chunk)
            return size
        pieces = chunk.split(b"\n")
        tail = pieces.pop()
        if self._pending:
            self._keep(pieces[0])
            pieces[0] = b"".join(self._pending)
            self._pending, self._pending_bytes = [], 0
        if size > self._max_line_bytes:
            for index, line in enumerate(pieces):
                if len(line) > self._max_line_bytes:
                    raise LineTooLongError(
                        self._source, self.lines + index + 1, len(line), self._max_line_bytes
                    )
        self._emit(pieces)
        if tail:
            self._keep(tail)
        return size

    def flush(self) -> None:
        flush = getattr(self._inner, "flush", None)
        if flush is not None:
            flush()

    def finish(self) -> None:
        """Scan the last line if it has no newline; the inner handle stays open."""
        if self._finished:
            return
        self._finished = True
        if self._pending:
            last = b"".join(self._pending)
            self._pending, self._pending_bytes = [], 0
            self._emit([last])

    def close(self) -> None:
        """:meth:`finish`, then close the inner handle."""
        try:
            self.finish()
        finally:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> LineScanner:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        """Finish on success; after an error the unterminated rest is not scanned."""
        if exc_type is None:
            self.finish()

    def _keep(self, piece: bytes) -> None:
        self._pending_bytes += len(piece)
        if self._pending_bytes > self._max_line_bytes:
            raise LineTooLongError(self._source, self.lines + 1, self._pending_bytes, self._max_line_bytes)
        self._pending.append(piece)

    def _emit(self, lines: list[bytes]) -> None:
        first = self.lines + 1
        self.lines += len(lines)
        self._on_lines(lines, first)
