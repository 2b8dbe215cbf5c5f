"""The per-line rules of a batch file, and the checks of the file as a whole.

:class:`BatchChecker` holds the state that spans lines (``custom_id`` values, the endpoint and the
model of the file); the validator and the sharder both feed it lines in file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, Protocol

import orjson

from airflow_provider_files.jsonl._reading import TruncatedLine
from airflow_provider_files.jsonl.report import (
    BATCH_ENDPOINTS,
    DEFAULT_MAX_ERRORS,
    MODEL_REQUIRED_ENDPOINTS,
    MODERATIONS_ENDPOINT,
    UTF8_BOM,
    LineError,
    excerpt_of,
)

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

    def merge_clean(self, ids: list[str], first_line: int, url: str, model: str | None) -> bool:
        """Take in a run of lines each found to pass every per-line rule on its own, all with
        ``url`` and ``model``, as :meth:`check_lines` would; ``False`` (state unchanged) when they
        clash with the lines before them or among themselves, which :meth:`check_lines` must then report.

        :param ids: the lines' ``custom_id`` values, in order.
        :param first_line: the number of the first of the lines.
        """
        if url not in self._endpoints or (self._endpoint is not _UNSET and self._endpoint != url):
            return False
        if self._model is not _UNSET and self._model != model:
            return False
        seen = self._first_line_of_id
        if len(set(ids)) != len(ids) or not seen.keys().isdisjoint(ids):
            return False
        if self._endpoint is _UNSET:
            self._endpoint, self._endpoint_line = url, first_line
        if self._model is _UNSET:
            self._model, self._model_line = model, first_line
        seen.update(zip(ids, range(first_line, first_line + len(ids)), strict=True))
        return True

    def _check_line(self, line: bytes, line_number: int) -> None:
        add_error = self.add_error
        if isinstance(line, TruncatedLine):
            add_error(
                line_number,
                "line_too_long",
                f"line is longer than {line.limit:,} bytes, the longest line accepted here; "
                "reading stopped there",
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


class ReadFacts(Protocol):
    """What a read found out about the file as a whole (:class:`~airflow_provider_files.jsonl._reading.LineChunks` has it)."""

    @property
    def bytes_read(self) -> int: ...
    @property
    def stopped(self) -> str | None: ...
    @property
    def saw_carriage_return(self) -> bool: ...
    @property
    def ends_with_newline(self) -> bool: ...


def file_level_checks(checker: BatchChecker, chunks: ReadFacts, total_lines: int) -> list[str]:
    """Add the errors about the whole file; return the warnings."""
    if chunks.bytes_read == 0:
        checker.add_error(None, "empty_file", "file is empty; a batch file needs at least one request")
    elif total_lines == checker.blank_lines and chunks.stopped is None:
        checker.add_error(None, "empty_file", "file has no requests, only blank lines")
    warnings = []
    if chunks.saw_carriage_return:
        warnings.append("file uses CRLF line endings (accepted)")
    if chunks.bytes_read and not chunks.ends_with_newline and chunks.stopped is None:
        warnings.append("no newline at the end of the file (accepted)")
    return warnings


def strip_bom(checker: BatchChecker, lines: list[bytes]) -> int:
    """Report the BOM that starts ``lines[0]`` and remove it, so the line is checked as if it were absent.

    :return: the number of bytes removed.
    """
    checker.add_error(1, "bom", "file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM")
    if isinstance(lines[0], TruncatedLine):
        return 0
    lines[0] = lines[0][len(UTF8_BOM) :]
    return len(UTF8_BOM)
