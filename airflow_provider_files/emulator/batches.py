"""Batches of the emulator: their state, a lifecycle driven by the clock, and their result files.

No background loop moves a batch along: its status is computed from timestamps whenever it is
read (so the admin clock offset moves it too). Only two things run beside the requests: the
check of the input file when a batch is created, and the writing of the result files, done by the
first read that finds the batch over.

Timeline of a batch with duration D (``batch_duration_s``), from ``created_at``:
``validating`` until 0.1 D (or until the input check is done, if later), ``in_progress`` until
0.9 D (request i of n is done at ``in_progress_at + (i+1)/n`` of the span), ``finalizing`` until D,
then ``completed``. A cancel moves it to ``cancelling`` for 0.1 D, then ``cancelled``: requests
done before the cancel keep their results, the others are in neither file (``request_counts``
still counts them in ``total``). Past ``expires_at`` a running batch is ``expired``: requests
done by then are in the files, the others in the error file with ``error.code`` ``batch_expired``.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from airflow_provider_files.emulator.batch_check import BatchScan, LineError, scan_batch_file
from airflow_provider_files.emulator.batch_results import (
    Usage,
    expired_line,
    failed_line,
    input_tokens,
    output_line,
    request_error,
    request_usage,
)
from airflow_provider_files.emulator.config import BATCH_FILE_DEFAULT_EXPIRY_S
from airflow_provider_files.emulator.errors import ApiError, bad_request, not_found
from airflow_provider_files.emulator.store import Store

COMPLETION_WINDOW_S = 24 * 3600
VALIDATING_SHARE = 0.1
FINALIZING_SHARE = 0.1
CANCELLING_SHARE = 0.1
MAX_REPORTED_ERRORS = 100
RUNNING_STATUSES = frozenset({"validating", "in_progress", "finalizing"})
TERMINAL_STATUSES = frozenset({"failed", "completed", "expired", "cancelled"})


@dataclass
class Timeline:
    """Where a batch is at one instant (all times on the store's clock)."""

    status: str
    in_progress_at: float | None = None
    finalizing_at: float | None = None
    ended_at: float | None = None  # completed_at / expired_at / cancelled_at / failed_at
    done: int = 0  # requests with a result
    expired: int = 0  # requests that end in the error file as batch_expired


@dataclass
class Outcomes:
    """What reading a valid input file decides: each request's outcome and running sums."""

    outcomes: list[tuple[int, str, str, str] | None] = field(default_factory=list)
    failed_prefix: list[int] = field(default_factory=list)
    usage_prefix: list[Usage] = field(default_factory=list)
    tokens: int = 0


@dataclass
class Batch:
    """One batch and what its lifecycle needs."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after_s: int | None
    created_at: float
    sequence: int
    duration_s: float
    expires_at: float
    error_rate: float
    seed: int
    segments: list[Path]
    input_bytes: int
    scan: BatchScan | None = None
    checked_at: float | None = None
    failure: list[LineError] = field(default_factory=list)
    # per request, in input order: the failure it ends with (None: success)
    outcomes: list[tuple[int, str, str, str] | None] = field(default_factory=list)
    failed_prefix: list[int] = field(default_factory=list)  # failed among the first i
    usage_prefix: list[Usage] = field(default_factory=list)  # usage of the successes among the first i
    tokens: int = 0  # estimated input tokens, what the batch enqueues
    cancelling_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    files_written: bool = False

    @property
    def total(self) -> int:
        return len(self.scan.requests) if self.scan is not None and not self.failure else 0


def _new_batch_id() -> str:
    return "batch_" + secrets.token_hex(16)


class BatchStore:
    """The batches of one emulator process, over the files of ``store``.

    :param store: the file store (input files are read from it, result files added to it).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: dict[str, Batch] = {}
        self.created_count = 0
        self._positions: dict[str, tuple[float, int]] = {}
        self._sequence = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()

    # -- creating -----------------------------------------------------------------------------------

    def create(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
        output_expires_after_s: int | None,
    ) -> Batch:
        try:
            stored = self.store.get_file(input_file_id)
        except ApiError:
            raise not_found("File", input_file_id, "input_file_id") from None
        if stored.purpose != "batch":
            raise bad_request(
                f"File {input_file_id} has purpose {stored.purpose!r}; a batch input file must have "
                "purpose 'batch'.",
                param="input_file_id",
            )
        status, _ = self.store.file_status(stored)
        if status != "processed":
            raise bad_request(
                f"File {input_file_id} is not ready to be used for a batch (status {status!r}); "
                "wait until it is 'processed'.",
                param="input_file_id",
            )
        config = self.store.config
        now = self.store.now()
        expire_after_s = config.batch_expire_after_s
        batch = Batch(
            id=_new_batch_id(),
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata,
            output_expires_after_s=output_expires_after_s,
            created_at=now,
            sequence=next(self._sequence),
            duration_s=max(0.0, float(config.batch_duration_s)),
            expires_at=now + (COMPLETION_WINDOW_S if expire_after_s is None else float(expire_after_s)),
            error_rate=float(config.batch_request_error_rate),
            seed=int(config.batch_seed),
            segments=list(stored.segments),
            input_bytes=stored.size_bytes,
        )
        self.batches[batch.id] = batch
        self._positions[batch.id] = (batch.created_at, batch.sequence)
        self.created_count += 1
        task = asyncio.get_running_loop().create_task(self._validate(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    @staticmethod
    def _read_input(batch: Batch) -> tuple[BatchScan, Outcomes]:
        """Check the input file and draw each request's outcome (runs in a worker thread)."""
        scan = scan_batch_file(
            batch.segments, batch.input_bytes, endpoint=batch.endpoint, max_errors=MAX_REPORTED_ERRORS
        )
        outcomes = Outcomes()
        if scan.errors:
            return scan, outcomes
        failed = 0
        input_sum = cached_sum = output_sum = 0
        outcomes.failed_prefix.append(0)
        outcomes.usage_prefix.append(Usage())
        for request in scan.requests:
            outcome = request_error(request.custom_id, batch.error_rate, batch.seed)
            outcomes.outcomes.append(outcome)
            outcomes.tokens += input_tokens(request)
            if outcome is None:
                usage = request_usage(request, batch.endpoint)
                input_sum += usage.input_tokens
                cached_sum += usage.cached_tokens
                output_sum += usage.output_tokens
            else:
                failed += 1
            outcomes.failed_prefix.append(failed)
            outcomes.usage_prefix.append(Usage(input_sum, cached_sum, output_sum))
        return scan, outcomes

    async def _validate(self, batch: Batch) -> None:
        try:
            scan, outcomes = await asyncio.to_thread(self._read_input, batch)
        except OSError:
            scan = BatchScan(
                errors=[LineError("file_not_found", "The input file was deleted.", "input_file_id")]
            )
            outcomes = Outcomes()
        now = self.store.now()
        failure = list(scan.errors)
        limit = self.store.config.batch_enqueued_token_limit
        if not failure and limit is not None:
            enqueued = sum(
                other.tokens
                for other in self.batches.values()
                if other is not batch
                and other.scan is not None
                and not other.failure
                and other.scan.model == scan.model
                and self.timeline(other, now).status in RUNNING_STATUSES
            )
            if outcomes.tokens + enqueued > limit:
                failure.append(
                    LineError(
                        "token_limit_exceeded",
                        f"Enqueued token limit reached for {scan.model} in organization org-emulator. "
                        f"Limit: {limit} enqueued tokens. Please try submitting your batch again later "
                        f"(this batch: {outcomes.tokens} tokens, already enqueued: {enqueued}).",
                    )
                )
        if not failure:
            batch.outcomes = outcomes.outcomes
            batch.failed_prefix = outcomes.failed_prefix
            batch.usage_prefix = outcomes.usage_prefix
            batch.tokens = outcomes.tokens
        batch.failure = failure
        batch.scan = scan
        batch.checked_at = now

    # -- the lifecycle --------------------------------------------------------------------------------

    def timeline(self, batch: Batch, now: float) -> Timeline:
        """The status of ``batch`` at ``now`` and the times it has reached (pure: no side effect)."""
        duration = batch.duration_s
        cancel_end = (
            batch.cancelling_at + CANCELLING_SHARE * duration if batch.cancelling_at is not None else None
        )
        if batch.checked_at is None:  # input still being checked
            if cancel_end is not None and batch.cancelling_at is not None:
                if now >= cancel_end:
                    return Timeline("cancelled", ended_at=cancel_end)
                return Timeline("cancelling")
            return Timeline("validating")
        in_progress_at = max(batch.created_at + VALIDATING_SHARE * duration, batch.checked_at)
        cancelled_early = batch.cancelling_at is not None and batch.cancelling_at < in_progress_at
        if cancelled_early and cancel_end is not None:
            cancel_end = max(cancel_end, in_progress_at)
            if now >= cancel_end:
                return Timeline("cancelled", ended_at=cancel_end)
            return Timeline("cancelling")
        if now < in_progress_at:
            return Timeline("validating")
        if batch.failure:
            return Timeline("failed", ended_at=in_progress_at)
        finalizing_at = max(batch.created_at + (1 - FINALIZING_SHARE) * duration, in_progress_at)
        completed_at = max(batch.created_at + duration, finalizing_at)
        # The first of cancel, expiry and completion ends the batch.
        kind, cutoff, end = "completed", finalizing_at, completed_at
        if batch.expires_at < completed_at:
            kind, cutoff, end = "expired", batch.expires_at, batch.expires_at
        if batch.cancelling_at is not None and cancel_end is not None and batch.cancelling_at < end:
            kind, cutoff, end = "cancelled", batch.cancelling_at, cancel_end
        total = batch.total
        span = finalizing_at - in_progress_at
        point = min(now, cutoff)
        if span <= 0:
            done = total if point >= in_progress_at else 0
        else:
            done = max(0, min(total, int((point - in_progress_at) / span * total + 1e-9)))
        timeline = Timeline("in_progress", in_progress_at=in_progress_at, done=done)
        if now >= end:
            timeline.status, timeline.ended_at = kind, end
            if kind == "expired":
                timeline.expired = total - done
        elif kind == "cancelled" and batch.cancelling_at is not None and now >= batch.cancelling_at:
            timeline.status = "cancelling"
        elif now >= finalizing_at:
            timeline.status = "finalizing"
        if kind == "completed" and now >= finalizing_at:
            timeline.finalizing_at = finalizing_at
        return timeline

    async def refresh(self, batch: Batch) -> Timeline:
        """The batch's timeline now, writing its result files first if it has just ended."""
        timeline = self.timeline(batch, self.store.now())
        if timeline.status in ("completed", "expired", "cancelled") and not batch.files_written:
            async with self._write_lock:
                if not batch.files_written:
                    await self._write_results(batch, timeline)
        return timeline

    async def _write_results(self, batch: Batch, timeline: Timeline) -> None:
        usable = batch.scan is not None and not batch.failure
        requests = batch.scan.requests if batch.scan is not None and usable else []
        model = batch.scan.model if batch.scan is not None else None
        done = timeline.done if usable else 0
        expired = timeline.expired if usable else 0
        created = int(self.store.now())
        output_id, output_path = self.store.new_file_slot()
        error_id, error_path = self.store.new_file_slot()

        def write() -> tuple[int, int]:
            """Streams the result lines to the two files; returns their sizes."""
            with open(output_path, "wb") as outputs, open(error_path, "wb") as errors:
                for request, outcome in zip(requests[:done], batch.outcomes, strict=False):
                    if outcome is None:
                        line = output_line(batch.id, request, batch.endpoint, model, created)
                        outputs.write(orjson.dumps(line) + b"\n")
                    else:
                        errors.write(orjson.dumps(failed_line(batch.id, request.custom_id, outcome)) + b"\n")
                for request in requests[done : done + expired]:
                    errors.write(orjson.dumps(expired_line(batch.id, request.custom_id)) + b"\n")
                return outputs.tell(), errors.tell()

        output_bytes, error_bytes = await asyncio.to_thread(write)
        batch.output_file_id = self._add_result_file(batch, "output", output_id, output_path, output_bytes)
        batch.error_file_id = self._add_result_file(batch, "error", error_id, error_path, error_bytes)
        batch.files_written = True

    def _add_result_file(self, batch: Batch, kind: str, file_id: str, path: Path, size: int) -> str | None:
        if size == 0:
            self.store.release_slot(path)
            return None
        stored = self.store.add_file(
            file_id,
            filename=f"{batch.id}_{kind}.jsonl",
            purpose="batch_output",
            size_bytes=size,
            segments=[path],
            expires_after_s=batch.output_expires_after_s or BATCH_FILE_DEFAULT_EXPIRY_S,
        )
        stored.processed_after = self.store.now()
        return file_id

    # -- reading, listing, cancelling -----------------------------------------------------------------

    def get(self, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise not_found("Batch", batch_id, "batch_id")
        return batch

    def page(self, *, after: str | None, limit: int) -> tuple[list[Batch], bool]:
        """Batches newest first, starting after the batch ``after``."""
        ordered = sorted(self.batches.values(), key=lambda b: (b.created_at, b.sequence), reverse=True)
        if after is not None:
            position = self._positions.get(after)
            if position is None:
                raise bad_request(f"No such Batch object: {after} (the 'after' cursor)", param="after")
            ordered = [b for b in ordered if (b.created_at, b.sequence) < position]
        return ordered[:limit], len(ordered) > limit

    def cancel(self, batch: Batch) -> None:
        now = self.store.now()
        status = self.timeline(batch, now).status
        if status in ("cancelling", "cancelled"):
            return
        if status not in RUNNING_STATUSES:
            raise bad_request(f"Cannot cancel batch {batch.id}: its status is {status!r}.", param="batch_id")
        batch.cancelling_at = now

    def render(self, batch: Batch, timeline: Timeline) -> dict[str, object]:
        """The Batch object as the API returns it."""
        status = timeline.status

        def stamp(value: float | None) -> int | None:
            return int(value) if value is not None else None

        failed = batch.failed_prefix[timeline.done] if batch.failed_prefix else 0
        usage = batch.usage_prefix[timeline.done] if batch.usage_prefix else Usage()
        errors = None
        if status == "failed":
            errors = {"object": "list", "data": [error.as_dict() for error in batch.failure]}
        ended = stamp(timeline.ended_at)
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.scan.model if batch.scan is not None else None,
            "errors": errors,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": status,
            "output_file_id": batch.output_file_id if batch.files_written else None,
            "error_file_id": batch.error_file_id if batch.files_written else None,
            "created_at": int(batch.created_at),
            "in_progress_at": stamp(timeline.in_progress_at),
            "expires_at": int(batch.expires_at),
            "finalizing_at": stamp(timeline.finalizing_at),
            "completed_at": ended if status == "completed" else None,
            "failed_at": ended if status == "failed" else None,
            "expired_at": ended if status == "expired" else None,
            "cancelling_at": stamp(batch.cancelling_at),
            "cancelled_at": ended if status == "cancelled" else None,
            "request_counts": {
                "total": batch.total,
                "completed": timeline.done - failed,
                "failed": failed + timeline.expired,
            },
            "usage": usage.batch_usage(),
            "metadata": batch.metadata,
        }

    # -- introspection --------------------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        now = self.store.now()
        return {
            "batch_count": len(self.batches),
            "batches_created": self.created_count,
            "batches": {
                batch.id: {
                    "status": self.timeline(batch, now).status,
                    "input_file_id": batch.input_file_id,
                    "endpoint": batch.endpoint,
                    "metadata": batch.metadata,
                    "total": batch.total,
                }
                for batch in self.batches.values()
            },
        }

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.batches.clear()
        self._positions.clear()
        self.created_count = 0
