"""Batch result files: account for every ``custom_id`` while the files stream past.

A line of a batch's output or error file is
``{"id": "batch_req_...", "custom_id": "...", "response": {"status_code": 200, "request_id": "...",
"body": {...}} | null, "error": null | {"code": "...", "message": "..."}}``; lines come in any order.

Rules (each is tested):

* **succeeded**: a line of the output file whose ``response.status_code`` is 2xx and ``error`` null.
  **failed**: any other line of the output file, and every line of the error file.
  Counts are of lines, so ``succeeded + failed`` is the number of result lines.
* **error code** of a failed line: ``error.code``, else ``response.body.error.code``, else
  ``http_<status>``, else ``unknown``.
* **retryable**: code ``batch_expired``, ``rate_limit_exceeded`` or ``server_error``, or status 429 or
  5xx; a 429 whose code is ``insufficient_quota`` is not (it lasts until someone pays). An id is
  retryable when it has no success line and all its failure lines are retryable.
* **missing**: in the input, in no result line; **duplicates**: on more than one line (across both
  files); **unexpected**: in a result line but not in the input.
* **usage**: summed over every line whose ``response.body.usage`` is an object: chat and completions
  (``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``), Responses API
  (``input_tokens``, ``output_tokens``, ``input_tokens_details.cached_tokens``), embeddings
  (``prompt_tokens``). Values that are not integers are ignored.
* Blank lines are skipped. A line that is not a JSON object, has no string ``custom_id``, or has
  neither ``response`` nor ``error`` raises :class:`ResultLineError` naming the file and line.

Memory: one read chunk (or one write) and the longest line, plus one dictionary entry per
``custom_id`` (its key and a shared small int: about 100 bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

import orjson

from airflow_provider_files.jsonl._reading import (
    BatchSource,
    LineChunks,
    TruncatedLine,
    open_source,
    source_name,
)
from airflow_provider_files.jsonl.line_scanner import BinaryWritable, LineScanner
from airflow_provider_files.jsonl.report import excerpt_of

ResultKind = Literal["output", "error"]

#: Longest result line accepted (an image generation with several base64 images can be tens of MB).
MAX_RESULT_LINE_BYTES: Final = 128 * 1024 * 1024
RETRYABLE_ERROR_CODES: Final[frozenset[str]] = frozenset(
    {"batch_expired", "rate_limit_exceeded", "server_error"}
)
NEVER_RETRYABLE_ERROR_CODES: Final[frozenset[str]] = frozenset({"insufficient_quota"})
#: How many ids each list in :meth:`ResultsSummary.to_dict` shows (the counts are always exact).
DEFAULT_MAX_LISTED_IDS: Final = 20
#: How many distinct error codes :meth:`ResultsSummary.to_dict` shows; the rest are summed as ``other``.
MAX_LISTED_ERROR_CODES: Final = 50
#: Longest id or error code shown in :meth:`ResultsSummary.to_dict`, in characters.
MAX_LISTED_TEXT_CHARS: Final = 200

# Per-id state, packed in one small int (small ints are shared, so an entry costs only its key).
_IN_INPUT: Final = 1
_SUCCEEDED: Final = 2
_FAILED_RETRYABLE: Final = 4
_FAILED_FINAL: Final = 8
_SEEN_ONCE: Final = 16
_SEEN_TWICE: Final = 32  # and more
_SEEN_MASK: Final = _SEEN_ONCE | _SEEN_TWICE


class ResultLineError(ValueError):
    """A result line that cannot be accounted for.

    :param source: name of the file.
    :param line: 1-based line number in that file.
    :param reason: what is wrong.
    :param raw: the line (only its start is kept, as :attr:`excerpt`).
    """

    def __init__(self, source: str, line: int, reason: str, raw: bytes = b"") -> None:
        self.source = source
        self.line = line
        self.reason = reason
        self.excerpt = excerpt_of(raw) if raw else ""
        message = f"{source} line {line}: {reason}"
        super().__init__(f"{message}: {self.excerpt}" if self.excerpt else message)


class ResultOutcome(NamedTuple):
    """What one result line says about its request."""

    custom_id: str
    succeeded: bool
    error_code: str | None
    retryable: bool
    #: ``(input, output, cached)`` tokens, or ``None`` when the line carries no usage.
    usage: tuple[int, int, int] | None


def _usage_of(usage: dict[str, Any]) -> tuple[int, int, int]:
    """``(input, output, cached)`` tokens of a ``usage`` object; values that are not ints count 0."""
    if "input_tokens" in usage or "output_tokens" in usage:  # Responses API (and images)
        tokens_in = usage.get("input_tokens")
        tokens_out = usage.get("output_tokens")
        details = usage.get("input_tokens_details")
    else:  # chat, completions, embeddings
        tokens_in = usage.get("prompt_tokens")
        tokens_out = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if type(details) is dict else None
    return (
        tokens_in if type(tokens_in) is int else 0,
        tokens_out if type(tokens_out) is int else 0,
        cached if type(cached) is int else 0,
    )


def parse_result_line(
    raw: bytes, kind: ResultKind, *, source: str = "<stream>", line: int = 0
) -> ResultOutcome:
    """Classify one result line (without its newline) from an output or error file.

    :raises ResultLineError: if the line is not a result line.
    """
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ResultLineError(source, line, f"not valid JSON ({exc.msg})", raw) from None
    if type(record) is not dict:
        raise ResultLineError(source, line, f"a JSON {type(record).__name__}, not an object", raw)
    custom_id = record.get("custom_id")
    if type(custom_id) is not str or not custom_id:
        reason = "custom_id is missing" if custom_id is None else "custom_id is not a non-empty string"
        raise ResultLineError(source, line, reason, raw)
    response = record.get("response")
    error = record.get("error")
    if response is not None and type(response) is not dict:
        raise ResultLineError(source, line, "response is neither an object nor null", raw)
    if response is None and error is None:
        raise ResultLineError(source, line, "neither response nor error is set", raw)

    status: object = None
    body: object = None
    if response is not None:
        status = response.get("status_code")
        if status is not None and type(status) is not int:
            raise ResultLineError(source, line, "response.status_code is not an integer", raw)
        body = response.get("body")
    usage_object = body.get("usage") if type(body) is dict else None
    usage = _usage_of(usage_object) if type(usage_object) is dict else None
    if kind == "output" and type(status) is int and 200 <= status < 300 and error is None:
        return ResultOutcome(custom_id, True, None, False, usage)

    code: object = error.get("code") if type(error) is dict else None
    if not (type(code) is str and code) and type(body) is dict:
        body_error = body.get("error")
        code = body_error.get("code") if type(body_error) is dict else None
    if type(code) is str and code:
        code_text = code[:MAX_LISTED_TEXT_CHARS]
    else:
        code_text = f"http_{status}" if type(status) is int else "unknown"
    retryable = code_text not in NEVER_RETRYABLE_ERROR_CODES and (
        code_text in RETRYABLE_ERROR_CODES or (type(status) is int and (status == 429 or status >= 500))
    )
    return ResultOutcome(custom_id, False, code_text, retryable, usage)


def plain_success(raw: bytes) -> tuple[str, object] | None:
    """``(custom_id, usage)`` of an output line that is a plain 2xx success, else ``None``.

    The quick test for the common line; ``None`` means "let :func:`parse_result_line` decide".
    """
    try:
        record = orjson.loads(raw)
        custom_id = record["custom_id"]
        response = record["response"]
        status = response["status_code"]
        if (
            type(custom_id) is str
            and custom_id
            and type(status) is int
            and 200 <= status < 300
            and record.get("error") is None
        ):
            body = response.get("body")
            return custom_id, body.get("usage") if type(body) is dict else None
    except Exception:  # any shape at all: the slow path names the problem
        pass
    return None


@dataclass(frozen=True)
class TokenUsage:
    """Tokens summed over the result lines.

    :param input_tokens: prompt (input) tokens.
    :param output_tokens: completion (output) tokens.
    :param cached_tokens: input tokens served from the prompt cache (part of ``input_tokens``).
    :param lines: how many lines carried a usage object.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    lines: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
            "lines": self.lines,
        }


def _shown(text: str) -> str:
    return text if len(text) <= MAX_LISTED_TEXT_CHARS else text[: MAX_LISTED_TEXT_CHARS - 3] + "..."


@dataclass(frozen=True)
class ResultsSummary:
    """The accounting of a batch's results against its input.

    The id lists are complete (input order, then order of appearance); :meth:`to_dict` caps them.

    :param total_input: requests in the input, or ``None`` when the input ids were not given.
    :param output_lines: lines in the output file(s).
    :param error_lines: lines in the error file(s).
    :param succeeded: lines that report a 2xx response.
    :param failed: all other lines.
    :param missing: input ids with no result line.
    :param duplicates: ids on more than one result line.
    :param unexpected: result ids that are not in the input.
    :param retryable: failed ids (from the input, with no success) worth sending again.
    :param non_retryable: failed ids (with no success) that would fail again.
    :param error_codes: error code -> number of failed lines, most frequent first.
    :param usage: token totals.
    """

    total_input: int | None
    output_lines: int
    error_lines: int
    succeeded: int
    failed: int
    missing: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    retryable: tuple[str, ...] = ()
    non_retryable: tuple[str, ...] = ()
    error_codes: dict[str, int] = field(default_factory=dict)
    usage: TokenUsage = TokenUsage()

    @property
    def complete(self) -> bool:
        """Every input id appears exactly once and no other id appears."""
        return not (self.missing or self.duplicates or self.unexpected)

    @property
    def failed_fraction(self) -> float:
        """Failed and missing requests over all requests (0.0 for an empty batch)."""
        total = self.total_input if self.total_input is not None else self.succeeded + self.failed
        return (self.failed + len(self.missing)) / total if total else 0.0

    def ids_to_resubmit(self, *, include_missing: bool = True) -> list[str]:
        """The retryable ids, and the missing ones (e.g. after ``cancelled``) unless told otherwise."""
        return [*self.retryable, *self.missing] if include_missing else list(self.retryable)

    def accounting_problems(self, max_shown: int = 5) -> str:
        """A sentence naming what breaks "every input id exactly once", or ``""``."""
        problems = []
        for name, ids in (("missing", self.missing), ("duplicated", self.duplicates)):
            if ids:
                shown = ", ".join(_shown(i) for i in ids[:max_shown]) + (
                    ", ..." if len(ids) > max_shown else ""
                )
                problems.append(f"{len(ids):,} {name} ({shown})")
        if self.unexpected:
            shown = ", ".join(_shown(i) for i in self.unexpected[:max_shown])
            more = ", ..." if len(self.unexpected) > max_shown else ""
            problems.append(f"{len(self.unexpected):,} not in the input ({shown}{more})")
        return "custom_id check failed: " + "; ".join(problems) if problems else ""

    def to_dict(self, max_listed_ids: int = DEFAULT_MAX_LISTED_IDS) -> dict[str, Any]:
        """Plain JSON-safe data for XCom, bounded in size: id lists are capped, counts are exact."""

        def listed(ids: tuple[str, ...]) -> list[str]:
            return [_shown(custom_id) for custom_id in ids[:max_listed_ids]]

        codes = list(self.error_codes.items())
        error_codes = {_shown(code): count for code, count in codes[:MAX_LISTED_ERROR_CODES]}
        if len(codes) > MAX_LISTED_ERROR_CODES:
            error_codes["other"] = error_codes.get("other", 0) + sum(
                count for _, count in codes[MAX_LISTED_ERROR_CODES:]
            )
        return {
            "total_input": self.total_input,
            "output_lines": self.output_lines,
            "error_lines": self.error_lines,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "complete": self.complete,
            "failed_fraction": self.failed_fraction,
            "missing_count": len(self.missing),
            "missing": listed(self.missing),
            "duplicate_count": len(self.duplicates),
            "duplicates": listed(self.duplicates),
            "unexpected_count": len(self.unexpected),
            "unexpected": listed(self.unexpected),
            "retryable_count": len(self.retryable),
            "retryable": listed(self.retryable),
            "non_retryable_count": len(self.non_retryable),
            "non_retryable": listed(self.non_retryable),
            "error_codes": error_codes,
            "usage": self.usage.to_dict(),
        }


class ResultsAccount:
    """Accumulates result lines (output and error files, any order) against the input's custom_ids.

    Feed it with :meth:`sink` (while downloading), :meth:`add_file` or :meth:`add_line`; then call
    :meth:`summary`.

    :param input_ids: the input's custom_ids in input order (see :func:`read_custom_ids`);
        ``None`` when the input is not known (then nothing is missing or unexpected).
    """

    def __init__(self, input_ids: Iterable[str] | None = None) -> None:
        self._known_input = input_ids is not None
        self._state: dict[str, int] = dict.fromkeys(input_ids, _IN_INPUT) if input_ids is not None else {}
        self.total_input = len(self._state) if self._known_input else None
        self.lines: dict[ResultKind, int] = {"output": 0, "error": 0}
        self.succeeded = 0
        self.failed = 0
        self._codes: dict[str, int] = {}
        self._tokens = [0, 0, 0, 0]  # input, output, cached, lines with usage

    def add_line(self, raw: bytes, kind: ResultKind, *, source: str = "<stream>", line: int = 0) -> None:
        """Account for one line (without newline); a blank line is skipped.

        :raises ResultLineError: if the line is not a result line.
        """
        self.add_lines([raw], kind, source=source, first_line=line)

    def add_lines(
        self, lines: Iterable[bytes], kind: ResultKind, *, source: str = "<stream>", first_line: int = 1
    ) -> None:
        """Account for consecutive lines (without newlines) numbered from ``first_line``.

        :raises ResultLineError: on the first line that is not a result line.
        """
        # The fast path takes a plain success and nothing else; any other line goes through
        # parse_result_line, which decides (and names what is wrong).
        state = self._state
        get_state = state.get
        is_output = kind == "output"
        counted = succeeded = usage_lines = tokens_in = tokens_out = cached = 0
        number = first_line - 1
        try:
            for raw in lines:
                number += 1
                success = plain_success(raw) if is_output else None
                if success is None:
                    if raw.strip():
                        counted += 1
                        self._add_outcome(parse_result_line(raw, kind, source=source, line=number))
                    continue
                custom_id, usage = success
                counted += 1
                succeeded += 1
                old = get_state(custom_id, 0)
                state[custom_id] = old | _SUCCEEDED | (_SEEN_TWICE if old & _SEEN_MASK else _SEEN_ONCE)
                if type(usage) is dict:
                    line_usage = _usage_of(usage)
                    tokens_in += line_usage[0]
                    tokens_out += line_usage[1]
                    cached += line_usage[2]
                    usage_lines += 1
        finally:
            self.lines[kind] += counted
            self.succeeded += succeeded
            tokens = self._tokens
            tokens[0] += tokens_in
            tokens[1] += tokens_out
            tokens[2] += cached
            tokens[3] += usage_lines

    def _add_outcome(self, outcome: ResultOutcome) -> None:
        state = self._state.get(outcome.custom_id, 0)
        state |= _SEEN_TWICE if state & _SEEN_MASK else _SEEN_ONCE
        if outcome.succeeded:
            self.succeeded += 1
            state |= _SUCCEEDED
        else:
            self.failed += 1
            state |= _FAILED_RETRYABLE if outcome.retryable else _FAILED_FINAL
            code = outcome.error_code or "unknown"
            self._codes[code] = self._codes.get(code, 0) + 1
        self._state[outcome.custom_id] = state
        if outcome.usage is not None:
            tokens = self._tokens
            tokens[0] += outcome.usage[0]
            tokens[1] += outcome.usage[1]
            tokens[2] += outcome.usage[2]
            tokens[3] += 1

    def sink(
        self,
        inner: BinaryWritable | None,
        kind: ResultKind,
        *,
        source: str = "<stream>",
        max_line_bytes: int = MAX_RESULT_LINE_BYTES,
    ) -> LineScanner:
        """A writable that stores into ``inner`` and accounts each line as ``kind``.

        Call its ``finish()`` once the download is complete. Its ``write`` raises
        :class:`ResultLineError` for a malformed line and
        :class:`~airflow_provider_files.jsonl.line_scanner.LineTooLongError` past ``max_line_bytes``.
        """
        add_lines = self.add_lines

        def on_lines(lines: list[bytes], first_line: int) -> None:
            add_lines(lines, kind, source=source, first_line=first_line)

        return LineScanner(on_lines, inner, source=source, max_line_bytes=max_line_bytes)

    def add_file(
        self, source: BatchSource, kind: ResultKind, *, max_line_bytes: int = MAX_RESULT_LINE_BYTES
    ) -> None:
        """Account for every line of a result file, streaming.

        :raises ResultLineError: on the first line that is not a result line.
        """
        name = source_name(source)
        with open_source(source) as stream:
            chunks = LineChunks(stream, max_line_bytes=max_line_bytes)
            number = 1
            for lines in chunks:
                if chunks.last_had_truncated:
                    index = next(i for i, raw in enumerate(lines) if isinstance(raw, TruncatedLine))
                    self.add_lines(lines[:index], kind, source=name, first_line=number)
                    size = lines[index].size_text()  # type: ignore[attr-defined]
                    raise ResultLineError(
                        name, number + index, f"line is {size}, more than {max_line_bytes:,}"
                    )
                self.add_lines(lines, kind, source=name, first_line=number)
                number += len(lines)

    def summary(self) -> ResultsSummary:
        """The accounting so far."""
        missing, duplicates, unexpected, retryable, non_retryable = [], [], [], [], []
        known = self._known_input
        for custom_id, state in self._state.items():
            if not state & _SEEN_MASK:
                missing.append(custom_id)
                continue
            if state & _SEEN_TWICE:
                duplicates.append(custom_id)
            if known and not state & _IN_INPUT:
                unexpected.append(custom_id)
            if state & _SUCCEEDED:
                continue
            if state & _FAILED_FINAL:
                non_retryable.append(custom_id)
            elif not known or state & _IN_INPUT:
                retryable.append(custom_id)
        tokens_in, tokens_out, cached, usage_lines = self._tokens
        return ResultsSummary(
            total_input=self.total_input,
            output_lines=self.lines["output"],
            error_lines=self.lines["error"],
            succeeded=self.succeeded,
            failed=self.failed,
            missing=tuple(missing),
            duplicates=tuple(duplicates),
            unexpected=tuple(unexpected),
            retryable=tuple(retryable),
            non_retryable=tuple(non_retryable),
            error_codes=dict(sorted(self._codes.items(), key=lambda item: (-item[1], item[0]))),
            usage=TokenUsage(tokens_in, tokens_out, cached, usage_lines),
        )
