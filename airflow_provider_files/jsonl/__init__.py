"""Batch JSONL files: validation and sharding. No Airflow and no HTTP in here."""

from __future__ import annotations

from airflow_provider_files.jsonl.sharding import ShardInfo, shard_batch_file
from airflow_provider_files.jsonl.validation import (
    BATCH_ENDPOINTS,
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
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
    "BatchLimits",
    "InvalidBatchFileError",
    "LineError",
    "ShardInfo",
    "ValidationReport",
    "ensure_valid_batch_file",
    "shard_batch_file",
    "validate_batch_file",
]
