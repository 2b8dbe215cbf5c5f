"""Upload parts being received, and the md5 of an upload computed while its parts arrive."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _hashlib import HASH as _Md5

HASH_READ_BYTES = 4 * 1024 * 1024
# The hasher follows the part it waits for while it is written, reading it in steps of this size.
FOLLOW_STEP_BYTES = 1024 * 1024


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
    # bytes written to ``path`` so far; ``changed`` is set once ``wake_at`` is reached, and when done
    written_bytes: int = 0
    wake_at: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wrote(self, size_bytes: int) -> None:
        self.written_bytes += size_bytes
        if self.written_bytes >= self.wake_at:
            self.changed.set()

    def finish(self, *, succeeded: bool) -> None:
        self.succeeded = succeeded
        self.done.set()
        self.changed.set()


class SpeculativeHasher:
    """Hashes an upload's parts in the order their requests started, while other parts arrive.

    After each part it keeps the md5 state so far (a copy of a ``hashlib`` object, about 100
    bytes), so ``complete`` can pick up from the longest prefix of ``part_ids`` that matches the
    order hashed: with parts listed in creation order nothing is read again; in any other order
    only the parts from the first difference on are re-read. The result is exact either way.
    """

    def __init__(self) -> None:
        self.attempts: list[PartAttempt] = []
        self.chain: list[str] = []
        # states[i]: md5 of the first i parts of ``chain`` (states[0] is the empty md5)
        self.states: list[_Md5] = [hashlib.md5()]
        self.bytes_hashed = 0
        self._md5 = hashlib.md5()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next = 0
        self._finished = False

    def add(self, attempt: PartAttempt) -> None:
        self.attempts.append(attempt)
        if self._task is None and not self._finished:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    def stop(self) -> None:
        self._finished = True
        if self._task is not None:
            self._task.cancel()
        self._progress.set()

    def blocked(self) -> bool:
        """True when the hasher has stopped, waits for a part still in flight, or has nothing to do."""
        return (
            self._finished or self._next >= len(self.attempts) or not self.attempts[self._next].done.is_set()
        )

    async def _run(self) -> None:
        try:
            while True:
                if self._next >= len(self.attempts):
                    self._wake.clear()
                    self._progress.set()
                    await self._wake.wait()
                    continue
                attempt = self.attempts[self._next]
                self._progress.set()
                try:
                    hashed = await self._follow(attempt)
                    if attempt.succeeded:
                        await asyncio.to_thread(self._hash_range, attempt.path, hashed, None)
                except OSError:
                    await attempt.done.wait()
                    if attempt.succeeded:
                        raise  # a received part deleted: cancelled, expired or reset
                if attempt.succeeded:
                    self.chain.append(attempt.id)
                    self.states.append(self._md5.copy())
                else:  # a failed part: forget what of it was hashed
                    self._md5 = self.states[-1].copy()
                self._next += 1
                self._progress.set()
        except OSError:  # the chain ends here
            self._finished = True
            self._progress.set()

    async def _follow(self, attempt: PartAttempt) -> int:
        """Hash ``attempt`` while it is written, up to about its last step; the bytes hashed."""
        hashed = 0
        while not attempt.done.is_set():
            if attempt.written_bytes - hashed >= FOLLOW_STEP_BYTES:
                hashed += await asyncio.to_thread(
                    self._hash_range, attempt.path, hashed, attempt.written_bytes
                )
                continue
            attempt.wake_at = hashed + FOLLOW_STEP_BYTES
            attempt.changed.clear()
            await attempt.changed.wait()
        return hashed

    def _hash_range(self, path: Path, start: int, end: int | None) -> int:
        """Add bytes ``start``..``end`` (None: the end of the file) of ``path`` to the md5."""
        read_bytes = 0
        with open(path, "rb", buffering=0) as handle:
            handle.seek(start)
            while end is None or start + read_bytes < end:
                wanted = HASH_READ_BYTES if end is None else min(HASH_READ_BYTES, end - start - read_bytes)
                block = handle.read(wanted)
                if not block:
                    break
                self._md5.update(block)
                read_bytes += len(block)
        self.bytes_hashed += read_bytes
        return read_bytes

    async def prefix_state(self, part_ids: list[str]) -> tuple[int, _Md5]:
        """The longest prefix of ``part_ids`` hashed in order, and a copy of its md5 state.

        Waits while the hasher is still working on parts that match ``part_ids``; returns as
        soon as it is done, diverges from ``part_ids``, or waits for a part still in flight.
        """
        wanted = len(part_ids)
        while True:
            known = min(len(self.chain), wanted)
            matched = 0
            while matched < known and self.chain[matched] == part_ids[matched]:
                matched += 1
            if matched < known or matched == wanted or self.blocked():
                return matched, self.states[matched].copy()
            self._progress.clear()
            await self._progress.wait()


def hash_onto(state: _Md5, segments: Iterable[Path]) -> tuple[str, int]:
    """Continue ``state`` (changed in place) with the bytes of ``segments``; the hex digest and
    the number of bytes read."""
    read_bytes = 0
    for segment in segments:
        with open(segment, "rb", buffering=0) as handle:
            while block := handle.read(HASH_READ_BYTES):
                state.update(block)
                read_bytes += len(block)
    return state.hexdigest(), read_bytes
