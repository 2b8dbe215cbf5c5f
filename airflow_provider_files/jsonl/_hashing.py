"""The md5 of a batch file taken in the validation pass, so the file is read once for both.

The uploader sends (or compares) this md5 instead of hashing the file again, which also proves
that the bytes uploaded are the bytes validated. The chunks are hashed by a background thread:
``hashlib`` releases the GIL while it hashes a chunk, so the md5 runs beside the parsing on a
second core instead of after it.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from types import TracebackType

from airflow_provider_files.jsonl._reading import BinaryReadable

# Chunks waiting to be hashed (1 MiB each): the parser runs ahead of the hasher by at most this.
PENDING_CHUNKS = 4


class HashingReader:
    """A binary stream whose every chunk read is also fed to an md5 (in a background thread).

    Use as a context manager; :meth:`hexdigest` waits for the hash of everything read so far.

    :param stream: the stream to read.
    """

    def __init__(self, stream: BinaryReadable) -> None:
        self._stream = stream
        self._digest = hashlib.md5(usedforsecurity=False)
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=PENDING_CHUNKS)
        self._thread = threading.Thread(target=self._hash, name="jsonl-md5", daemon=True)
        self._finished = False

    def __enter__(self) -> HashingReader:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._finish()

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        if chunk and not isinstance(chunk, str):  # text is refused by the reader, with a message
            self._pending.put(bytes(chunk))
        return chunk

    def hexdigest(self) -> str:
        """The md5 of every byte read through this reader."""
        self._finish()
        return self._digest.hexdigest()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._pending.put(None)
            self._thread.join()

    def _hash(self) -> None:
        while (chunk := self._pending.get()) is not None:
            self._digest.update(chunk)
