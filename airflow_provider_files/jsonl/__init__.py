"""Batch JSONL files: validation, sharding and result accounting. No Airflow and no HTTP in here."""

from __future__ import annotations

from airflow_provider_files.jsonl.line_scanner import LineScanner, LineTooLongError
from airflow_provider_files.jsonl.result_files import (
    ResultFiles,
    WrittenFile,
    account_results,
    merge_result_rounds,
    read_custom_ids,
    write_in_input_order,
    write_input_subset,
)
from airflow_provider_files.jsonl.results import (
    ResultLineError,
    ResultsAccount,
    ResultsSummary,
    TokenUsage,
    parse_result_line,
)
from airflow_provider_files.jsonl.sharding import ShardInfo, shard_batch_file
from airflow_provider_files.jsonl.validation import (
    BATCH_ENDPOINTS,
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_LINES,
    BatchLimits,
    InvalidBatchFileError,
    LineError,
    ValidationReport,
    ensure_valid_batch_file,
    validate_batch_file,
)

__all__ = [
    "BATCH_ENDPOINTS",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_LINE_BYTES",
    "BatchLimits",
    "InvalidBatchFileError",
    "LineError",
    "LineScanner",
    "LineTooLongError",
    "ResultFiles",
    "ResultLineError",
    "ResultsAccount",
    "ResultsSummary",
    "ShardInfo",
    "TokenUsage",
    "ValidationReport",
    "WrittenFile",
    "account_results",
    "ensure_valid_batch_file",
    "merge_result_rounds",
    "parse_result_line",
    "read_custom_ids",
    "shard_batch_file",
    "validate_batch_file",
    "write_in_input_order",
    "write_input_subset",
]
