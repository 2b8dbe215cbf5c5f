"""The limits of an upload through the Uploads API, and the checks of its arguments."""

from __future__ import annotations

import math
import mimetypes
from pathlib import PurePath

from airflow_provider_files.api.client import EXPIRES_AFTER_MAX_S, EXPIRES_AFTER_MIN_S

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

MAX_PART_SIZE_BYTES = 64 * MIB
MIN_PART_SIZE_BYTES = 64 * KIB
DEFAULT_PART_SIZE_BYTES = 16 * MIB
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
MAX_UPLOAD_BYTES = 8 * GIB
# Keeps the checkpoint small and the request count sane; 10,000 parts of 64 MiB exceed 8 GiB.
MAX_PARTS = 10_000


def guess_mime_type(filename: str) -> str:
    """MIME type for ``filename``: ``text/jsonl`` for ``.jsonl`` (OpenAI's own example), else by extension."""
    if PurePath(filename).suffix.lower() == ".jsonl":
        return "text/jsonl"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def validate_part_size(part_size_bytes: int) -> int:
    if isinstance(part_size_bytes, bool) or not isinstance(part_size_bytes, int):
        raise TypeError(f"part_size_bytes must be an int, got {type(part_size_bytes).__name__}")
    if not MIN_PART_SIZE_BYTES <= part_size_bytes <= MAX_PART_SIZE_BYTES:
        raise ValueError(
            f"part_size_bytes must be between {MIN_PART_SIZE_BYTES} (64 KiB) and {MAX_PART_SIZE_BYTES} "
            f"(64 MiB, the API's limit per part), got {part_size_bytes}"
        )
    return part_size_bytes


def validate_concurrency(concurrency: int) -> int:
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ValueError(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    return concurrency


def validate_expires_after(expires_after_s: int | None) -> int | None:
    if expires_after_s is not None and not EXPIRES_AFTER_MIN_S <= expires_after_s <= EXPIRES_AFTER_MAX_S:
        raise ValueError(
            f"expires_after_s must be between {EXPIRES_AFTER_MIN_S} (1 hour) and "
            f"{EXPIRES_AFTER_MAX_S} (30 days), got {expires_after_s}"
        )
    return expires_after_s


def check_source_size(name: str, size: int, part_size_bytes: int) -> None:
    """Refuse a source the Uploads API cannot take in parts of ``part_size_bytes``."""
    if size <= 0:
        raise ValueError(f"{name} is empty: the Uploads API needs at least one byte")
    if size > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"{name} is {size} bytes; one upload can hold at most {MAX_UPLOAD_BYTES} bytes (8 GiB)"
        )
    parts = math.ceil(size / part_size_bytes)
    if parts > MAX_PARTS:
        raise ValueError(
            f"{name} would need {parts} parts of {part_size_bytes} bytes; at most {MAX_PARTS} "
            f"are allowed: use a part size of at least {math.ceil(size / MAX_PARTS)} bytes"
        )
