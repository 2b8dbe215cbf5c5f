"""The limits of an upload through the Uploads API, and the checks of its arguments."""

from __future__ import annotations

import math
import mimetypes
from pathlib import PurePath

from airflow_provider_files.api.limits import (
    MAX_PART_SIZE_BYTES,
    MIB,
    MIN_PART_SIZE_BYTES,
    validate_expires_after_s,
    validate_part_size,
)

GIB = 1024 * MIB

DEFAULT_PART_SIZE_BYTES = 16 * MIB
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
MAX_UPLOAD_BYTES = 8 * GIB
# Keeps the checkpoint small and the request count sane; 10,000 parts of 64 MiB exceed 8 GiB.
MAX_PARTS = 10_000
# OpenAI takes up to 512 MB in one POST /files, but Azure users report failures from about
# 100-150 MB; above this threshold the Uploads API is used instead.
SINGLE_REQUEST_MAX_BYTES = 100 * MIB
SINGLE_REQUEST_LIMIT_BYTES = 512 * MIB


def uses_single_request(size_bytes: int, single_request_max_bytes: int = SINGLE_REQUEST_MAX_BYTES) -> bool:
    """Whether a file of ``size_bytes`` goes in one ``POST /files`` (else through the Uploads API).

    ``UploadJsonlOperator`` and ``airflow-files upload`` both decide with this.
    """
    return size_bytes <= single_request_max_bytes


def guess_mime_type(filename: str) -> str:
    """MIME type for ``filename``: ``text/jsonl`` for ``.jsonl`` (OpenAI's own example), else by extension."""
    if PurePath(filename).suffix.lower() == ".jsonl":
        return "text/jsonl"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def even_part_size(size: int, concurrency: int, target_bytes: int = DEFAULT_PART_SIZE_BYTES) -> int:
    """A part size near ``target_bytes`` that makes the part count a multiple of ``concurrency``.

    With equal parts started together, every wave of ``concurrency`` parts is then full: no
    connection idles through a last, partial wave, and a file smaller than one wave still uses
    every connection. Clamped to the API's part size limits.
    """
    parts = max(1, math.ceil(size / target_bytes))
    parts = math.ceil(parts / concurrency) * concurrency
    return min(MAX_PART_SIZE_BYTES, max(MIN_PART_SIZE_BYTES, math.ceil(size / parts)))


def validate_concurrency(concurrency: int) -> int:
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ValueError(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    return concurrency


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


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PART_SIZE_BYTES",
    "GIB",
    "MAX_CONCURRENCY",
    "MAX_PARTS",
    "MAX_PART_SIZE_BYTES",
    "MAX_UPLOAD_BYTES",
    "MIN_PART_SIZE_BYTES",
    "SINGLE_REQUEST_LIMIT_BYTES",
    "SINGLE_REQUEST_MAX_BYTES",
    "check_source_size",
    "even_part_size",
    "guess_mime_type",
    "uses_single_request",
    "validate_concurrency",
    "validate_expires_after_s",
    "validate_part_size",
]
