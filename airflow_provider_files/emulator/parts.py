"""Upload parts being received, and the md5 of an upload computed while its parts arrive."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HASH_READ_BYTES = 4 * 1024 * 1024


def hash_segments(segments: Iterable[Path]) -> str:
    digest = hashlib.md5()
    for segment in segments:
        with open(segment, "rb", buffering=0) as handle:
            while block := handle.read(HASH_READ_BYTES):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class PartAttempt:
    """A part being received; becomes a part once its body is complete."""

    id: str
    path: Path
    done: asyncio.Event = field(default_factory=asyncio.Event)
    size_bytes: int = 0
    succeeded: bool = False
    created_at: int = 0


class SpeculativeHasher:
    """Hashes an upload's parts in the order their requests started, while other parts arrive.

    Sequential clients, and parallel clients that start parts in file order, then get
    ``complete`` with ``md5`` answered without re-reading the whole file; in any other order the
    upload is re-hashed at completion.
    """

    def __init__(self) -> None:
        self.attempts: list[PartAttempt] = []
        self.chain: list[str] = []
        self.digests: list[str] = []
        self._md5 = hashlib.md5()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next = 0

    def add(self, attempt: PartAttempt) -> None:
        self.attempts.append(attempt)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def blocked(self) -> bool:
        """True when the hasher waits for a part that is still in flight, or has nothing to do."""
        return self._next >= len(self.attempts) or not self.attempts[self._next].done.is_set()

    async def _run(self) -> None:
        while True:
            if self._next >= len(self.attempts):
                self._wake.clear()
                await self._wake.wait()
                continue
            attempt = self.attempts[self._next]
            await attempt.done.wait()
            if attempt.succeeded:
                try:
                    await asyncio.to_thread(self._hash_into, attempt.path)
                except OSError:
                    return
                self.chain.append(attempt.id)
                self.digests.append(self._md5.hexdigest())
            self._next += 1

    def _hash_into(self, path: Path) -> None:
        with open(path, "rb", buffering=0) as handle:
            while block := handle.read(HASH_READ_BYTES):
                self._md5.update(block)

    async def digest_of(self, part_ids: list[str]) -> str | None:
        """The md5 of ``part_ids`` concatenated if it is (or is about to be) known, else None."""
        wanted = len(part_ids)
        while True:
            known = min(len(self.chain), wanted)
            if self.chain[:known] != part_ids[:known]:
                return None
            if len(self.chain) >= wanted:
                return self.digests[wanted - 1] if wanted else hashlib.md5().hexdigest()
            if self.blocked():
                return None
            await asyncio.sleep(0.002)
