"""Batch rules, no Airflow imports: creating a batch once per task run (run key, look before
create, lost answers, pacing, the enqueued-token limit), as ``uploads/`` holds the upload rules."""

from __future__ import annotations

from airflow_provider_files.batches.inputs import BatchInput, resolve_batch_input
from airflow_provider_files.batches.submit import (
    BATCH_CHECKPOINT_KIND,
    CREATE_INTERVAL_S,
    DEFAULT_OUTPUT_EXPIRES_AFTER_S,
    RUN_KEY_METADATA_KEY,
    TOKEN_LIMIT_CODE,
    BatchCreateRateLimitedError,
    BatchInputError,
    SubmitResult,
    batches_of_run,
    is_reusable,
    is_token_limit_failure,
    run_key,
    submit_batch,
)
from airflow_provider_files.batches.token_limit import (
    TokenLimitRetry,
    run_batch,
    token_limit_delay_s,
)

__all__ = [
    "BATCH_CHECKPOINT_KIND",
    "CREATE_INTERVAL_S",
    "DEFAULT_OUTPUT_EXPIRES_AFTER_S",
    "RUN_KEY_METADATA_KEY",
    "TOKEN_LIMIT_CODE",
    "BatchCreateRateLimitedError",
    "BatchInput",
    "BatchInputError",
    "SubmitResult",
    "TokenLimitRetry",
    "batches_of_run",
    "is_reusable",
    "is_token_limit_failure",
    "resolve_batch_input",
    "run_batch",
    "run_key",
    "submit_batch",
    "token_limit_delay_s",
]
