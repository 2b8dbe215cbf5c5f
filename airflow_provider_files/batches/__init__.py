"""Batch rules, no Airflow imports: creating a batch once per task run (run key, look before
create, lost answers, pacing, the enqueued-token limit), as ``uploads/`` holds the upload rules."""

from __future__ import annotations

from airflow_provider_files.batches.submit import (
    CREATE_INTERVAL_S,
    DEFAULT_OUTPUT_EXPIRES_AFTER_S,
    RUN_KEY_METADATA_KEY,
    TOKEN_LIMIT_CODE,
    BatchCreateRateLimitedError,
    BatchInputError,
    SubmitResult,
    TokenLimitRetry,
    find_batch,
    is_reusable,
    is_token_limit_failure,
    run_batch,
    run_key,
    submit_batch,
)

__all__ = [
    "CREATE_INTERVAL_S",
    "DEFAULT_OUTPUT_EXPIRES_AFTER_S",
    "RUN_KEY_METADATA_KEY",
    "TOKEN_LIMIT_CODE",
    "BatchCreateRateLimitedError",
    "BatchInputError",
    "SubmitResult",
    "TokenLimitRetry",
    "find_batch",
    "is_reusable",
    "is_token_limit_failure",
    "run_batch",
    "run_key",
    "submit_batch",
]
