"""What the upload engine reads: a file whose byte ranges can be read again for retries and resume.

Each part is a :class:`~airflow_provider_files.api.bodies.BodySource` over one byte range that
reads the file afresh on every attempt and streams it in small chunks, so no part is ever held
in memory and several parts can be read at once. Local files are read through their own handles;
objects in an fsspec filesystem (S3, GCS, Azure, ``memory://`` ...) through ranged reads
(:class:`ObjectSource`), which share no handle and fetch each byte once per pass. An upload,
which reads its source more than once (validation or md5, the parts), wraps an object in a
:class:`~airflow_provider_files.uploads.spool.SpooledObject`, fetched once for all passes.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Protocol, cast, runtime_checkable

from airflow_provider_files.api.bodies import READ_CHUNK_BYTES, BodySource, FileRange


@runtime_checkable
class UploadSource(Protocol):
    """A file the engine can upload in parts.

    ``fingerprint()`` must change when the content changes (size and mtime, an etag ...): a
    checkpoint is only resumed when the fingerprint is the one it recorded.
    """

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    def fingerprint(self) -> str: ...

    def range(self, offset: int, length: int) -> BodySource: ...

    def open(self) -> IO[bytes]: ...


class LocalFileSource:
    """A file on the local disk; parts are :class:`~airflow_provider_files.api.FileRange` objects.

    The size is read on first use (not in the constructor) and then kept: a file that changes
    size during the upload is caught by the parts and by the md5 reader.

    :param path: the file.
    :param name: filename announced to the API; defaults to the file's name.
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        self.path = Path(path)
        self._name = name

    def __repr__(self) -> str:
        return f"LocalFileSource({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self._name or self.path.name

    @cached_property
    def size(self) -> int:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"the file to upload does not exist: {self.path}") from None
        if not self.path.is_file():
            raise IsADirectoryError(f"the path to upload is not a regular file: {self.path}")
        return stat.st_size

    def fingerprint(self) -> str:
        """Path, size, modification time and inode: any rewrite of the file changes it."""
        stat = self.path.stat()
        return f"local:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"

    def range(self, offset: int, length: int) -> BodySource:
        return FileRange(self.path, offset, length)

    def open(self) -> IO[bytes]:
        return open(self.path, "rb", buffering=0)


class _KnownSizeSource:
    """What a source whose size, name and fingerprint are known up front keeps and exposes."""

    def __init__(self, size: int, name: str, fingerprint: str) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self._size = size
        self._name = name
        self._fingerprint = fingerprint

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return self._size

    def fingerprint(self) -> str:
        return self._fingerprint


class OpenFileSource(_KnownSizeSource):
    """A file reached through an opener, e.g. an ``ObjectStoragePath``'s ``open``.

    Every part opens its own handle (fsspec handles are not thread-safe), seeks to its offset
    and reads its range; a handle that cannot seek skips forward by reading. The opener must
    return a new, independent handle each time; for a file in an fsspec filesystem use
    :class:`ObjectSource`, which needs no handle (``memory://`` shares one, s3fs reads ahead).

    :param opener: returns a new binary file object positioned at the start (``path.open``).
    :param size: size of the file in bytes.
    :param name: filename announced to the API.
    :param fingerprint: changes when the content changes (e.g. ``f"{etag}:{size}"``).
    """

    def __init__(
        self,
        opener: Callable[[], IO[bytes]],
        size: int,
        name: str,
        fingerprint: str,
    ) -> None:
        super().__init__(size, name, fingerprint)
        self._opener = opener

    def __repr__(self) -> str:
        return f"OpenFileSource(name={self._name!r}, size={self._size})"

    def range(self, offset: int, length: int) -> BodySource:
        return OpenedRange(self._opener, offset, length)

    def open(self) -> IO[bytes]:
        return self._opener()


class SourceRange:
    """The part of every range of a source: ``length`` bytes from ``offset``, read again from the
    source on each attempt (so replayable); subclasses yield them from :meth:`chunks`."""

    def __init__(self, offset: int, length: int) -> None:
        self.offset = offset
        self._length = length

    @property
    def length(self) -> int:
        return self._length

    @property
    def replayable(self) -> bool:
        return True

    def chunks(self) -> Iterator[bytes]:
        raise NotImplementedError


class OpenedRange(SourceRange):
    """``length`` bytes from ``offset`` of a file reached through ``opener``; re-opened per attempt.

    :param opener: returns a new binary file object at the start of the file.
    :param offset: first byte.
    :param length: number of bytes.
    """

    def __init__(self, opener: Callable[[], IO[bytes]], offset: int, length: int) -> None:
        super().__init__(offset, length)
        self._opener = opener

    def chunks(self) -> Iterator[bytes]:
        remaining = self._length
        with self._opener() as handle:
            _skip_to(handle, self.offset)
            while remaining > 0:
                chunk = handle.read(min(READ_CHUNK_BYTES, remaining))
                if not chunk:
                    raise OSError(
                        f"the source ended {remaining} bytes before the end of the part at offset "
                        f"{self.offset}: was it changed while uploading?"
                    )
                remaining -= len(chunk)
                yield chunk


class RangeReadable(Protocol):
    """A filesystem that returns a byte range of a file in one call, as fsspec's ``cat_file`` does
    (S3, GCS and Azure send it as one ranged GET; ``memory://`` slices its buffer)."""

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes: ...


class ObjectSource(_KnownSizeSource):
    """An object in an fsspec filesystem, read by byte ranges: no handle is opened.

    Every read is one ``cat_file(path, start, end)`` of at most 1 MiB, so parts read in parallel
    share no file object (``memory://`` gives every ``open`` the same one), nothing is fetched
    beyond the range asked for (s3fs handles read ahead in 50 MiB blocks by default), and a part
    holds one chunk in memory at a time. Each pass over the object fetches its size, no more.

    :param fs: the filesystem, e.g. an ``ObjectStoragePath``'s ``fs``.
    :param path: the object's path in ``fs`` (an ``ObjectStoragePath``'s ``path``).
    :param size: size of the object in bytes.
    :param name: filename announced to the API.
    :param fingerprint: changes when the content changes (e.g. from the ETag and size).
    :param label: the object as shown in messages (default ``name``), e.g. its URL.
    """

    def __init__(
        self,
        fs: RangeReadable,
        path: str,
        size: int,
        name: str,
        fingerprint: str,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(size, name, fingerprint)
        self._fs = fs
        self._path = path
        self._label = label or name

    def __repr__(self) -> str:
        return f"ObjectSource({self._label!r}, size={self._size})"

    def __str__(self) -> str:
        return self._label

    def range(self, offset: int, length: int) -> BodySource:
        return ObjectRange(self._fs, self._path, offset, length, label=self._label)

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of the object in one ranged read (an ``OSError`` if short)."""
        return _fetch(self._fs, self._path, start, end, self._label)

    def open(self, mode: str = "rb") -> IO[bytes]:
        """A sequential reader of the whole object (for the md5 and for validation); each read
        of ``n`` bytes fetches those ``n`` bytes."""
        if mode != "rb":
            raise ValueError(f"an upload source is read only in mode 'rb', not {mode!r}")
        reader = ObjectReader(self._fs, self._path, self._size, label=self._label)
        # small buffer: a line-by-line reader (the first request's endpoint) fetches little;
        # reads of 1 MiB (validation, md5) pass through it unbuffered
        return cast(IO[bytes], io.BufferedReader(reader, buffer_size=LINE_BUFFER_BYTES))


# Buffer of ObjectSource.open(): what a line-by-line reader fetches at a time.
LINE_BUFFER_BYTES = 16 * 1024


class ObjectRange(SourceRange):
    """``length`` bytes from ``offset`` of an object, fetched in ranged reads of at most 1 MiB.

    :param fs: the filesystem.
    :param path: the object's path in ``fs``.
    :param offset: first byte.
    :param length: number of bytes.
    :param label: the object as shown in messages.
    """

    def __init__(self, fs: RangeReadable, path: str, offset: int, length: int, *, label: str = "") -> None:
        super().__init__(offset, length)
        self._fs = fs
        self._path = path
        self._label = label or path

    def chunks(self) -> Iterator[bytes]:
        end = self.offset + self._length
        for start in range(self.offset, end, READ_CHUNK_BYTES):
            yield _fetch(self._fs, self._path, start, min(start + READ_CHUNK_BYTES, end), self._label)


class SizedReader(io.RawIOBase):
    """A seekable reader of ``size`` bytes from start to end: ``readinto(b)`` asks
    :meth:`read_at` for the next ``len(b)`` bytes (at most to the end) and moves on by as many.

    :param size: the bytes there are; nothing past them is asked for.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._size - self._position)
        if count <= 0:
            return 0
        self.read_at(self._position, view[:count])
        self._position += count
        return count

    def read_at(self, position: int, view: memoryview) -> None:
        """Fill ``view`` with the bytes from ``position`` on, all of them."""
        raise NotImplementedError


class ObjectReader(SizedReader):
    """An object read from start to end by ranged reads: ``readinto(b)`` fetches ``len(b)`` bytes.

    :param fs: the filesystem.
    :param path: the object's path in ``fs``.
    :param size: size of the object; nothing past it is requested.
    :param label: the object as shown in messages.
    """

    def __init__(self, fs: RangeReadable, path: str, size: int, *, label: str = "") -> None:
        super().__init__(size)
        self._fs = fs
        self._path = path
        self._label = label or path

    def read_at(self, position: int, view: memoryview) -> None:
        view[:] = _fetch(self._fs, self._path, position, position + len(view), self._label)


def _fetch(fs: RangeReadable, path: str, start: int, end: int, label: str) -> bytes:
    """Bytes ``start`` to ``end`` of the object, exactly: a short answer means it changed."""
    data = fs.cat_file(path, start=start, end=end)
    if len(data) != end - start:
        raise OSError(
            f"{label} returned {len(data)} bytes for bytes {start}-{end - 1}, {end - start} were "
            "expected: the object was replaced or truncated while it was being read"
        )
    return data


def _skip_to(handle: IO[bytes], offset: int) -> None:
    if offset == 0:
        return
    try:
        seekable = handle.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        handle.seek(offset)
        return
    remaining = offset
    while remaining > 0:
        skipped = handle.read(min(READ_CHUNK_BYTES, remaining))
        if not skipped:
            raise OSError(f"the source ended before offset {offset}")
        remaining -= len(skipped)


def md5_of(source: UploadSource, *, stop: Callable[[], bool] | None = None) -> str:
    """Hex md5 of the whole source, read sequentially in chunks; checks the size on the way.

    :param stop: polled between chunks; when it returns True the read is abandoned (``""`` returned).
    """
    digest = hashlib.md5(usedforsecurity=False)
    total = 0
    buffer = bytearray(READ_CHUNK_BYTES)  # reused: no 1 MiB allocation (and page faults) per chunk
    view = memoryview(buffer)
    with source.open() as handle:
        readinto = getattr(handle, "readinto", None)
        while True:
            if stop is not None and stop():
                return ""
            if readinto is not None:
                count = readinto(buffer)
                chunk: bytes | memoryview = view[:count] if count else b""
            else:
                chunk = handle.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
    if total != source.size:
        raise OSError(
            f"read {total} bytes from {source.name} but its size was {source.size}: was it changed?"
        )
    return digest.hexdigest()


def as_upload_source(
    source: UploadSource | str | os.PathLike[str], *, name: str | None = None
) -> UploadSource:
    """A path becomes a :class:`LocalFileSource`; an :class:`UploadSource` is used as is."""
    if isinstance(source, (str, os.PathLike)):
        return LocalFileSource(source, name=name)
    if isinstance(source, UploadSource):
        return source
    raise TypeError(
        f"cannot upload a {type(source).__name__}: pass a path, a LocalFileSource, an ObjectSource "
        "or an OpenFileSource"
    )
