"""Inputs of both suites: real bytes on disk (sparse files would not exercise reading), made fast.

A binary file repeats one random block with a different header on every block, so the data is
incompressible, every block hashes differently and generation runs at disk speed. A JSONL file
holds valid Batch request lines with unique ``custom_id`` values and varied text. Both return a
:class:`DataFile` whose md5 was computed while writing; :func:`md5_of` hashes any file.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB
RANDOM_BLOCK_BYTES = 64 * MIB
HASH_CHUNK_BYTES = 8 * MIB
WRITE_BATCH_BYTES = 8 * MIB
JSONL_MODEL = "gpt-4o-mini"
JSONL_URL = "/v1/chat/completions"
# the part of a JSONL line around its user message (custom_id, url, model, system prompt ...)
JSONL_LINE_OVERHEAD_BYTES = 260
DEFAULT_LINE_BYTES = 300
_NON_ASCII_WORDS = ("café", "naïve", "über", "déjà", "façade", "smörgåsbord", "日本語", "données", "€", "—")


@dataclass(frozen=True)
class DataFile:
    """A generated input and what the server must end up holding.

    :param path: where it was written.
    :param size: its length in bytes.
    :param md5: hex md5 of its content.
    :param lines: JSONL lines (0 for binary files).
    """

    path: Path
    size: int
    md5: str
    lines: int = 0


def md5_of(path: Path | str) -> str:
    """Hex md5 of a file's content, read in 8 MiB blocks."""
    digest = hashlib.md5()
    with open(path, "rb", buffering=0) as handle:
        while block := handle.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _write_chunks(path: Path, chunks: Iterator[bytes | memoryview]) -> tuple[int, str]:
    """Write ``chunks`` to ``path``; its size and md5."""
    digest = hashlib.md5()
    written = 0
    with open(path, "wb", buffering=0) as handle:
        for chunk in chunks:
            handle.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return written, digest.hexdigest()


def write_random_file(
    path: Path, size: int, seed: int = 1, *, block_bytes: int = RANDOM_BLOCK_BYTES
) -> DataFile:
    """Write ``size`` bytes of incompressible data (deterministic per ``seed``) to ``path``."""
    rng = random.Random(seed)
    block = bytearray(rng.randbytes(min(block_bytes, max(size, 1))))

    def blocks() -> Iterator[bytes | memoryview]:
        written = 0
        index = 0
        while written < size:
            header = f"block {index:012d} seed {seed} size {size}\n".encode()[: len(block)]
            block[: len(header)] = header
            length = min(len(block), size - written)
            yield memoryview(block)[:length]
            written += length
            index += 1

    written, md5 = _write_chunks(path, blocks())
    return DataFile(path=path, size=written, md5=md5)


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 11))) for _ in range(4096)]


def write_batch_file(
    path: Path,
    lines: int | None = None,
    *,
    max_bytes: int | None = None,
    line_bytes: int = DEFAULT_LINE_BYTES,
    seed: int = 2,
    non_ascii: float = 0.0,
    model: str = JSONL_MODEL,
    id_prefix: str = "request",
) -> DataFile:
    """Write valid Batch JSONL lines (chat completions, one model): ``lines`` of them, or as many
    as fit in ``max_bytes`` (the file never exceeds it), or both limits.

    :param line_bytes: about how long each line is.
    :param non_ascii: share of lines whose user message holds non-ASCII words.
    """
    if lines is None and max_bytes is None:
        raise ValueError("give lines, max_bytes or both")
    rng = random.Random(seed)
    words = _vocabulary(rng)
    # One long text; each line takes a differently placed and sized slice of it.
    text = " ".join(rng.choice(words) for _ in range(200_000))
    counted = 0

    def batches() -> Iterator[bytes | memoryview]:
        nonlocal counted
        pending: list[bytes] = []
        pending_bytes = total = 0
        while lines is None or counted < lines:
            spread = line_bytes // 8
            content_length = max(16, line_bytes - JSONL_LINE_OVERHEAD_BYTES + rng.randint(-spread, spread))
            start = rng.randrange(0, len(text) - content_length)
            content = text[start : start + content_length]
            if non_ascii and rng.random() < non_ascii:
                content = f"{rng.choice(_NON_ASCII_WORDS)} {content} {rng.choice(_NON_ASCII_WORDS)}"
            line = (
                f'{{"custom_id":"{id_prefix}-{counted:09d}","method":"POST","url":"{JSONL_URL}",'
                f'"body":{{"model":"{model}","messages":[{{"role":"system","content":'
                f'"You are a helpful assistant. Answer briefly."}},{{"role":"user","content":"{content}"}}],'
                f'"max_tokens":{64 + counted % 512},"temperature":0.{counted % 10}}}}}\n'
            ).encode()
            if max_bytes is not None and total + len(line) > max_bytes:
                break
            pending.append(line)
            pending_bytes += len(line)
            total += len(line)
            counted += 1
            if pending_bytes >= WRITE_BATCH_BYTES:
                yield b"".join(pending)
                pending.clear()
                pending_bytes = 0
        yield b"".join(pending)

    written, md5 = _write_chunks(path, batches())
    return DataFile(path=path, size=written, md5=md5, lines=counted)


def write_short_requests(path: Path, lines: int, *, max_tokens: int, url: str = JSONL_URL) -> DataFile:
    """Batch JSONL of ``lines`` short chat requests, each asking for ``max_tokens`` of answer (the
    emulator's answers are then that long: a results file of a chosen size from a small input)."""

    def chunks() -> Iterator[bytes]:
        block: list[bytes] = []
        for index in range(lines):
            block.append(
                f'{{"custom_id":"request-{index:09d}","method":"POST","url":"{url}",'
                f'"body":{{"model":"{JSONL_MODEL}","messages":[{{"role":"user","content":'
                f'"Summarise item {index}."}}],"max_tokens":{max_tokens}}}}}\n'.encode()
            )
            if len(block) == 10_000:
                yield b"".join(block)
                block = []
        if block:
            yield b"".join(block)

    path.parent.mkdir(parents=True, exist_ok=True)
    size, md5 = _write_chunks(path, chunks())
    return DataFile(path, size, md5, lines)


def size_label(size: int) -> str:
    """``4 GiB``, ``512 MiB``, ``400 MB`` or ``17 bytes``."""
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= MB:
        return f"{size / MB:.0f} MB"
    return f"{size} bytes"
