"""Waiting and creating again after a batch is refused for the enqueued-token limit.

A batch over the organisation's enqueued-token limit fails validation with
``token_limit_exceeded``: it did no work and the same input is accepted once the queue drains.
So it is created again after a wait, not reported as a failed task; the waits of one task run are
bounded, counted from the refused batches on the server (not from memory) so that the bound holds
across task retries and deferrals. No Airflow imports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_files.api.batch_models import Batch
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.batches.submit import (
    TOKEN_LIMIT_CODE,
    Log,
    batches_of_run,
    is_token_limit_failure,
    logger,
    submit_batch,
)

#: After a ``token_limit_exceeded`` refusal, wait this long before creating the batch again ...
TOKEN_LIMIT_WAIT_S = 300.0
#: ... and give up (the task fails) once the waits add up to this.
TOKEN_LIMIT_MAX_WAIT_S = 6 * 3600.0


@dataclass(frozen=True)
class TokenLimitRetry:
    """ "Waiting and creating again after a batch is refused for the enqueued-token limit.

    :param wait_s: wait before each new create.
    :param max_wait_s: give up once the waits would add up to more than this.
    """

    wait_s: float = TOKEN_LIMIT_WAIT_S
    max_wait_s: float = TOKEN_LIMIT_MAX_WAIT_S

    def __post_init__(self) -> None:
        if self.wait_s < 0 or self.max_wait_s < 0:
            raise ValueError("token-limit waits must not be negative")

    def delay_s(self, batch: Batch, waited_s: float) -> float | None:
        """The wait before creating again, or ``None``: not a token-limit refusal, or waited enough."""
        if not is_token_limit_failure(batch) or waited_s + self.wait_s > self.max_wait_s:
            return None
        return self.wait_s


def token_limit_delay_s(
    client: FilesClient,
    batch: Batch,
    *,
    run_key: str,
    retry: TokenLimitRetry,
    clock: Callable[[], float] = time.time,
) -> float | None:
    """The wait before creating ``batch`` again after a token-limit refusal, or ``None``: it was
    not one, or the refusals of this run key have used up ``retry.max_wait_s``."""
    if not is_token_limit_failure(batch):
        return None
    # Counted from the server, not kept in memory, so that the bound holds across task retries
    # and deferrals.
    batches = batches_of_run(client, run_key=run_key, input_file_id=batch.input_file_id, now=clock())
    refusals = sum(1 for seen in batches if is_token_limit_failure(seen))
    return retry.delay_s(batch, waited_s=max(refusals - 1, 0) * retry.wait_s)


def run_batch(
    client: FilesClient,
    *,
    wait: Callable[[Batch], Batch],
    token_limit: TokenLimitRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    log: Log | None = None,
    **submit: Any,
) -> Batch:
    """Submit (see :func:`submit_batch`, whose other keyword arguments ``submit`` holds), wait with
    ``wait`` until the batch ends, and create it again after enqueued-token-limit refusals.

    :param wait: returns the batch once it has ended (a token-limit refusal is returned, not raised).
    :return: the last batch; a token-limit refusal when the waits were used up.
    """
    out = log or logger
    retry = token_limit or TokenLimitRetry()
    while True:
        batch = wait(submit_batch(client, sleep=sleep, clock=clock, log=out, **submit).batch)
        delay = token_limit_delay_s(client, batch, run_key=submit["run_key"], retry=retry, clock=clock)
        if delay is None:
            return batch
        log_token_limit_wait(out, batch, delay)
        sleep(delay)


def log_token_limit_wait(out: Log, batch: Batch, delay_s: float) -> None:
    out.warning(
        "Batch %s was refused for the enqueued-token limit (%s); creating it again in %.0f s",
        batch.id,
        TOKEN_LIMIT_CODE,
        delay_s,
    )
