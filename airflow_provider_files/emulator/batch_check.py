"""The emulator's own check of Batch input files (independent of the client's validator).

A batch checks its input file while ``validating`` and fails with the bad lines in
``errors.data`` (:func:`scan_batch_file`). The emulator can also mark a bad file ``error`` at upload
(``--validate-batch``), so tests see the first bad line in ``status_details`` (:func:`check_batch_file`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
MAX_OUTPUT_TOKEN_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


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


@dataclass(frozen=True)
class LineError:
    """One problem of a batch input file, shaped like the API's ``BatchError``.

    :param code: machine-readable code (``invalid_json_line``, ``duplicate_custom_id`` ...).
    :param message: what is wrong, without the line number.
    :param param: the request field at fault, or None.
    :param line: 1-based line number, or None for a whole-file problem.
    """

    code: str
    message: str
    param: str | None = None
    line: int | None = None

    def text(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line is not None else self.message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.text(), "param": self.param, "line": self.line}


@dataclass(frozen=True)
class RequestSummary:
    """What the emulator keeps of one valid request line to fake its result.

    :param custom_id: the request's id.
    :param size_bytes: length of the line (drives the fake token counts).
    :param input_count: number of inputs (embeddings); 1 otherwise.
    :param max_output_tokens: the request's ``max_tokens`` / ``max_completion_tokens`` /
        ``max_output_tokens``, if any: the fake answer is then exactly that long.
    """

    custom_id: str
    size_bytes: int
    input_count: int = 1
    max_output_tokens: int | None = None


@dataclass
class BatchScan:
    """The result of reading a batch input file: its problems, or its requests and model."""

    errors: list[LineError] = field(default_factory=list)
    requests: list[RequestSummary] = field(default_factory=list)
    model: str | None = None
    url: str | None = None


def _check_request(
    line_number: int, request: dict[str, Any], scan: BatchScan, seen_ids: dict[str, int], endpoint: str | None
) -> LineError | None:
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return LineError(
            "invalid_custom_id", "'custom_id' must be a non-empty string.", "custom_id", line_number
        )
    if custom_id in seen_ids:
        return LineError(
            "duplicate_custom_id",
            f"custom_id {custom_id!r} is a duplicate (first used on line {seen_ids[custom_id]}).",
            "custom_id",
            line_number,
        )
    seen_ids[custom_id] = line_number
    if request.get("method") != "POST":
        return LineError("invalid_method", "'method' must be 'POST'.", "method", line_number)
    url = request.get("url")
    if url not in BATCH_URLS:
        return LineError("invalid_url", f"'url' {url!r} is not a batch endpoint.", "url", line_number)
    if endpoint is not None and url != endpoint:
        return LineError(
            "mismatched_endpoint",
            f"'url' {url!r} does not match the batch's endpoint {endpoint!r}.",
            "url",
            line_number,
        )
    if scan.url is None:
        scan.url = url
    elif url != scan.url:
        return LineError(
            "mismatched_endpoint",
            f"'url' {url!r} differs from {scan.url!r}; one endpoint per file.",
            "url",
            line_number,
        )
    body = request.get("body")
    if not isinstance(body, dict):
        return LineError("invalid_body", "'body' must be a JSON object.", "body", line_number)
    line_model = body.get("model")
    if scan.model is None:
        scan.model = line_model if isinstance(line_model, str) else None
    elif line_model != scan.model:
        return LineError(
            "mismatched_model",
            f"model {line_model!r} differs from {scan.model!r}; one model per file.",
            "body.model",
            line_number,
        )
    extra = set(request) - {"custom_id", "method", "url", "body"}
    if extra:
        return LineError("unexpected_field", f"unexpected field(s) {sorted(extra)}.", None, line_number)
    return None


def _max_output_tokens(body: dict[str, Any]) -> int | None:
    for name in MAX_OUTPUT_TOKEN_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def scan_batch_file(
    segments: Iterable[Path], total_bytes: int, *, endpoint: str | None = None, max_errors: int = 1
) -> BatchScan:
    """Read a batch input file, collecting up to ``max_errors`` problems and the valid requests.

    :param endpoint: the batch's endpoint; every line's ``url`` must equal it when given.
    """
    scan = BatchScan()
    if total_bytes > MAX_BATCH_FILE_BYTES:
        scan.errors.append(
            LineError(
                "file_too_large",
                f"Batch input file is {total_bytes} bytes; the limit is {MAX_BATCH_FILE_BYTES} bytes.",
            )
        )
        return scan
    seen_ids: dict[str, int] = {}
    count = 0
    for line_number, raw in enumerate(iter_lines(segments), start=1):
        line = raw.rstrip(b"\r")
        error: LineError | None = None
        request: Any = None
        if not line.strip():
            error = LineError(
                "invalid_json_line", "empty line; every line must be one JSON request.", None, line_number
            )
        else:
            try:
                request = _loads(line)
            except ValueError:
                error = LineError("invalid_json_line", "not valid JSON.", None, line_number)
            else:
                if not isinstance(request, dict):
                    error = LineError(
                        "invalid_json_line", "a request must be a JSON object.", None, line_number
                    )
        if error is None:
            count += 1
            if count > MAX_BATCH_REQUESTS:
                scan.errors.append(
                    LineError(
                        "too_many_requests",
                        f"more than {MAX_BATCH_REQUESTS} requests in one batch file.",
                        None,
                        line_number,
                    )
                )
                return scan
            error = _check_request(line_number, request, scan, seen_ids, endpoint)
        if error is not None:
            scan.errors.append(error)
            if len(scan.errors) >= max_errors:
                return scan
            continue
        body = request["body"]
        inputs = body.get("input")
        scan.requests.append(
            RequestSummary(
                request["custom_id"],
                len(line),
                len(inputs) if isinstance(inputs, list) and inputs else 1,
                _max_output_tokens(body),
            )
        )
    if count == 0 and not scan.errors:
        scan.errors.append(LineError("empty_file", "Batch input file contains no requests."))
    return scan


def check_batch_file(segments: Iterable[Path], total_bytes: int) -> str | None:
    """The first problem of a batch input file as a ``status_details`` text, or None if it is valid."""
    scan = scan_batch_file(segments, total_bytes, max_errors=1)
    return scan.errors[0].text() if scan.errors else None
