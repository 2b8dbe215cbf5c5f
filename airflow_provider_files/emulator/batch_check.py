"""The emulator's own check of Batch input files (independent of the client's validator).

OpenAI marks a bad batch input file only when a batch is created; the emulator can instead mark
the file ``error`` (``--validate-batch``), so tests see the first bad line in ``status_details``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

try:
    import orjson

    def _loads(line: bytes) -> Any:
        return orjson.loads(line)

except ImportError:  # pragma: no cover - orjson is a dependency of the package

    def _loads(line: bytes) -> Any:
        return json.loads(line)


BATCH_URLS = frozenset(
    {
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/videos",
    }
)
MAX_BATCH_REQUESTS = 50_000
MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024


def iter_lines(segments: Iterable[Path]) -> Iterator[bytes]:
    """Lines (without newline) of the concatenation of ``segments``, read in big blocks."""
    carry = b""
    for segment in segments:
        with open(segment, "rb") as handle:
            while block := handle.read(READ_CHUNK_BYTES):
                lines = (carry + block).split(b"\n")
                carry = lines.pop()
                yield from lines
    if carry:
        yield carry


def check_batch_file(segments: Iterable[Path], total_bytes: int) -> str | None:
    """The first problem of a batch input file as a ``status_details`` text, or None if it is valid."""
    if total_bytes > MAX_BATCH_FILE_BYTES:
        return f"Batch input file is {total_bytes} bytes; the limit is {MAX_BATCH_FILE_BYTES} bytes."
    seen_ids: dict[str, int] = {}
    endpoint: str | None = None
    model: object = None
    count = 0
    for line_number, raw in enumerate(iter_lines(segments), start=1):
        line = raw.rstrip(b"\r")
        if not line.strip():
            return f"Line {line_number}: empty line; every line must be one JSON request."
        try:
            request = _loads(line)
        except ValueError:
            return f"Line {line_number}: not valid JSON."
        if not isinstance(request, dict):
            return f"Line {line_number}: a request must be a JSON object."
        count += 1
        if count > MAX_BATCH_REQUESTS:
            return f"Line {line_number}: more than {MAX_BATCH_REQUESTS} requests in one batch file."
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return f"Line {line_number}: 'custom_id' must be a non-empty string."
        if custom_id in seen_ids:
            return (
                f"Line {line_number}: custom_id {custom_id!r} is a duplicate "
                f"(first used on line {seen_ids[custom_id]})."
            )
        seen_ids[custom_id] = line_number
        if request.get("method") != "POST":
            return f"Line {line_number}: 'method' must be 'POST'."
        url = request.get("url")
        if url not in BATCH_URLS:
            return f"Line {line_number}: 'url' {url!r} is not a batch endpoint."
        if endpoint is None:
            endpoint = url
        elif url != endpoint:
            return f"Line {line_number}: 'url' {url!r} differs from {endpoint!r}; one endpoint per file."
        body = request.get("body")
        if not isinstance(body, dict):
            return f"Line {line_number}: 'body' must be a JSON object."
        line_model = body.get("model")
        if model is None:
            model = line_model
        elif line_model != model:
            return f"Line {line_number}: model {line_model!r} differs from {model!r}; one model per file."
        extra = set(request) - {"custom_id", "method", "url", "body"}
        if extra:
            return f"Line {line_number}: unexpected field(s) {sorted(extra)}."
    if count == 0:
        return "Batch input file contains no requests."
    return None
