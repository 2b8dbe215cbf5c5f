"""Creating a batch once: a run-stable key in its metadata, a look before every create, pacing.

A batch costs money, so a task retry or a lost answer to ``POST /batches`` must not create a
second one. Each batch carries :data:`RUN_KEY_METADATA_KEY` (a short hash of dag, task, run and
map index); :func:`submit_batch` first asks for the batch a checkpoint remembers (when one is
given: this finds a batch however many were created since), then lists the newest batches for
that key before it creates one, and looks again, instead of sending again, after a create whose
answer was lost (no answer, a 5xx).

What is *not* reused: a batch refused for the enqueued-token limit (``token_limit_exceeded``: it
did no work, and the same input is accepted later), and batches that were cancelled or expired
(a new run of the task is asked for a new batch). No Airflow imports.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_files.api.batch_models import Batch, BatchStatus
from airflow_provider_files.api.errors import FilesApiError, NotFoundError, QuotaExceededError, RateLimitError
from airflow_provider_files.api.limits import (
    METADATA_MAX_PAIRS,
    validate_completion_window,
    validate_expires_after_s,
    validate_metadata,
)
from airflow_provider_files.api.models import FileObject, FileStatus
from airflow_provider_files.api.retry import is_ambiguous
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.checkpoint import CheckpointStore

logger = logging.getLogger(__name__)

#: ``kind`` of the checkpoint that remembers the batch of a task run.
BATCH_CHECKPOINT_KIND = "airflow-provider-files/batch-checkpoint"
#: The metadata key holding the run key of the task that created the batch.
RUN_KEY_METADATA_KEY = "airflow_run_key"
RUN_KEY_HEX_CHARS = 32
#: Output and error files expire this long after they are written unless asked otherwise (30 days,
#: the API's maximum): results outlive a retry or a late download, and do not pile up for ever.
DEFAULT_OUTPUT_EXPIRES_AFTER_S = 30 * 24 * 3600
#: Batches created longer ago than this are not looked at for a run key (a batch runs at most 24 h).
LOOKUP_WINDOW_S = 7 * 24 * 3600
#: At most this many of the newest batches are looked at for a run key.
LOOKUP_MAX_BATCHES = 2000
LOOKUP_PAGE_SIZE = 100
LOOKUP_CLOCK_SLACK_S = 300.0
#: The API allows 2,000 batch creations per hour: creates of one process are spaced this far apart.
CREATE_INTERVAL_S = 3600 / 2000
#: A 429 on create (after the client's own retries) is waited out for at most this long in all.
RATE_LIMIT_MAX_WAIT_S = 900.0
RATE_LIMIT_DEFAULT_WAIT_S = 30.0
#: The error code of a batch refused for the enqueued-token limit.
TOKEN_LIMIT_CODE = "token_limit_exceeded"

# Ended without doing the work for a reason other than the input: a new run gets a new batch.
_NOT_REUSED_STATUSES = frozenset(
    {BatchStatus.CANCELLING.value, BatchStatus.CANCELLED.value, BatchStatus.EXPIRED.value}
)


class Log(Protocol):
    """Where :func:`submit_batch` says what it does: a logger, or an Airflow task's ``log``."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


class BatchInputError(ValueError):
    """The batch cannot be created as asked (file not ready, wrong purpose ...); nothing was created."""


class BatchCreateRateLimitedError(FilesApiError):
    """``POST /batches`` stayed rate limited for longer than the wait allowed; nothing was created."""


def run_key(dag_id: str, task_id: str, run_id: str, map_index: int | None = -1, extra: str = "") -> str:
    """A short stable key for one task of one DAG run (and one mapped index): the same on every try.

    :param extra: anything else that tells batches of the same task apart (e.g. a follow-up round).
    """
    index = -1 if map_index is None else int(map_index)
    text = "\x1f".join((dag_id, task_id, run_id, str(index), extra))
    return hashlib.sha256(text.encode()).hexdigest()[:RUN_KEY_HEX_CHARS]


def is_token_limit_failure(batch: Batch) -> bool:
    """Whether ``batch`` failed because the enqueued-token limit was reached (create it again later)."""
    return batch.status == BatchStatus.FAILED.value and any(e.code == TOKEN_LIMIT_CODE for e in batch.errors)


def is_reusable(batch: Batch) -> bool:
    """Whether a batch found under our run key stands for this run's work (see the module doc)."""
    return batch.status not in _NOT_REUSED_STATUSES and not is_token_limit_failure(batch)


@dataclass(frozen=True)
class SubmitResult:
    """What :func:`submit_batch` did.

    :param batch: the batch (as created, or as found).
    :param reused: the batch existed before this call (a retry, or a rerun of the task).
    :param recovered: the create's answer was lost and the batch it made was found instead.
    """

    batch: Batch
    reused: bool
    recovered: bool = False


def batches_of_run(
    client: FilesClient,
    *,
    run_key: str,
    input_file_id: str,
    now: float,
    lookup_window_s: float = LOOKUP_WINDOW_S,
    max_batches: int = LOOKUP_MAX_BATCHES,
) -> Iterator[Batch]:
    """The batches carrying ``run_key`` for ``input_file_id``, newest first, looking no further back
    than ``lookup_window_s`` nor past ``max_batches`` batches (listed newest first)."""
    oldest = now - lookup_window_s - LOOKUP_CLOCK_SLACK_S
    for seen, batch in enumerate(client.iter_batches(limit=LOOKUP_PAGE_SIZE)):
        if seen >= max_batches or (batch.created_at is not None and batch.created_at < oldest):
            return
        if batch.metadata.get(RUN_KEY_METADATA_KEY) != run_key:
            continue
        # Some gateways' listings leave input_file_id out; the run key alone then decides.
        if batch.input_file_id and batch.input_file_id != input_file_id:
            continue
        yield batch


def remembered_batch(
    client: FilesClient, checkpoint: CheckpointStore, *, run_key: str, input_file_id: str
) -> Batch | None:
    """The reusable batch ``checkpoint`` remembers for ``run_key`` and ``input_file_id``, if any."""
    state = checkpoint.load()
    if not state or state.get("kind") != BATCH_CHECKPOINT_KIND or state.get("run_key") != run_key:
        return None
    batch_id = state.get("batch_id")
    if not isinstance(batch_id, str) or not batch_id:
        return None
    try:
        batch = client.retrieve_batch(batch_id)
    except NotFoundError:
        return None
    if batch.metadata.get(RUN_KEY_METADATA_KEY, run_key) != run_key:
        return None
    if batch.input_file_id and batch.input_file_id != input_file_id:
        return None
    return batch if is_reusable(batch) else None


def remember_batch(checkpoint: CheckpointStore | None, batch: Batch, run_key: str) -> None:
    """Note ``batch`` as the batch of ``run_key`` (when there is a checkpoint)."""
    if checkpoint is not None:
        checkpoint.save({"kind": BATCH_CHECKPOINT_KIND, "run_key": run_key, "batch_id": batch.id})


def check_input_file(file: FileObject) -> None:
    """Refuse a file a batch cannot run on: purpose other than ``batch``, or not ``processed``."""
    if file.purpose is not None and file.purpose != "batch":
        raise BatchInputError(
            f"file {file.id} has purpose {file.purpose!r}; a batch needs a file uploaded with purpose 'batch'"
        )
    if file.status is None or file.status == FileStatus.PROCESSED.value:
        return
    detail = f" ({file.status_details})" if file.status_details else ""
    raise BatchInputError(
        f"file {file.id} is {file.status!r}{detail}, not 'processed': a batch needs a processed file "
        "(wait for it first, e.g. with UploadCompleteSensor or the upload operator's wait)"
    )


def batch_metadata(metadata: Mapping[str, str] | None, key: str) -> dict[str, str]:
    """The user's metadata plus the run key, checked against the API's limits."""
    merged = dict(validate_metadata(metadata) or {})
    if RUN_KEY_METADATA_KEY in merged and merged[RUN_KEY_METADATA_KEY] != key:
        raise BatchInputError(f"metadata key {RUN_KEY_METADATA_KEY!r} is reserved for the run key")
    merged[RUN_KEY_METADATA_KEY] = key
    if len(merged) > METADATA_MAX_PAIRS:
        raise BatchInputError(
            f"metadata may hold at most {METADATA_MAX_PAIRS - 1} pairs of yours (one is the run key)"
        )
    return merged


class _CreationPacer:
    """Spaces the batch creations of this process (thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_at: float | None = None

    def wait(self, interval_s: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        with self._lock:
            if self._last_at is not None and interval_s > 0:
                delay = self._last_at + interval_s - clock()
                if delay > 0:
                    sleep(min(delay, interval_s))
            self._last_at = clock()


_PACER = _CreationPacer()


def submit_batch(
    client: FilesClient,
    *,
    input_file_id: str,
    endpoint: str,
    run_key: str,
    completion_window: str = "24h",
    metadata: Mapping[str, str] | None = None,
    output_expires_after_s: int | None = DEFAULT_OUTPUT_EXPIRES_AFTER_S,
    log: Log | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    min_create_interval_s: float = CREATE_INTERVAL_S,
    rate_limit_max_wait_s: float = RATE_LIMIT_MAX_WAIT_S,
    lookup_window_s: float = LOOKUP_WINDOW_S,
    lookup_max_batches: int = LOOKUP_MAX_BATCHES,
    checkpoint: CheckpointStore | None = None,
) -> SubmitResult:
    """The batch of ``run_key`` for ``input_file_id``: found if it exists, created once otherwise.

    Everything that can be checked is checked before the first create (gateway support, endpoint,
    completion window, metadata, the file's purpose and status): a refusal creates nothing.

    :param client: the API client.
    :param input_file_id: the file of requests (purpose ``batch``, ``processed``).
    :param endpoint: the endpoint of every request of the file.
    :param run_key: see :func:`run_key`; stored in the batch's metadata.
    :param completion_window: ``24h``, the only window the API offers.
    :param metadata: the user's metadata (up to 15 pairs: one is the run key).
    :param output_expires_after_s: lifetime of the output and error files (``None``: server default).
    :param log: where to say what happens (default: this module's logger).
    :param clock: unix time (tests pass a fake).
    :param sleep: how to wait (tests pass a recorder).
    :param min_create_interval_s: spacing of this process's creates (0: none).
    :param rate_limit_max_wait_s: longest total wait for 429s on create before failing.
    :param lookup_window_s: how far back batches are looked at for the run key.
    :param lookup_max_batches: how many of the newest batches are looked at.
    :param checkpoint: remembers the batch of this run key across tries (optional).
    """
    out = log or logger
    operations = client.operations
    operations.profile.require_batches()
    operations.profile.require_batch_endpoint(endpoint)
    validate_completion_window(completion_window)
    validate_expires_after_s(output_expires_after_s, "output_expires_after_s")
    tagged = batch_metadata(metadata, run_key)

    def look() -> Batch | None:
        batches = batches_of_run(
            client,
            run_key=run_key,
            input_file_id=input_file_id,
            now=clock(),
            lookup_window_s=lookup_window_s,
            max_batches=lookup_max_batches,
        )
        return next((batch for batch in batches if is_reusable(batch)), None)

    found = None
    if checkpoint is not None:
        found = remembered_batch(client, checkpoint, run_key=run_key, input_file_id=input_file_id)
    if found is None:
        found = look()
    if found is not None:
        remember_batch(checkpoint, found, run_key)
        out.info("Reusing batch %s (%s) created earlier for this task run", found.id, found.status)
        return SubmitResult(found, reused=True)
    check_input_file(client.retrieve_file(input_file_id))

    recovered = False

    def recover() -> dict[str, Any] | None:
        nonlocal recovered
        lost = look()
        if lost is None:
            return None
        out.warning("The answer to POST /batches was lost; batch %s was created by it and is used", lost.id)
        recovered = True
        return lost.raw

    operation = operations.create_batch(
        input_file_id,
        endpoint,
        completion_window=completion_window,
        metadata=tagged,
        output_expires_after_s=output_expires_after_s,
    )
    rate_waited_s = 0.0
    while True:
        _PACER.wait(min_create_interval_s, clock, sleep)
        try:
            batch = client.call_recovering(operation, recover)
        except QuotaExceededError:
            raise
        except RateLimitError as exc:
            delay = exc.retry_after_s if exc.retry_after_s is not None else RATE_LIMIT_DEFAULT_WAIT_S
            if rate_waited_s + delay > rate_limit_max_wait_s:
                raise BatchCreateRateLimitedError(
                    f"POST /batches stayed rate limited after waiting {rate_waited_s:.0f} s "
                    f"(limit {rate_limit_max_wait_s:.0f} s); no batch was created: {exc}"
                ) from exc
            out.warning("Batch creation rate limited; creating again in %.1f s", delay)
            sleep(delay)
            rate_waited_s += delay
            continue
        except FilesApiError as exc:
            if not is_ambiguous(exc):
                raise
            lost = look()  # the last attempt may have created it too
            if lost is None:
                raise
            out.warning(
                "The answer to POST /batches was lost; batch %s was created by it and is used", lost.id
            )
            remember_batch(checkpoint, lost, run_key)
            return SubmitResult(lost, reused=False, recovered=True)
        remember_batch(checkpoint, batch, run_key)
        out.info("Created batch %s for %s (%s)", batch.id, input_file_id, endpoint)
        return SubmitResult(batch, reused=False, recovered=recovered)
