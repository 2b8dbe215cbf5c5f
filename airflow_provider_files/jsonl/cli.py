"""``airflow-files validate`` (and ``shard``): check or split a Batch JSONL file from the shell.

Exit status: 0 valid (or split), 1 invalid, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable

from airflow_provider_files._cli_args import number
from airflow_provider_files.jsonl.sharding import shard_batch_file
from airflow_provider_files.jsonl.validation import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_LINES,
    BatchLimits,
    InvalidBatchFileError,
    validate_batch_file,
)

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_ERROR = 2

_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def _size_in_bytes(text: str) -> int:
    """Parse ``200000000``, ``200MB`` (decimal) or ``190MiB`` (binary) into a positive byte count."""
    match = _SIZE_PATTERN.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS or int(match.group(1)) < 1:
        raise ValueError(f"not a size: {text!r} (use e.g. 200000000, 200MB or 190MiB)")
    return int(match.group(1)) * _SIZE_UNITS[unit]


# flag, converter, default, metavar, help: the limits ``validate`` and ``shard`` share
_LIMIT_OPTIONS: tuple[tuple[str, Callable[[str], int], int, str, str], ...] = (
    (
        "--max-lines",
        number(int, minimum=1),
        DEFAULT_MAX_LINES,
        "N",
        f"most requests per file (default {DEFAULT_MAX_LINES:,})",
    ),
    (
        "--max-bytes",
        number(_size_in_bytes),
        DEFAULT_MAX_BYTES,
        "SIZE",
        f"largest file size: bytes, or with a unit such as 200MB or 190MiB (default {DEFAULT_MAX_BYTES:,})",
    ),
    (
        "--max-line-bytes",
        number(_size_in_bytes),
        DEFAULT_MAX_LINE_BYTES,
        "SIZE",
        f"longest line (one request); reading stops at a longer one (default {DEFAULT_MAX_LINE_BYTES:,} bytes)",
    ),
    (
        "--max-errors",
        number(int, minimum=0),
        DEFAULT_MAX_ERRORS,
        "N",
        f"how many errors to show (all are counted; default {DEFAULT_MAX_ERRORS})",
    ),
)


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    for flag, convert, default, metavar, help_text in _LIMIT_OPTIONS:
        parser.add_argument(flag, type=convert, default=default, metavar=metavar, help=help_text)
    parser.add_argument("--json", action="store_true", help="print a machine-readable JSON report")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``airflow-files validate``."""
    parser.add_argument("path", metavar="PATH", help="the batch JSONL file to check ('-' for stdin)")
    _add_limit_options(parser)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.path``; print the report; return 0 valid, 1 invalid, 2 I/O error."""
    limits = BatchLimits(
        max_lines=args.max_lines, max_bytes=args.max_bytes, max_line_bytes=args.max_line_bytes
    )
    source = sys.stdin.buffer if args.path == "-" else args.path
    try:
        report = validate_batch_file(source, limits=limits, max_errors=args.max_errors)
    except OSError as exc:
        print(f"airflow-files validate: cannot read {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.summary(max_shown=args.max_errors))
    return EXIT_VALID if report.valid else EXIT_INVALID


def configure_shard_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``airflow-files shard`` (not wired into the top-level CLI yet)."""
    parser.add_argument("path", metavar="PATH", help="the batch JSONL file to split")
    parser.add_argument("destination", metavar="DEST_DIR", help="folder for the shards (created if missing)")
    parser.add_argument("--prefix", help="shard file name prefix (default: the source name without .jsonl)")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace the shards of an earlier run with the same prefix in DEST_DIR (without it, "
        "such a folder is refused)",
    )
    _add_limit_options(parser)


def run_shard(args: argparse.Namespace) -> int:
    """Split ``args.path`` into ``args.destination``; return 0 done, 1 invalid source, 2 I/O error."""
    try:
        shards = shard_batch_file(
            args.path,
            args.destination,
            max_lines=args.max_lines,
            max_bytes=args.max_bytes,
            prefix=args.prefix,
            max_errors=args.max_errors,
            max_line_bytes=args.max_line_bytes,
            replace=args.replace,
        )
    except InvalidBatchFileError as exc:
        report = exc.report
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary(args.max_errors))
        return EXIT_INVALID
    except (OSError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"airflow-files shard: {message}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps([shard.__dict__ for shard in shards], indent=2))
    else:
        for shard in shards:
            print(
                f"{shard.path}: {shard.lines:,} requests, {shard.bytes:,} bytes (from line {shard.first_line})"
            )
    return EXIT_VALID
