"""Benchmark inputs: real bytes on disk (sparse files would not exercise reading), made fast.

A binary file repeats one random block with a different header on every block, so the data is
incompressible, every block hashes differently and generation runs at disk speed. A JSONL file
holds valid Batch request lines with unique ``custom_id`` values and varied text.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
GIB = 1024 * MIB
RANDOM_BLOCK_BYTES = 64 * MIB
JSONL_MODEL = "gpt-4o-mini"
JSONL_URL = "/v1/chat/completions"
_WORDS_SEED = 20240611


@dataclass(frozen=True)
class DataFile:
    """A generated input and what the server must end up holding."""

    path: Path
    size: int
    md5: str
    lines: int = 0


def make_random_file(
    path: Path, size: int, *, block_bytes: int = RANDOM_BLOCK_BYTES, seed: int = 1
) -> DataFile:
    """Write ``size`` bytes of incompressible data to ``path``; returns its size and md5."""
    rng = random.Random(seed)
    block = bytearray(rng.randbytes(min(block_bytes, max(size, 1))))
    digest = hashlib.md5()
    written = 0
    index = 0
    with open(path, "wb", buffering=0) as handle:
        while written < size:
            header = f"block {index:012d} seed {seed} size {size}\n".encode()
            block[: len(header)] = header
            length = min(len(block), size - written)
            view = memoryview(block)[:length]
            handle.write(view)
            digest.update(view)
            written += length
            index += 1
    return DataFile(path=path, size=size, md5=digest.hexdigest())


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 11))) for _ in range(4096)]


def make_jsonl_file(
    path: Path, target_bytes: int, *, line_bytes: int = 4096, seed: int = 2, id_prefix: str = "request"
) -> DataFile:
    """Write valid Batch JSONL lines (chat completions, one model) until ``target_bytes`` is reached.

    Lines are about ``line_bytes`` long; the file never exceeds ``target_bytes``.
    """
    rng = random.Random(seed)
    words = _vocabulary(rng)
    # One long text; each line takes a differently placed and sized slice of it.
    text = " ".join(rng.choice(words) for _ in range(200_000))
    digest = hashlib.md5()
    written = 0
    lines = 0
    pending: list[bytes] = []
    pending_bytes = 0
    with open(path, "wb") as handle:
        while True:
            content_length = max(16, line_bytes - 260 + rng.randint(-line_bytes // 8, line_bytes // 8))
            start = rng.randrange(0, len(text) - content_length)
            content = text[start : start + content_length]
            line = (
                f'{{"custom_id":"{id_prefix}-{lines:09d}","method":"POST","url":"{JSONL_URL}",'
                f'"body":{{"model":"{JSONL_MODEL}","messages":[{{"role":"system","content":'
                f'"You are a helpful assistant. Answer briefly."}},{{"role":"user","content":"{content}"}}],'
                f'"max_tokens":{64 + lines % 512},"temperature":0.{lines % 10}}}}}\n'
            ).encode()
            if written + pending_bytes + len(line) > target_bytes:
                break
            pending.append(line)
            pending_bytes += len(line)
            lines += 1
            if pending_bytes >= 8 * MIB:
                chunk = b"".join(pending)
                handle.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                pending.clear()
                pending_bytes = 0
        chunk = b"".join(pending)
        handle.write(chunk)
        digest.update(chunk)
        written += len(chunk)
    return DataFile(path=path, size=written, md5=digest.hexdigest(), lines=lines)


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb", buffering=0) as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def drop_from_page_cache(path: Path) -> None:
    """Best effort: ask the kernel to forget the file's cached pages (no root needed)."""
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
