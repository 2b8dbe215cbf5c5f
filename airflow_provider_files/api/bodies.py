"""Request bodies streamed from disk or file objects, never read whole into memory.

A body source can be replayed from its start for a retry when it is a path, bytes or a
seekable file object; a one-shot stream (a socket, a pipe) cannot, and says so.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, Union, runtime_checkable

READ_CHUNK_BYTES = 1024 * 1024


@runtime_checkable
class BodySource(Protocol):
    """Bytes that a request sends; ``chunks()`` starts from the beginning each time it is called."""

    @property
    def length(self) -> int | None: ...

    @property
    def replayable(self) -> bool: ...

    def chunks(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class BytesSource:
    data: bytes = field(repr=False)

    @property
    def length(self) -> int:
        return len(self.data)

    @property
    def replayable(self) -> bool:
        return True

    def chunks(self) -> Iterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), READ_CHUNK_BYTES):
            yield bytes(view[start : start + READ_CHUNK_BYTES])


@dataclass(frozen=True)
class FileRange:
    """``length`` bytes of the file at ``path`` from ``offset``; opened afresh for each attempt.

    :param path: local file.
    :param offset: first byte.
    :param length: number of bytes.
    """

    path: Path
    offset: int
    length: int

    @classmethod
    def whole(cls, path: str | os.PathLike[str]) -> FileRange:
        path = Path(path)
        return cls(path, 0, path.stat().st_size)

    @property
    def replayable(self) -> bool:
        return True

    def chunks(self) -> Iterator[bytes]:
        remaining = self.length
        with open(self.path, "rb", buffering=0) as handle:
            handle.seek(self.offset)
            while remaining > 0:
                chunk = handle.read(min(READ_CHUNK_BYTES, remaining))
                if not chunk:
                    raise OSError(
                        f"{self.path} ended {remaining} bytes early: was it changed while uploading?"
                    )
                remaining -= len(chunk)
                yield chunk


class FileObjectSource:
    """A binary file object, from its current position; replayable only when it is seekable.

    :param fileobj: an open binary file object.
    :param length: bytes to send; ``None`` sends to the end (the size is found by seeking if possible).
    """

    def __init__(self, fileobj: IO[bytes], length: int | None = None) -> None:
        self._fileobj = fileobj
        self._seekable = _is_seekable(fileobj)
        self._start = fileobj.tell() if self._seekable else 0
        self._length = length
        self._consumed = False

    @property
    def length(self) -> int | None:
        if self._length is None and self._seekable:
            end = self._fileobj.seek(0, os.SEEK_END)
            self._fileobj.seek(self._start)
            self._length = end - self._start
        return self._length

    @property
    def replayable(self) -> bool:
        return self._seekable or not self._consumed

    def chunks(self) -> Iterator[bytes]:
        if self._seekable:
            self._fileobj.seek(self._start)
        elif self._consumed:
            raise OSError("the source stream was already read and cannot be rewound for a retry")
        self._consumed = True
        remaining = self.length
        while remaining is None or remaining > 0:
            want = READ_CHUNK_BYTES if remaining is None else min(READ_CHUNK_BYTES, remaining)
            chunk = self._fileobj.read(want)
            if not chunk:
                if remaining:
                    raise OSError(f"the source stream ended {remaining} bytes early")
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _is_seekable(fileobj: IO[bytes]) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        return False


BodyInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes], BodySource]


def as_body_source(value: BodyInput) -> BodySource:
    """Turn what a caller passes (bytes, a path, a file object, a source) into a body source."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return BytesSource(bytes(value))
    if isinstance(value, (str, os.PathLike)):
        return FileRange.whole(value)
    if isinstance(value, BodySource):
        return value
    if hasattr(value, "read"):
        return FileObjectSource(value)
    raise TypeError(f"cannot send a {type(value).__name__}: pass bytes, a path or a binary file object")


def default_filename(value: BodyInput) -> str | None:
    if isinstance(value, (str, os.PathLike)):
        return Path(value).name
    if isinstance(value, FileRange):
        return value.path.name
    name = getattr(value, "name", None)
    return Path(name).name if isinstance(name, str) and name else None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


class MultipartBody:
    """``multipart/form-data`` with text fields first and one file field last, streamed.

    :param fields: ordered (name, value) text fields.
    :param file_field: name of the file field (``file`` for /files, ``data`` for parts).
    :param filename: filename announced for the file field.
    :param source: the file's bytes.
    :param content_type: content type of the file field.
    """

    def __init__(
        self,
        fields: list[tuple[str, str]],
        file_field: str,
        filename: str,
        source: BodySource,
        content_type: str = "application/octet-stream",
    ) -> None:
        if any(c in content_type for c in "\r\n\0"):
            raise ValueError(
                "content_type must not contain a line break: it is written into the body's headers"
            )
        self.boundary = uuid.uuid4().hex
        self.source = source
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
            for name, value in fields
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int | None:
        length = self.source.length
        return None if length is None else len(self._head) + length + len(self._tail)

    @property
    def replayable(self) -> bool:
        return self.source.replayable

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        length = self.content_length
        if length is not None:
            headers["Content-Length"] = str(length)
        return headers

    def chunks(self) -> Iterator[bytes]:
        yield self._head
        yield from self.source.chunks()
        yield self._tail

    async def achunks(self) -> AsyncIterator[bytes]:
        """The same bytes for an async client; file reads run in a worker thread."""
        iterator = self.chunks()
        while True:
            chunk = await asyncio.to_thread(next, iterator, None)
            if chunk is None:
                return
            yield chunk
