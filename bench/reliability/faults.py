"""Faults scenario: many uploads of mixed sizes while the emulator fails, drops and delays requests.

Two rows:

``faults``
    429 (with ``retry-after``), 500/502/503, connections dropped before the request has any
    effect, each at >= 10 % of requests, plus added latency on every request. Most uploads go
    through the chunked engine (the operators' path), some through ``POST /files``.
``lost responses``
    ``drop_after``: the server does the work and then closes the connection, so the client sees
    an error for a request that succeeded. This is what could create duplicates; the client's
    recovery (``create_file`` looks for the stored file, the engine recovers a completed upload)
    must prevent them.

Definitions (all from the emulator's own bookkeeping, not from the client's word):

* *completed*: the upload call returned a file object whose id exists on the server with the
  source's size.
* *md5 mismatches*: files whose stored bytes' md5 differs from the source's.
* *duplicate files*: files on the server beyond one per upload call (counted per filename;
  every upload call uses a distinct filename).
* *orphaned uploads*: uploads still ``pending`` at the end that received at least one part
  request, i.e. the client knew their id and neither completed nor cancelled them.
* *unknown pending uploads*: pending uploads that received no part request: the response to
  ``POST /uploads`` was lost, so the client never learnt the id. No client can cancel these
  (there is no endpoint to list uploads); they expire after an hour and hold no file.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.connections import connection_env
from bench.datagen import MIB, DataFile, write_batch_file, write_random_file
from bench.reliability.common import (
    Metric,
    ScenarioResult,
    emulator_client,
    env_vars,
    fast_retry_policy,
    task_context,
)

PART_SIZE_BYTES = 1 * MIB
UPLOADER_CONCURRENCY = 3
PARALLEL_UPLOADS = 4
# retry-after announced by injected 429s (the client honours retry-after-ms, then retry-after).
RETRY_AFTER_S = 0.2
LATENCY_MS = 15
FAULT_SPEC = (
    f"429=0.14,500=0.04,502=0.04,503=0.05,drop=0.13,latency_ms={LATENCY_MS},retry_after={RETRY_AFTER_S}"
)
# Lost responses where they matter most first (a stored file, a completed upload), then anywhere.
LOST_RESPONSE_SPEC = (
    "create_file:drop_after=0.3,complete:drop_after=0.3,drop_after=0.15,500=0.04,drop=0.04,"
    f"latency_ms={LATENCY_MS}"
)
MIN_FAULT_RATE = 0.10
MIN_REQUESTS_FOR_SHARES = 400


def upload_sizes(part_size: int) -> list[int]:
    """One cycle of sizes: tiny, around one part, several parts."""
    return [
        1,
        17,
        1000,
        64 * 1024,
        part_size - 1,
        part_size,
        part_size + 1,
        2 * part_size,
        3 * part_size + 12_345,
        5 * part_size,
    ]


@dataclass
class UploadJob:
    """One upload call of the scenario."""

    index: int
    path: Path
    size: int
    md5: str
    filename: str
    method: str  # "engine" or "single"
    file_id: str | None = None
    error: str | None = None
    upload_id: str | None = None

    @classmethod
    def of(cls, index: int, source: DataFile, filename: str, method: str) -> UploadJob:
        return cls(index, source.path, source.size, source.md5, filename, method)


@dataclass
class Tally:
    """The figures of one row."""

    completed: int = 0
    failed: int = 0
    md5_mismatches: int = 0
    size_mismatches: int = 0
    duplicate_files: int = 0
    orphaned_uploads: int = 0
    unknown_pending_uploads: int = 0
    cancelled_uploads: int = 0
    faults_injected: dict[str, int] | None = None
    requests: int = 0
    fault_rate: float = 0.0


def prepare_sources(directory: Path, count: int, part_size: int, seed: int) -> list[DataFile]:
    """Source files cycling through :func:`upload_sizes`; uploads of one size share one file."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = upload_sizes(part_size)
    by_size: dict[int, DataFile] = {}
    for index in range(count):
        size = sizes[index % len(sizes)]
        if size not in by_size:
            by_size[size] = write_random_file(directory / f"source-{size}.bin", size, seed + size)
    return [by_size[sizes[index % len(sizes)]] for index in range(count)]


def run_uploads(
    emulator: Any,
    jobs: list[UploadJob],
    *,
    part_size: int,
    parallel_uploads: int = PARALLEL_UPLOADS,
    concurrency: int = UPLOADER_CONCURRENCY,
) -> None:
    """Run every job (in a small thread pool), recording the file id or the error on the job."""
    local = threading.local()
    clients: list[Any] = []
    clients_lock = threading.Lock()

    def client() -> Any:
        if not hasattr(local, "client"):
            local.client = emulator_client(emulator.base_url, emulator.api_key)
            with clients_lock:
                clients.append(local.client)
        return local.client

    def run(job: UploadJob) -> None:
        try:
            if job.method == "engine":
                from airflow_provider_files.uploads import ChunkedUploader

                uploader = ChunkedUploader(client(), part_size_bytes=part_size, concurrency=concurrency)
                result = uploader.upload(job.path, purpose="batch", filename=job.filename)
                job.file_id = result.file.id
                job.upload_id = result.upload_id
            else:
                job.file_id = client().create_file(job.path, "batch", filename=job.filename).id
        except Exception as exc:
            job.error = f"{type(exc).__name__}: {exc}"

    try:
        with ThreadPoolExecutor(parallel_uploads) as pool:
            list(pool.map(run, jobs))
    finally:
        for item in clients:
            item.close()


def tally(emulator: Any, jobs: list[UploadJob], faults_injected: dict[str, int]) -> Tally:
    """Compare what the server holds with what was uploaded."""
    stats = emulator.stats()
    result = Tally(faults_injected=faults_injected)
    files: dict[str, dict[str, Any]] = stats["files"]
    per_filename = collections.Counter(info["filename"] for info in files.values())
    for job in jobs:
        stored = files.get(job.file_id or "")
        if job.error is not None or stored is None:
            result.failed += 1
            continue
        result.completed += 1
        if stored["bytes"] != job.size:
            result.size_mismatches += 1
        if emulator.file_md5(job.file_id) != job.md5:
            result.md5_mismatches += 1
    ours = {job.filename for job in jobs}
    result.duplicate_files = sum(count - 1 for name, count in per_filename.items() if name in ours)
    result.duplicate_files += sum(count for name, count in per_filename.items() if name not in ours)
    log = emulator.request_log()
    uploads_with_parts = {
        entry["path"].split("/")[-2]
        for entry in log
        if entry.get("route") == "add_part" and entry.get("path")
    }
    for upload_id, info in stats["uploads"].items():
        if info["status"] == "pending":
            if upload_id in uploads_with_parts or info["part_count"]:
                result.orphaned_uploads += 1
            else:
                result.unknown_pending_uploads += 1
        elif info["status"] == "cancelled":
            result.cancelled_uploads += 1
    result.requests = len([entry for entry in log if entry.get("route")])
    faulted = sum(1 for entry in log if entry.get("fault"))
    result.fault_rate = faulted / result.requests if result.requests else 0.0
    return result


def make_jobs(sources: list[DataFile], prefix: str, single_every: int) -> list[UploadJob]:
    jobs = []
    for index, source in enumerate(sources):
        method = "single" if single_every and index % single_every == single_every - 1 else "engine"
        jobs.append(UploadJob.of(index, source, f"{prefix}-{index:04d}-{source.size}.bin", method))
    return jobs


def _row_metrics(row: str, jobs: list[UploadJob], figures: Tally, *, lost_responses: bool) -> list[Metric]:
    engine = sum(1 for job in jobs if job.method == "engine")
    metrics = [
        Metric.info(
            f"{row}: uploads (engine + single request)", f"{len(jobs)} ({engine} + {len(jobs) - engine})"
        ),
        Metric.equals(f"{row}: completed", figures.completed, len(jobs)),
        Metric.zero(f"{row}: md5 mismatches", figures.md5_mismatches + figures.size_mismatches),
        Metric.zero(f"{row}: duplicate files", figures.duplicate_files),
        Metric.zero(
            f"{row}: orphaned uploads (id known to the client, left pending)", figures.orphaned_uploads
        ),
    ]
    if lost_responses:
        metrics.append(
            Metric.info(
                f"{row}: pending uploads whose create response was lost (unknowable, expire in 1 h)",
                figures.unknown_pending_uploads,
            )
        )
    else:
        metrics.append(
            Metric.zero(f"{row}: pending uploads never seen by the client", figures.unknown_pending_uploads)
        )
    injected = figures.faults_injected or {}
    if not lost_responses:
        requests = max(figures.requests, 1)
        rates = {
            "429": injected.get("429", 0) / requests,
            "5xx": sum(injected.get(code, 0) for code in ("500", "502", "503")) / requests,
            "drop": injected.get("drop", 0) / requests,
        }
        metrics.append(
            Metric(
                f"{row}: share of requests per fault type",
                ", ".join(f"{name} {rate:.1%}" for name, rate in rates.items()) + ", latency 100%",
                f">= {MIN_FAULT_RATE:.0%} each",
                # too few requests for the shares to mean anything (a --quick run): informational
                all(rate >= MIN_FAULT_RATE for rate in rates.values())
                if figures.requests >= MIN_REQUESTS_FOR_SHARES
                else None,
            )
        )
    metrics.append(
        Metric.info(
            f"{row}: requests / faulted",
            f"{figures.requests} / {sum(injected.values())} ({figures.fault_rate:.0%}): "
            + ", ".join(f"{name} {count}" for name, count in sorted(injected.items())),
        )
    )
    return metrics


def run_row(
    emulator: Any,
    *,
    row: str,
    spec: str,
    sources: list[DataFile],
    part_size: int,
    seed: int,
    single_every: int,
    lost_responses: bool,
    log: Callable[[str], None],
) -> tuple[list[Metric], list[str]]:
    emulator.reset()
    emulator.set_faults(spec, seed=seed)
    jobs = make_jobs(sources, row.replace(" ", "-"), single_every)
    started = time.monotonic()
    run_uploads(emulator, jobs, part_size=part_size)
    injected = dict(emulator.faults().get("injected") or {})
    emulator.clear_faults()
    figures = tally(emulator, jobs, injected)
    log(f"  {row}: {figures.completed}/{len(jobs)} completed in {time.monotonic() - started:.1f}s")
    failures = [f"{row}: {job.filename} ({job.method}) failed: {job.error}" for job in jobs if job.error]
    return _row_metrics(row, jobs, figures, lost_responses=lost_responses), failures


OPERATOR_MAX_RETRIES = 8
OPERATOR_CONN_ID = "reliability_faults"
# Parts fail more often than the production 6 attempts can absorb; cancelling fails at the
# same rates as every request of the `faults` row.
FAILING_SPEC = "parts:500=0.6,parts:drop=0.3,cancel:503=0.15,cancel:drop=0.15,latency_ms=5"
FAILING_ATTEMPTS = 6


def run_failing_row(
    emulator: Any,
    sources: list[DataFile],
    *,
    seed: int,
    log: Callable[[str], None],
) -> tuple[list[Metric], list[str]]:
    """Uploads that give up (6 attempts per request against 90% part failures): each must be
    cancelled on the server, not left pending, even when the cancel request itself fails at first."""
    from airflow_provider_files.uploads import ChunkedUploader

    emulator.reset()
    emulator.set_faults(FAILING_SPEC, seed=seed)
    outcomes: list[str | None] = []
    with emulator_client(
        emulator.base_url, emulator.api_key, retry_policy=fast_retry_policy(FAILING_ATTEMPTS)
    ) as client:
        for index, source in enumerate(sources):
            try:
                ChunkedUploader(client, part_size_bytes=64 * 1024, concurrency=3).upload(
                    source.path, purpose="batch", filename=f"failing-{index:03d}.bin"
                )
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
    emulator.clear_faults()
    stats = emulator.stats()
    statuses = collections.Counter(info["status"] for info in stats["uploads"].values())
    failed = sum(1 for outcome in outcomes if outcome is not None)
    pending = statuses.get("pending", 0)
    log(f"  failing uploads: {failed} failed, uploads on the server {dict(statuses)}")
    row = "giving up"
    metrics = [
        Metric.info(
            f"{row}: uploads that failed after {FAILING_ATTEMPTS} attempts per request",
            f"{failed} of {len(sources)}",
        ),
        Metric.info(f"{row}: of them cancelled on the server", statuses.get("cancelled", 0)),
        Metric.zero(f"{row}: cancelled-but-orphaned (left pending)", pending),
    ]
    failures = [] if failed else [f"{row}: no upload failed, so cancellation was not exercised"]
    return metrics, failures


COLLISION_SPEC = "create_file:drop_after=0.5,complete:drop_after=0.5,latency_ms=30"
COLLISION_FILENAME = "requests.jsonl"


def run_collision_row(
    emulator: Any,
    workdir: Path,
    *,
    uploads: int,
    seed: int,
    log: Callable[[str], None],
) -> tuple[list[Metric], list[str], list[str]]:
    """Concurrent uploads of different content under one filename and one size, with lost responses.

    This is what backfills of a daily file with fixed-width records look like. Recovering from a
    lost response by looking for "a file of this name and size" can pick another upload's file;
    the figure that matters is how many upload calls returned a file whose content is not theirs.
    """
    emulator.reset()
    folder = workdir / "collision-sources"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for index in range(uploads):
        source = write_random_file(folder / f"collision-{index:03d}.bin", 200_000, seed + index)
        jobs.append(UploadJob.of(index, source, COLLISION_FILENAME, "single" if index % 2 else "engine"))
    emulator.set_faults(COLLISION_SPEC, seed=seed)
    run_uploads(emulator, jobs, part_size=64 * 1024, parallel_uploads=8, concurrency=2)
    injected = dict(emulator.faults().get("injected") or {})
    emulator.clear_faults()
    stats = emulator.stats()
    completed = [job for job in jobs if job.error is None and job.file_id in stats["files"]]
    wrong = [job for job in completed if emulator.file_md5(str(job.file_id)) != job.md5]
    shared = len(completed) - len({job.file_id for job in completed})
    log(f"  same-name collisions: {len(wrong)} of {len(completed)} got another upload's file")
    row = "same-name collisions"
    metrics = [
        Metric.info(
            f"{row}: concurrent uploads, one filename and size, lost responses",
            f"{len(jobs)} ({sum(injected.values())} responses lost)",
        ),
        Metric.info(
            f"{row}: completed (the others failed rather than take a file they could not tell apart)",
            f"{len(completed)} of {len(jobs)}",
        ),
        Metric.zero(f"{row}: results holding another upload's content", len(wrong)),
        Metric.zero(f"{row}: results sharing one file id", shared),
        Metric.info(
            f"{row}: extra files (a re-send when the stored file could not be told apart)",
            max(0, int(stats["file_count"]) - len(jobs)),
        ),
    ]
    failures = [
        f"{row}: {job.path.name} ({job.method}) returned file {job.file_id}, which holds another upload's bytes"
        for job in wrong
    ]
    return metrics, failures, [f"{job.path.name} ({job.method}): {job.error}" for job in jobs if job.error]


def run_operator_row(
    emulator: Any,
    workdir: Path,
    *,
    runs: int,
    part_size: int,
    seed: int,
    log: Callable[[str], None],
) -> tuple[list[Metric], list[str]]:
    """The operators themselves (execute() with a minimal context) under the same faults.

    Their connection keeps the production retry policy (backoff from 0.5 s), with
    ``max_retries`` raised to 8 in its extras as a user facing a flaky gateway would.
    """
    from airflow_provider_files.operators.files import ChunkedUploadOperator, UploadJsonlOperator

    emulator.reset()
    sources = workdir / "operator-sources"
    sources.mkdir(parents=True, exist_ok=True)
    jobs: list[UploadJob] = []
    for index in range(runs):
        source = write_batch_file(sources / f"operator-{index:03d}.jsonl", 1 + index * 37, seed=seed + index)
        kind = ("jsonl-single", "jsonl-chunked", "chunked")[index % 3]
        jobs.append(UploadJob.of(index, source, source.path.name, kind))
    conn = connection_env(
        OPERATOR_CONN_ID, emulator.base_url, emulator.api_key, max_retries=OPERATOR_MAX_RETRIES
    )

    def run(job: UploadJob) -> None:
        task_id = f"operator_{job.index}"
        common: dict[str, Any] = {
            "task_id": task_id,
            "source": str(job.path),
            "files_conn_id": OPERATOR_CONN_ID,
            "checkpoint_folder": str(workdir / "operator-checkpoints"),
        }
        if job.method == "chunked":
            operator: Any = ChunkedUploadOperator(
                purpose="batch", part_size_bytes=64 * 1024, concurrency=3, **common
            )
        else:
            operator = UploadJsonlOperator(
                single_request_max_bytes=0 if job.method == "jsonl-chunked" else 100 * MIB,
                part_size_bytes=64 * 1024,
                concurrency=3,
                **common,
            )
        try:
            job.file_id = operator.execute(task_context("reliability_faults", task_id, "faults"))["id"]
        except Exception as exc:
            job.error = f"{type(exc).__name__}: {exc}"

    emulator.set_faults(FAULT_SPEC, seed=seed)
    started = time.monotonic()
    with env_vars(**conn), ThreadPoolExecutor(PARALLEL_UPLOADS) as pool:
        list(pool.map(run, jobs))
    injected = dict(emulator.faults().get("injected") or {})
    emulator.clear_faults()
    figures = tally(emulator, jobs, injected)
    log(f"  operators: {figures.completed}/{len(jobs)} completed in {time.monotonic() - started:.1f}s")
    row = "operators"
    metrics = [
        Metric.info(
            f"{row}: task executions (UploadJsonlOperator single/chunked, ChunkedUploadOperator)",
            f"{len(jobs)}",
        ),
        Metric.equals(f"{row}: completed", figures.completed, len(jobs)),
        Metric.zero(f"{row}: md5 mismatches", figures.md5_mismatches + figures.size_mismatches),
        Metric.zero(f"{row}: duplicate files", figures.duplicate_files),
        Metric.zero(
            f"{row}: orphaned uploads (id known to the client, left pending)", figures.orphaned_uploads
        ),
        Metric.info(
            f"{row}: requests / faulted",
            f"{figures.requests} / {sum(injected.values())} ({figures.fault_rate:.0%})",
        ),
    ]
    failures = [f"{row}: {job.filename} ({job.method}) failed: {job.error}" for job in jobs if job.error]
    return metrics, failures


def run_faults_scenario(
    workdir: Path,
    *,
    uploads: int = 150,
    lost_response_uploads: int = 60,
    part_size: int = PART_SIZE_BYTES,
    operator_runs: int = 24,
    collision_uploads: int = 16,
    failing_uploads: int = 20,
    seed: int = 20261122,
    log: Callable[[str], None] = print,
) -> ScenarioResult:
    """Run both rows against one emulator process and return their figures."""
    from airflow_provider_files.emulator.testing import run_emulator

    started = time.monotonic()
    result = ScenarioResult(
        "faults",
        f"{uploads} uploads under 429/5xx/drops/latency; {lost_response_uploads} uploads with lost responses",
    )
    sources = prepare_sources(workdir / "sources", max(uploads, lost_response_uploads), part_size, seed)
    collision_errors: list[str] = []
    with run_emulator() as emulator:
        rows = (
            ("faults", FAULT_SPEC, uploads, 6, False),
            ("lost responses", LOST_RESPONSE_SPEC, lost_response_uploads, 3, True),
        )
        for offset, (row, spec, count, single_every, lost) in enumerate(rows):
            if not count:
                continue
            metrics, failures = run_row(
                emulator,
                row=row,
                spec=spec,
                sources=sources[:count],
                part_size=part_size,
                seed=seed + offset,
                single_every=single_every,
                lost_responses=lost,
                log=log,
            )
            result.metrics += metrics
            result.failures += failures
        if failing_uploads:
            failing_sources = [src for src in sources if src.size >= 2 * part_size][
                :failing_uploads
            ] or sources[:1]
            metrics, failures = run_failing_row(emulator, failing_sources, seed=seed + 4, log=log)
            result.metrics += metrics
            result.failures += failures
        if collision_uploads:
            metrics, failures, refused = run_collision_row(
                emulator, workdir, uploads=collision_uploads, seed=seed + 3, log=log
            )
            result.metrics += metrics
            result.failures += failures
            collision_errors += refused
        if operator_runs:
            metrics, failures = run_operator_row(
                emulator, workdir, runs=operator_runs, part_size=part_size, seed=seed + 2, log=log
            )
            result.metrics += metrics
            result.failures += failures
    result.notes += [
        f"Fault spec (row `faults`): `{FAULT_SPEC}` (emulator syntax; latency is added to every request).",
        f"Fault spec (row `lost responses`): `{LOST_RESPONSE_SPEC}`; `drop_after` = the server completes the "
        "request, then closes the connection without answering.",
        f"Sizes cycle through {', '.join(str(s) for s in upload_sizes(part_size))} bytes "
        f"(part size {part_size} bytes); {PARALLEL_UPLOADS} uploads at a time, "
        f"{UPLOADER_CONCURRENCY} parts in parallel per upload.",
        "Client retry policy of the `faults` and `lost responses` rows: the production rules (same "
        "transient errors, retry-after honoured) with 10 attempts and backoff 0.05 s doubling to 1 s, so "
        "the run stays short. Row `operators`: the operators' own `execute()` (validation, checkpoints, "
        f"the hook's client with the production backoff) with `max_retries={OPERATOR_MAX_RETRIES}` in the "
        "connection extras, under the `faults` spec.",
        f"Row `giving up`: multi-part uploads under `{FAILING_SPEC}` with {FAILING_ATTEMPTS} attempts per "
        "request, so most fail; the engine must cancel each (retrying the cancel) rather than leave it pending.",
        f"Row `same-name collisions`: {collision_uploads} uploads of different random bytes, all named "
        f"`{COLLISION_FILENAME}` and 200,000 bytes long, 8 at a time, half through the engine and half "
        f"through `POST /files`, under `{COLLISION_SPEC}`. Upload calls that failed there "
        f"({len(collision_errors)}), first three: "
        + ("; ".join(f"`{error[:240]}`" for error in collision_errors[:3]) or "none"),
    ]
    result.elapsed_s = time.monotonic() - started
    return result
