"""Validation of Batch API input files (JSONL), streaming and in one pass.

A batch file is valid when every line is a UTF-8 JSON object
``{"custom_id": str, "method": "POST", "url": <batch endpoint>, "body": {...}}``, the ``custom_id``
values are unique, all lines use one endpoint and one ``body.model``, and the file stays within
the request-count and size limits.

Decisions about the edges of the format (each is tested):

* **Empty file** (no bytes, or only blank lines): invalid, rule ``empty_file``. A batch needs a request.
* **UTF-8 BOM**: invalid, rule ``bom`` (line 1). The rest of the file is still checked as if the BOM
  were absent. Strict JSON parsers (Python's ``json`` among them) reject a BOM and the Batch API
  does not document that it strips one, so a BOM would most likely make line 1 fail at batch time,
  after the upload. Re-save the file as UTF-8 without BOM.
* **CRLF line endings**: accepted. ``\\r`` is JSON whitespace, so each line still parses as one
  object; the report carries a warning.
* **Blank lines** (empty or whitespace only, anywhere, including extra newlines at the end): invalid,
  rule ``blank_line``. The Batch API treats every line as a request and does not document skipping
  blank ones.
* **Missing final newline**: accepted, with a warning.
* **model**: lines that set ``body.model`` must all set the same one (``mixed_models``). For
  ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings`` a model is required
  (``missing_model``); the other endpoints have a server-side default, so the model may be left out,
  but then it must be left out on every line (absent counts as one more model value). ``"model": null``
  counts as absent.
* **200 MB** is read as 200,000,000 bytes: the contract does not define the unit, and the smaller
  reading is the one under which a file we accept is accepted either way. Both limits are settable.

Speed: each line is parsed once with ``orjson``; a line that passes every rule costs a handful
of dictionary lookups, and only a line that breaks a rule goes through the slower code that
works out which rule and builds the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import orjson

from airflow_provider_files.jsonl._reading import (
    BatchSource,
    LineChunks,
    TruncatedLine,
    open_source,
    source_name,
)

BATCH_ENDPOINTS: Final[frozenset[str]] = frozenset(
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
#: Endpoints whose request body has no server-side default model.
MODEL_REQUIRED_ENDPOINTS: Final[frozenset[str]] = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
)
MODERATIONS_ENDPOINT: Final = "/v1/moderations"
DEFAULT_MAX_LINES: Final = 50_000
DEFAULT_MAX_BYTES: Final = 200_000_000
DEFAULT_MAX_ERRORS: Final = 20
EXCERPT_MAX_CHARS: Final = 80
UTF8_BOM: Final = b"\xef\xbb\xbf"

RuleCode = Literal[
    "empty_file",
    "bom",
    "blank_line",
    "invalid_utf8",
    "invalid_json",
    "not_object",
    "missing_custom_id",
    "bad_custom_id",
    "duplicate_custom_id",
    "bad_method",
    "unknown_url",
    "mixed_endpoints",
    "body_not_object",
    "missing_model",
    "bad_model",
    "mixed_models",
    "missing_input",
    "stream_not_allowed",
    "line_too_long",
    "too_many_lines",
    "too_many_bytes",
]
# Errors about the file as a whole: always kept in ValidationReport.errors, even past max_errors.
_LIMIT_RULES: Final[frozenset[str]] = frozenset({"too_many_lines", "too_many_bytes", "empty_file"})
_UNSET: Final = object()


@dataclass(frozen=True)
class BatchLimits:
    """Limits a batch file must stay within.

    :param max_lines: most requests (lines) in one file; ``None`` for no limit.
    :param max_bytes: largest file size in bytes; ``None`` for no limit.
    :param endpoints: the ``url`` values accepted on a line.
    """

    max_lines: int | None = DEFAULT_MAX_LINES
    max_bytes: int | None = DEFAULT_MAX_BYTES
    endpoints: frozenset[str] = BATCH_ENDPOINTS

    def __post_init__(self) -> None:
        for name in ("max_lines", "max_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"BatchLimits.{name} must be a positive integer or None, got {value!r}")
        if not self.endpoints:
            raise ValueError("BatchLimits.endpoints must name at least one endpoint")
        object.__setattr__(self, "endpoints", frozenset(self.endpoints))


DEFAULT_LIMITS: Final = BatchLimits()


@dataclass(frozen=True)
class LineError:
    """One broken rule.

    :param line: 1-based line number, or ``None`` for a problem of the whole file.
    :param rule: short stable code of the rule, e.g. ``duplicate_custom_id``.
    :param message: what is wrong, in words.
    :param excerpt: the start of the offending line (at most about 80 characters).
    """

    line: int | None
    rule: str
    message: str
    excerpt: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        text = f"{where}: {self.message} [{self.rule}]"
        return f"{text}: {self.excerpt}" if self.excerpt else text


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one batch file.

    :param source: name of the file (path, URL or stream name).
    :param lines: number of lines, i.e. requests in a valid file.
    :param bytes: size of the file in bytes.
    :param endpoint: the endpoint of the first line with a known endpoint, if any.
    :param model: the ``body.model`` of the requests, if any set one.
    :param errors: the first ``max_errors`` errors in line order, plus any limit errors.
    :param error_count: the total number of errors found.
    :param warnings: accepted oddities (CRLF line endings, no final newline).
    :param limits: the limits that were checked.
    """

    source: str
    lines: int
    bytes: int
    endpoint: str | None
    model: str | None
    errors: list[LineError]
    error_count: int
    warnings: list[str] = field(default_factory=list)
    limits: BatchLimits = DEFAULT_LIMITS

    @property
    def valid(self) -> bool:
        return self.error_count == 0

    def summary(self, max_shown: int = 5) -> str:
        """A human-readable message: the verdict, then the first ``max_shown`` errors, one per line."""
        if self.valid:
            model = f", model {self.model}" if self.model else ""
            text = (
                f"{self.source} is a valid batch file: {self.lines:,} requests to {self.endpoint}{model}, "
                f"{self.bytes:,} bytes."
            )
            return f"{text} Note: {'; '.join(self.warnings)}." if self.warnings else text
        plural = "error" if self.error_count == 1 else "errors"
        parts = [f"{self.source} is not a valid batch file: {self.error_count:,} {plural}."]
        parts.extend(f"  {error}" for error in self.errors[:max_shown])
        hidden = self.error_count - min(len(self.errors), max_shown)
        if hidden > 0:
            parts.append(f"  ... and {hidden:,} more.")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (for ``--json`` output and XCom)."""
        return {
            "source": self.source,
            "valid": self.valid,
            "lines": self.lines,
            "bytes": self.bytes,
            "endpoint": self.endpoint,
            "model": self.model,
            "error_count": self.error_count,
            "errors": [asdict(error) for error in self.errors],
            "warnings": list(self.warnings),
            "limits": {
                "max_lines": self.limits.max_lines,
                "max_bytes": self.limits.max_bytes,
                "endpoints": sorted(self.limits.endpoints),
            },
        }


class InvalidBatchFileError(ValueError):
    """A batch file broke at least one rule; :attr:`report` has the details.

    :param report: the validation report of the file.
    """

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def excerpt_of(line: bytes) -> str:
    """The start of ``line`` as printable text of at most :data:`EXCERPT_MAX_CHARS` characters."""
    text = bytes(line[: EXCERPT_MAX_CHARS * 4]).decode("utf-8", "replace").rstrip("\r")
    cut = len(text) > EXCERPT_MAX_CHARS or len(line) > EXCERPT_MAX_CHARS * 4
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:EXCERPT_MAX_CHARS])
    return text[:EXCERPT_MAX_CHARS] + ("..." if cut else "")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _moderation_body_ok(body: Mapping[str, Any]) -> bool:
    return "input" in body and body.get("stream") is not True


class BatchChecker:
    """The rules, applied to lines fed in file order; holds the state that spans lines.

    Used by :func:`validate_batch_file` and the sharder. Feed lines with :meth:`check_lines`
    (without their newline), then call :meth:`finish`.

    :param endpoints: accepted ``url`` values.
    :param max_errors: how many errors to keep (all are counted).
    """

    def __init__(self, endpoints: frozenset[str] = BATCH_ENDPOINTS, max_errors: int = DEFAULT_MAX_ERRORS):
        if max_errors < 0:
            raise ValueError(f"max_errors must be >= 0, got {max_errors}")
        self._endpoints = endpoints
        self._max_errors = max_errors
        self._first_line_of_id: dict[str, int] = {}
        self._endpoint: object = _UNSET
        self._endpoint_line = 0
        self._model: object = _UNSET
        self._model_line = 0
        self.errors: list[LineError] = []
        self.error_count = 0
        self.blank_lines = 0

    @property
    def endpoint(self) -> str | None:
        return self._endpoint if isinstance(self._endpoint, str) else None

    @property
    def model(self) -> str | None:
        return self._model if isinstance(self._model, str) else None

    def add_error(self, line: int | None, rule: RuleCode, message: str, raw: bytes | None = None) -> None:
        """Count an error; keep it if fewer than ``max_errors`` are kept (limit errors are always kept)."""
        self.error_count += 1
        if len(self.errors) < self._max_errors or rule in _LIMIT_RULES:
            self.errors.append(LineError(line, rule, message, excerpt_of(raw) if raw is not None else ""))

    def check_lines(self, lines: Iterable[bytes], first_line: int, *, has_truncated: bool = False) -> None:
        """Apply every per-line rule to ``lines``, numbered from ``first_line``.

        :param has_truncated: some of the lines are :class:`TruncatedLine` prefixes.
        """
        check_line = self._check_line
        if has_truncated or self._endpoint is _UNSET or self._model is _UNSET:
            for line_number, line in enumerate(lines, first_line):
                check_line(line, line_number)
            return
        # The fast path accepts a line only when it passes every rule; anything else, including
        # any exception on the way, goes to _check_line, which decides which rule broke.
        loads = orjson.loads
        register_id = self._first_line_of_id.setdefault
        endpoint = self._endpoint
        model = self._model
        plain = endpoint != MODERATIONS_ENDPOINT
        line_number = first_line - 1
        for line in lines:
            line_number += 1
            try:
                request = loads(line)
                custom_id = request["custom_id"]
                if (
                    request["method"] == "POST"
                    and request["url"] == endpoint
                    and (body := request["body"]).get("model") == model
                    and type(custom_id) is str
                    and custom_id
                    and (plain or _moderation_body_ok(body))
                    and register_id(custom_id, line_number) == line_number
                ):
                    continue
            except Exception:
                pass
            check_line(line, line_number)
            endpoint = self._endpoint
            model = self._model
            plain = endpoint != MODERATIONS_ENDPOINT

    def _check_line(self, line: bytes, line_number: int) -> None:
        add_error = self.add_error
        if isinstance(line, TruncatedLine):
            add_error(
                line_number,
                "line_too_long",
                f"line is {line.length:,} bytes, longer than a batch file may be",
                line,
            )
            return
        if not line.strip():
            self.blank_lines += 1
            add_error(line_number, "blank_line", "blank line; every line must be one request", line)
            return
        try:
            request = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as decode_error:
                add_error(
                    line_number,
                    "invalid_utf8",
                    f"not valid UTF-8 (byte {decode_error.start + 1} of the line)",
                    line,
                )
            else:
                add_error(line_number, "invalid_json", f"not valid JSON ({exc.msg})", line)
            return
        if type(request) is not dict:
            add_error(line_number, "not_object", f"a JSON {type(request).__name__}, not an object", line)
            return

        if "custom_id" not in request:
            add_error(line_number, "missing_custom_id", "custom_id is missing", line)
        else:
            custom_id = request["custom_id"]
            if type(custom_id) is not str or not custom_id:
                add_error(
                    line_number,
                    "bad_custom_id",
                    f"custom_id must be a non-empty string, not {_short(custom_id)}",
                    line,
                )
            else:
                first_line = self._first_line_of_id.setdefault(custom_id, line_number)
                if first_line != line_number:
                    add_error(
                        line_number,
                        "duplicate_custom_id",
                        f"duplicate custom_id {_short(custom_id)} (first seen on line {first_line})",
                        line,
                    )

        method = request.get("method")
        if method != "POST":
            reason = "method is missing" if "method" not in request else f"method is {_short(method)}"
            add_error(line_number, "bad_method", f'{reason}; it must be "POST"', line)

        url = request.get("url")
        line_endpoint: object = _UNSET
        if type(url) is not str or url not in self._endpoints:
            reason = (
                "url is missing" if "url" not in request else f"url {_short(url)} is not a batch endpoint"
            )
            add_error(
                line_number, "unknown_url", f"{reason}; use one of {', '.join(sorted(self._endpoints))}", line
            )
        elif self._endpoint is _UNSET:
            self._endpoint, self._endpoint_line = url, line_number
            line_endpoint = url
        elif url != self._endpoint:
            add_error(
                line_number,
                "mixed_endpoints",
                f"url {url!r} differs from {self._endpoint!r} (line {self._endpoint_line}); "
                "a batch file must use one endpoint",
                line,
            )
        else:
            line_endpoint = url

        body = request.get("body")
        if type(body) is not dict:
            reason = "body is missing" if "body" not in request else f"body is a JSON {type(body).__name__}"
            add_error(line_number, "body_not_object", f"{reason}; it must be an object", line)
            return

        model = body.get("model")
        # line_endpoint is set only when this line's url is the file's endpoint, so the model
        # state is only ever taken from lines that agree on the endpoint.
        endpoint_known = line_endpoint is not _UNSET
        if model is not None and (type(model) is not str or not model):
            add_error(
                line_number, "bad_model", f"body.model must be a non-empty string, not {_short(model)}", line
            )
        elif model is None and url in MODEL_REQUIRED_ENDPOINTS:
            add_error(line_number, "missing_model", f"body.model is missing; {url} needs a model", line)
        elif self._model is _UNSET:
            if endpoint_known:
                self._model, self._model_line = model, line_number
        elif model != self._model:
            first = f"{self._model!r}" if self._model is not None else "no model"
            this = f"model {model!r}" if model is not None else "no model"
            add_error(
                line_number,
                "mixed_models",
                f"{this}, but line {self._model_line} has {first}; a batch file must use one model",
                line,
            )

        if url == MODERATIONS_ENDPOINT:
            if "input" not in body:
                add_error(
                    line_number, "missing_input", "body.input is missing; /v1/moderations needs it", line
                )
            if body.get("stream") is True:
                add_error(
                    line_number, "stream_not_allowed", "body.stream=true is not allowed in a batch", line
                )


def file_level_checks(checker: BatchChecker, chunks: LineChunks, total_lines: int) -> list[str]:
    """Add the errors about the whole file; return the warnings."""
    if chunks.bytes_read == 0:
        checker.add_error(None, "empty_file", "file is empty; a batch file needs at least one request")
    elif total_lines == checker.blank_lines:
        checker.add_error(None, "empty_file", "file has no requests, only blank lines")
    warnings = []
    if chunks.saw_carriage_return:
        warnings.append("file uses CRLF line endings (accepted)")
    if chunks.bytes_read and not chunks.ends_with_newline:
        warnings.append("no newline at the end of the file (accepted)")
    return warnings


def validate_batch_file(
    source: BatchSource,
    *,
    limits: BatchLimits = DEFAULT_LIMITS,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> ValidationReport:
    """Check a batch input file against every rule in one streaming pass.

    Memory stays bounded: the file is read in 1 MiB chunks and only the ``custom_id`` values are
    kept (about 100 bytes each).

    :param source: a local path, a pathlib-like object with ``open("rb")`` (e.g. Airflow
        ``ObjectStoragePath``), or a binary file object positioned at the start of the file.
    :param limits: request-count, size and endpoint limits.
    :param max_errors: how many errors the report keeps (all are counted).
    :return: the report; check :attr:`ValidationReport.valid`.
    :raises OSError: if the file cannot be opened or read.
    """
    checker = BatchChecker(limits.endpoints, max_errors)
    max_lines = limits.max_lines
    max_bytes = limits.max_bytes
    with open_source(source) as stream:
        chunks = LineChunks(stream, max_line_bytes=max_bytes if max_bytes is not None else DEFAULT_MAX_BYTES)
        next_line = 1
        bytes_before = 0  # bytes of the file before the current list of lines
        for lines in chunks:
            count = len(lines)
            if next_line == 1 and lines[0][:3] == UTF8_BOM:
                bytes_before += strip_bom(checker, lines)
            checker.check_lines(lines, next_line, has_truncated=chunks.last_had_truncated)
            last_line = next_line + count - 1
            if max_lines is not None and next_line <= max_lines + 1 <= last_line:
                checker.add_error(max_lines + 1, "too_many_lines", "", lines[max_lines + 1 - next_line])
            line_sizes = (
                [_size_of(line) for line in lines] if chunks.last_had_truncated else list(map(len, lines))
            )
            unterminated = not chunks.ends_with_newline  # only ever true for the last list
            chunk_bytes = sum(line_sizes) + count - unterminated
            if max_bytes is not None and bytes_before <= max_bytes < bytes_before + chunk_bytes:
                offset = bytes_before
                for index, size in enumerate(line_sizes):
                    offset += size + 1
                    if offset - (unterminated and index == count - 1) > max_bytes:
                        checker.add_error(next_line + index, "too_many_bytes", "", lines[index])
                        break
            bytes_before += chunk_bytes
            next_line += count
        total_lines = next_line - 1
        warnings = file_level_checks(checker, chunks, total_lines)
        total_bytes = chunks.bytes_read
    errors = [_with_limit_message(error, total_lines, total_bytes, limits) for error in checker.errors]
    errors.sort(key=lambda error: error.line if error.line is not None else 0)
    return ValidationReport(
        source=source_name(source),
        lines=total_lines,
        bytes=total_bytes,
        endpoint=checker.endpoint,
        model=checker.model,
        errors=errors,
        error_count=checker.error_count,
        warnings=warnings,
        limits=limits,
    )


def _with_limit_message(error: LineError, lines: int, size: int, limits: BatchLimits) -> LineError:
    """Fill in the messages of limit errors, which need totals known only at the end."""
    if error.rule == "too_many_lines":
        message = (
            f"{lines:,} requests, more than the limit of {limits.max_lines:,}; this is the first line over it "
            "(split the file with shard_batch_file)"
        )
    elif error.rule == "too_many_bytes":
        message = (
            f"file is {size:,} bytes, more than the limit of {limits.max_bytes:,}; this line crosses it "
            "(split the file with shard_batch_file)"
        )
    else:
        return error
    return LineError(error.line, error.rule, message, error.excerpt)


def ensure_valid_batch_file(
    source: BatchSource,
    *,
    limits: BatchLimits = DEFAULT_LIMITS,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> ValidationReport:
    """Like :func:`validate_batch_file`, but raise if the file is not valid.

    :raises InvalidBatchFileError: if any rule is broken; the message names line, rule and excerpt.
    """
    report = validate_batch_file(source, limits=limits, max_errors=max_errors)
    if not report.valid:
        raise InvalidBatchFileError(report)
    return report


def strip_bom(checker: BatchChecker, lines: list[bytes]) -> int:
    """Report the BOM that starts ``lines[0]`` and remove it, so the line is checked as if it were absent.

    :return: the number of bytes removed.
    """
    checker.add_error(1, "bom", "file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM")
    if isinstance(lines[0], TruncatedLine):
        return 0
    lines[0] = lines[0][len(UTF8_BOM) :]
    return len(UTF8_BOM)


def _size_of(line: bytes) -> int:
    return line.length if isinstance(line, TruncatedLine) else len(line)
