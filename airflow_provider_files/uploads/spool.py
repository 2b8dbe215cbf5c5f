"""An object in object storage fetched once into a local spool file that every reader then shares.

An upload reads its source more than once: validation, the md5 and the parts (each part again
on a retry). Read straight from S3, each of those is a fetch of the object. A
:class:`SpooledObject` fetches the object once, in order, with a few ranged reads in flight,
into a temporary file; a reader of a byte range waits until the spool holds that range and
then reads it from the local file (the page cache). The parts thus go out while the fetch goes
on, and nothing is fetched twice. Memory holds only the ranges in flight; the disk holds the
object (its size is checked before the first byte is fetched). The spool file is removed by
:meth:`SpooledObject.close`, on success or failure. A process killed before that leaves its file
behind; the file is locked (``flock``) while its spool is open, so the next spool in the same
folder removes every file of a dead process (:func:`remove_stale_spools`).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, cast

from airflow_provider_files.api.bodies import READ_CHUNK_BYTES, BodySource
from airflow_provider_files.uploads.progress import format_bytes
from airflow_provider_files.uploads.sources import ObjectSource, SizedReader, SourceRange

#: Bytes of one ranged read of the fetch.
SPOOL_RANGE_BYTES = 4 * 1024 * 1024
#: Ranged reads in flight at once (the memory the fetch holds is this times the range).
SPOOL_FETCHES_IN_FLIGHT = 4
SPOOL_FILE_PREFIX = "airflow-files-spool-"
#: A spool file younger than this is never removed as stale (its owner may be about to lock it).
STALE_SPOOL_MIN_AGE_S = 60.0

if sys.platform != "win32":
    import fcntl

    def _try_lock(handle: int) -> bool:
        """Take the exclusive lock of the open file ``handle`` if no other open file holds it."""
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

else:  # pragma: no cover - Airflow workers do not run on Windows

    def _try_lock(handle: int) -> bool:
        return False  # no way to tell a live spool from a dead one: never remove any


class SpoolError(OSError):
    """The spool cannot hold the object, or fetching it failed, or it was closed."""


class SpooledObject:
    """An upload source that reads an :class:`~airflow_provider_files.uploads.ObjectSource` once.

    The fetch starts on :meth:`start` (or the first read); every ``range()`` and ``open()``
    reads the spool file, waiting for the bytes it needs. Use it as a context manager, or call
    :meth:`close`, which stops the fetch, wakes the readers with an error and removes the file.

    :param source: the object.
    :param folder: where the spool file goes (default: the system's temporary folder).
    :param range_bytes: bytes per ranged read (default :data:`SPOOL_RANGE_BYTES`).
    :param fetches_in_flight: ranged reads at once (default :data:`SPOOL_FETCHES_IN_FLIGHT`).
    :param space_hint: appended to the "not enough free space" error (how to choose the folder).
    """

    def __init__(
        self,
        source: ObjectSource,
        folder: str | os.PathLike[str] | None = None,
        *,
        range_bytes: int | None = None,
        fetches_in_flight: int | None = None,
        space_hint: str = "",
    ) -> None:
        self._range_bytes = range_bytes or SPOOL_RANGE_BYTES
        self._fetches_in_flight = fetches_in_flight or SPOOL_FETCHES_IN_FLIGHT
        if self._range_bytes < 1 or self._fetches_in_flight < 1:
            raise ValueError("range_bytes and fetches_in_flight must be >= 1")
        self._source = source
        self._folder = folder
        self._space_hint = space_hint
        self._changed = threading.Condition()
        self._written = 0  # bytes at the start of the spool file that hold the object's
        self._error: BaseException | None = None
        self._closed = False
        self._path: Path | None = None
        self._lock_handle: int | None = None  # holds the spool file's lock until close()
        self._fetcher: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SpooledObject({str(self._source)!r}, size={self.size})"

    def __str__(self) -> str:
        return str(self._source)

    def __enter__(self) -> SpooledObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the UploadSource protocol ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._source.name

    @property
    def size(self) -> int:
        return self._source.size

    def fingerprint(self) -> str:
        return self._source.fingerprint()

    def range(self, offset: int, length: int) -> BodySource:
        return SpoolRange(self, offset, length)

    def open(self, mode: str = "rb") -> IO[bytes]:
        """A reader of the whole object from the spool (for the md5 and for validation)."""
        if mode != "rb":
            raise ValueError(f"an upload source is read only in mode 'rb', not {mode!r}")
        return cast(IO[bytes], io.BufferedReader(SpoolReader(self)))

    # -- the fetch ----------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The spool file, once the fetch has started (gone after :meth:`close`)."""
        return self._path

    @property
    def bytes_spooled(self) -> int:
        with self._changed:
            return self._written

    def start(self) -> Path:
        """Check the free space, create the spool file and start the fetch (once); its path.

        :raises SpoolError: when the folder has less room than the object, or the spool is closed.
        """
        with self._changed:
            if self._closed:
                raise SpoolError(f"the spool of {self._source} is closed")
            if self._path is not None:
                return self._path
            folder = Path(self._folder) if self._folder else Path(tempfile.gettempdir())
            folder.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(folder).free
            if free < self.size:
                hint = f"; {self._space_hint}" if self._space_hint else ""
                raise SpoolError(
                    f"not enough free space in {folder} to spool {self._source} before uploading it: "
                    f"it needs {format_bytes(self.size)} ({self.size} bytes), {format_bytes(free)} "
                    f"({free} bytes) are free{hint}"
                )
            remove_stale_spools(folder)
            handle, name = tempfile.mkstemp(prefix=SPOOL_FILE_PREFIX, dir=folder)
            self._path = Path(name)
            self._lock_handle = os.open(name, os.O_RDONLY)
            _try_lock(self._lock_handle)
            self._fetcher = threading.Thread(
                target=self._fetch_all, args=(handle,), name="object-spool", daemon=True
            )
            self._fetcher.start()
            return self._path

    def _fetch_all(self, handle: int) -> None:
        """Fetch the ranges in order, ``fetches_in_flight`` at a time, writing each as it lands."""
        size, step = self.size, self._range_bytes
        starts = iter(range(0, size, step))
        pending: deque[tuple[int, Future[bytes]]] = deque()
        pool = ThreadPoolExecutor(max_workers=self._fetches_in_flight, thread_name_prefix="object-spool-get")

        def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append((start, pool.submit(self._source.fetch, start, min(start + step, size))))

        try:
            for _ in range(self._fetches_in_flight):
                submit_next()
            while pending and not self._is_closed():
                start, future = pending.popleft()
                data = future.result()
                _write_at(handle, data, start)
                with self._changed:
                    self._written = start + len(data)
                    self._changed.notify_all()
                del data, future
                submit_next()
        except BaseException as exc:
            with self._changed:
                self._error = exc
                self._changed.notify_all()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            os.close(handle)

    def _is_closed(self) -> bool:
        with self._changed:
            return self._closed

    def wait_for(self, end: int) -> Path:
        """Block until the spool holds the object's bytes up to ``end``; the spool file.

        :raises SpoolError: when the fetch failed (naming the object and the cause) or the spool
            was closed.
        """
        path = self.start()
        end = min(end, self.size)
        with self._changed:
            while self._written < end:
                if self._error is not None:
                    raise SpoolError(
                        f"fetching {self._source} failed after {self._written} of {self.size} bytes: "
                        f"{type(self._error).__name__}: {self._error}"
                    ) from self._error
                if self._closed:
                    raise SpoolError(f"the spool of {self._source} was closed before byte {end}")
                self._changed.wait()
        return path

    def close(self) -> None:
        """Stop the fetch (the reads in flight finish), wake every reader and remove the file."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        fetcher = self._fetcher
        if fetcher is not None and fetcher is not threading.current_thread():
            fetcher.join()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        if self._lock_handle is not None:
            os.close(self._lock_handle)
            self._lock_handle = None


def remove_stale_spools(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the spool files in ``folder`` that no open spool holds (their process died before
    removing them) and that are older than :data:`STALE_SPOOL_MIN_AGE_S`; the files removed."""
    removed: list[Path] = []
    now = time.time()
    for path in Path(folder).glob(SPOOL_FILE_PREFIX + "*"):
        try:
            if now - path.stat().st_mtime < STALE_SPOOL_MIN_AGE_S:
                continue
            handle = os.open(path, os.O_RDONLY)
        except OSError:  # gone meanwhile, or not ours to read
            continue
        try:
            if _try_lock(handle):
                path.unlink(missing_ok=True)
                removed.append(path)
        finally:
            os.close(handle)
    return removed


def _write_at(handle: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(handle, view, offset)
        view = view[written:]
        offset += written


class SpoolRange(SourceRange):
    """``length`` bytes from ``offset`` of a spooled object, read from the spool as it fills.

    :param spool: the spooled object.
    :param offset: first byte.
    :param length: number of bytes.
    """

    def __init__(self, spool: SpooledObject, offset: int, length: int) -> None:
        super().__init__(offset, length)
        self._spool = spool

    def chunks(self) -> Iterator[bytes]:
        end = self.offset + self._length
        path = self._spool.start()
        # an own handle per read: the spool's closing cannot pull it away mid-read
        with open(path, "rb", buffering=0) as handle:
            handle.seek(self.offset)
            position = self.offset
            while position < end:
                count = min(READ_CHUNK_BYTES, end - position)
                self._spool.wait_for(position + count)
                chunk = handle.read(count)
                if len(chunk) != count:
                    raise SpoolError(f"the spool of {self._spool} ended at byte {position + len(chunk)}")
                position += count
                yield chunk


class SpoolReader(SizedReader):
    """The whole spooled object from start to end: ``readinto(b)`` waits until ``len(b)`` bytes
    past the position are spooled.

    :param spool: the spooled object.
    """

    def __init__(self, spool: SpooledObject) -> None:
        super().__init__(spool.size)
        self._spool = spool
        self._handle = open(spool.start(), "rb", buffering=0)  # noqa: SIM115 (closed by close())

    def read_at(self, position: int, view: memoryview) -> None:
        self._spool.wait_for(position + len(view))
        self._handle.seek(position)
        read = 0
        while read < len(view):
            got = self._handle.readinto(view[read:])
            if not got:
                raise SpoolError(f"the spool of {self._spool} ended at byte {position + read}")
            read += got

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()
