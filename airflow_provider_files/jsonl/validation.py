"""Validation of Batch API input files (JSONL), streaming and in one pass.

A batch file is valid when every line is a UTF-8 JSON object
``{"custom_id": str, "method": "POST", "url": <batch endpoint>, "body": {...}}``, the ``custom_id``
values are unique, all lines use one endpoint and one ``body.model``, and the file stays within
the request-count and size limits.

The rules themselves live in :mod:`~airflow_provider_files.jsonl.checker`, the report and limits in
:mod:`~airflow_provider_files.jsonl.report`; the names are re-exported here.

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
* **Reading is bounded**, so a huge or endless input (``/dev/zero``, ``yes ... |``) ends quickly in
  bounded memory: reading stops at the first byte past ``max_bytes`` (the line it stops in is
  reported as crossing the limit and is not checked further), and at a line longer than
  ``max_line_bytes`` (:data:`DEFAULT_MAX_LINE_BYTES`), which is refused before it is held whole.
  Lines after the first one over ``max_lines`` are counted, not checked. The report's ``read_whole``
  says whether reading stopped early.

Speed: each line is parsed once with ``orjson``; a line that passes every rule costs a handful
of dictionary lookups, and only a line that breaks a rule goes through the slower code that
works out which rule and builds the message.
"""

from __future__ import annotations

import os
from typing import Final, cast

from airflow_provider_files.jsonl._hashing import HashingReader
from airflow_provider_files.jsonl._parallel import (
    PARALLEL_MIN_BYTES,
    auto_workers,
    check_in_ranges,
    local_file_size,
)
from airflow_provider_files.jsonl._reading import (
    BatchSource,
    LineChunks,
    open_source,
    source_name,
    total_size,
)
from airflow_provider_files.jsonl.checker import BatchChecker, RuleCode, file_level_checks, strip_bom
from airflow_provider_files.jsonl.report import (
    BATCH_ENDPOINTS,
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_LINES,
    EXCERPT_MAX_CHARS,
    MODEL_REQUIRED_ENDPOINTS,
    MODERATIONS_ENDPOINT,
    UTF8_BOM,
    BatchLimits,
    InvalidBatchFileError,
    LineError,
    ValidationReport,
    excerpt_of,
)

#: What a limit error suggests: the two ways this project splits a file.
SPLIT_HINT: Final = "split it with `airflow-files shard`, or upload it with split=True"

__all__ = [
    "BATCH_ENDPOINTS",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ERRORS",
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_LINE_BYTES",
    "EXCERPT_MAX_CHARS",
    "MODEL_REQUIRED_ENDPOINTS",
    "MODERATIONS_ENDPOINT",
    "SPLIT_HINT",
    "UTF8_BOM",
    "BatchChecker",
    "BatchLimits",
    "InvalidBatchFileError",
    "LineError",
    "RuleCode",
    "ValidationReport",
    "ensure_valid_batch_file",
    "excerpt_of",
    "file_level_checks",
    "strip_bom",
    "validate_batch_file",
]


def validate_batch_file(
    source: BatchSource,
    *,
    limits: BatchLimits = DEFAULT_LIMITS,
    max_errors: int = DEFAULT_MAX_ERRORS,
    workers: int | None = None,
) -> ValidationReport:
    """Check a batch input file against every rule in one streaming pass.

    The same read gives the file's md5 (:attr:`ValidationReport.md5`), hashed beside the parsing,
    so an upload that follows need not read the file again to hash it.

    Memory stays bounded: the file is read in 1 MiB chunks (4 MiB ranges when parallel), only the
    ``custom_id`` values are kept (about 100 bytes each), and no line longer than
    ``limits.max_line_bytes`` is held. Reading stops at the first byte past ``limits.max_bytes``.

    A large local file on a machine with three cores or more is parsed in worker processes while
    this process reads it once and hashes it (:mod:`~airflow_provider_files.jsonl._parallel`); the
    report is the same as the serial pass's, errors, order and line numbers included.

    :param source: a local path, a pathlib-like object with ``open("rb")`` (e.g. Airflow
        ``ObjectStoragePath``), or a binary file object positioned at the start of the file.
    :param limits: request-count, size and endpoint limits.
    :param max_errors: how many errors the report keeps (all are counted).
    :param workers: worker processes that parse a local file: ``None`` for one per core but one
        (up to 4) when the file is at least 64 MiB and there are three cores or more (on two, the
        serial pass already uses both: parsing and the md5 thread), ``0`` or ``1`` to read
        serially, ``2`` or more to use that many whatever the size.
    :return: the report; check :attr:`ValidationReport.valid`.
    :raises OSError: if the file cannot be opened or read.
    """
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    size = local_file_size(source)
    count = auto_workers() if workers is None else workers
    if size is not None and count >= 2 and (workers is not None or size >= PARALLEL_MIN_BYTES):
        outcome = check_in_ranges(cast("str | os.PathLike[str]", source), limits, max_errors, workers=count)
        if outcome is not None:
            stats = outcome.stats
            warnings = file_level_checks(outcome.checker, stats, outcome.lines)
            sizes = (stats.bytes_read, stats.bytes_read)
            return _report(source, outcome.checker, outcome.lines, sizes, warnings, outcome.md5, limits)
    return _validate_serially(source, limits, max_errors)


def _validate_serially(source: BatchSource, limits: BatchLimits, max_errors: int) -> ValidationReport:
    checker = BatchChecker(limits.endpoints, max_errors)
    max_lines = limits.max_lines
    max_bytes = limits.max_bytes
    with open_source(source) as stream, HashingReader(stream) as hashed:
        chunks = LineChunks(
            hashed,
            max_line_bytes=limits.line_cap_bytes,
            # Reading stops at the first byte past the size limit, and lines after the first one
            # over the line limit are only counted: a huge or endless input ends early and cheaply.
            max_read_bytes=None if max_bytes is None else max_bytes + 1,
            max_yield_lines=None if max_lines is None else max_lines + 1,
        )
        next_line = 1
        last_line = b""
        for lines in chunks:
            if next_line == 1 and lines[0][:3] == UTF8_BOM:
                strip_bom(checker, lines)
            checker.check_lines(lines, next_line, has_truncated=chunks.last_had_truncated)
            next_line += len(lines)
            if max_lines is not None and next_line - 1 == max_lines + 1:
                checker.add_error(max_lines + 1, "too_many_lines", "", lines[-1])
            last_line = lines[-1]
        total_lines = chunks.lines
        if max_bytes is not None and chunks.bytes_read > max_bytes:
            # Only ever the last line read: reading stops at the first byte past the limit.
            excerpt = chunks.stop_excerpt if chunks.stopped == "byte_limit" else last_line
            checker.add_error(total_lines, "too_many_bytes", "", excerpt)
        warnings = file_level_checks(checker, chunks, total_lines)
        size = chunks.bytes_read if chunks.stopped is None else total_size(stream, chunks.bytes_read)
        md5 = hashed.hexdigest()
    read_whole = chunks.stopped is None
    return _report(
        source, checker, total_lines, (size, chunks.bytes_read), warnings, md5 if read_whole else None, limits
    )


def _report(
    source: BatchSource,
    checker: BatchChecker,
    lines: int,
    sizes: tuple[int | None, int],
    warnings: list[str],
    md5: str | None,
    limits: BatchLimits,
) -> ValidationReport:
    """The report; ``sizes`` is the file's size if known and the bytes read, ``md5`` ``None``
    when reading stopped early."""
    size, bytes_read = sizes
    read_whole = md5 is not None
    errors = [_with_limit_message(error, lines, size, read_whole, limits) for error in checker.errors]
    errors.sort(key=lambda error: error.line if error.line is not None else 0)
    return ValidationReport(
        source=source_name(source),
        lines=lines,
        bytes=size if size is not None else bytes_read,
        endpoint=checker.endpoint,
        model=checker.model,
        errors=errors,
        error_count=checker.error_count,
        warnings=warnings,
        limits=limits,
        read_whole=read_whole,
        md5=md5,
    )


def _with_limit_message(
    error: LineError, lines: int, size: int | None, read_whole: bool, limits: BatchLimits
) -> LineError:
    """Fill in the messages of limit errors, which need totals known only at the end."""
    if error.rule == "too_many_lines":
        count = f"{lines:,} requests" if read_whole else f"at least {lines:,} requests"
        message = (
            f"{count}, more than the limit of {limits.max_lines:,}; this is the first line over it "
            f"({SPLIT_HINT})"
        )
    elif error.rule == "too_many_bytes":
        over = (
            f"file is {size:,} bytes, more than the limit of {limits.max_bytes:,}"
            if size is not None
            else f"file is more than {limits.max_bytes:,} bytes, the limit"
        )
        message = f"{over}; this line crosses it, and reading stopped there ({SPLIT_HINT})"
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
