"""Crash scenario: SIGKILL the uploading process at a random point, then resume from its checkpoint.

Each run uploads a fresh multi-part file through :mod:`bench.reliability.crash_runner` (the
chunked engine with a JSON checkpoint file) against an emulator whose connections are capped so
an upload takes a second or two; the process is killed at a random moment, then started again
with the same checkpoint and left to finish.

Figures, from the emulator's bookkeeping (bytes of part bodies it stored, per upload):

* *resumed*: runs whose second process finished the upload the checkpoint named (or returned
  the file the checkpoint already held), instead of starting over.
* *in flight at the kill*: bytes the server had stored for parts the checkpoint does not list,
  plus bodies cut off by the kill. At most ``concurrency`` parts can be in that state.
* *re-sent beyond the parts in flight*: bytes stored after the resume that the first process
  had already delivered and checkpointed. Resuming correctly makes this 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.datagen import MIB, md5_of, write_random_file
from bench.reliability.common import Metric, ScenarioResult
from bench.reliability.crash_runner import READY_LINE, RESULT_PREFIX

PART_SIZE_BYTES = 1 * MIB
CONCURRENCY = 2
# megabytes (10**6) per second per connection: 2 parallel parts give about 6 MB/s
BANDWIDTH_MBPS = 3.0
RUN_TIMEOUT_S = 120.0


@dataclass
class CrashRun:
    """What one kill-and-resume cycle measured."""

    index: int
    size: int
    kill_after_s: float
    via_cli: bool = False
    killed: bool = False
    checkpoint_upload_id: str | None = None
    checkpointed_parts: int = 0
    in_flight_bytes: int = 0
    in_flight_parts: int = 0
    resent_bytes: int = 0
    resent_beyond_in_flight: int = 0
    resumed: bool = False
    md5_ok: bool = False
    duplicate_files: int = 0
    file_count: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _part_length(index: int, size: int, part_size: int) -> int:
    return max(0, min(part_size, size - index * part_size))


API_KEY_ENV = "RELIABILITY_CRASH_API_KEY"


def _runner_command(
    emulator: Any, path: Path, checkpoint: Path, part_size: int, concurrency: int, *, via_cli: bool = False
) -> list[str]:
    if via_cli:
        return [
            sys.executable,
            "-m",
            "airflow_provider_files.cli",
            "upload",
            str(path),
            "--purpose",
            "batch",
            "--base-url",
            emulator.base_url,
            "--api-key-env",
            API_KEY_ENV,
            "--checkpoint",
            str(checkpoint),
            "--part-size",
            str(part_size),
            "--concurrency",
            str(concurrency),
            # the crash rows measure resuming the Uploads API, whatever the size and content
            "--chunked",
            "--no-validate",
            "--quiet",
        ]
    return _crash_runner_command(
        emulator, path, checkpoint, ["--part-size", str(part_size), "--concurrency", str(concurrency)]
    )


def _crash_runner_command(emulator: Any, path: Path, checkpoint: Path, options: list[str]) -> list[str]:
    """``python -m bench.reliability.crash_runner PATH`` to the emulator with its checkpoint and ``options``."""
    return [
        sys.executable, "-m", "bench.reliability.crash_runner", str(path),
        "--base-url", emulator.base_url, "--api-key", emulator.api_key,
        "--checkpoint", str(checkpoint), *options,
    ]  # fmt: skip


def _start(command: list[str], api_key: str = "") -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env[API_KEY_ENV] = api_key
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )


def _wait_ready(process: subprocess.Popen[str], via_cli: bool = False) -> None:
    """Return once the upload starts (the CLI gives no sign: it is killed counting from its start)."""
    if via_cli:
        return
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != READY_LINE:
        rest = process.communicate(timeout=RUN_TIMEOUT_S)
        raise RuntimeError(f"runner did not start: {line}{rest[0]}{rest[1][-2000:]}")


def _finish(process: subprocess.Popen[str], via_cli: bool = False) -> dict[str, Any]:
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    if via_cli:
        if process.returncode != 0:
            raise RuntimeError(f"airflow-files upload exited {process.returncode}: {err[-3000:]}")
        return {"file_id": json.loads(out)["id"]}
    for line in out.splitlines():
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    raise RuntimeError(f"runner exited {process.returncode} without a result: {err[-3000:]}")


def _upload_bytes(stats: dict[str, Any]) -> dict[str, int]:
    return {upload_id: int(info["bytes_received"]) for upload_id, info in stats["uploads"].items()}


def _cut_bytes(log: list[dict[str, Any]]) -> int:
    """Part bodies the server was receiving when the client vanished (never stored)."""
    return sum(
        int(entry.get("bytes_received") or 0)
        for entry in log
        if entry.get("route") == "add_part" and entry.get("status") == "client_disconnected"
    )


def _kill_after(process: subprocess.Popen[str], seconds: float) -> bool:
    """SIGKILL ``process`` (and its group) after ``seconds`` unless it ends first; whether it was killed.

    Its output pipes are drained meanwhile so that a chatty process cannot block on a full pipe.
    """
    try:
        process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return True
    return False


def _wait_until_idle(emulator: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(entry.get("status") is not None for entry in emulator.request_log()):
            return
        time.sleep(0.05)
    raise RuntimeError("the emulator still has requests in progress long after the kill")


def calibrate(emulator: Any, workdir: Path, size: int, part_size: int, concurrency: int) -> float:
    """Seconds from READY to the end of one uninterrupted upload of ``size`` bytes."""
    emulator.reset()
    path = write_random_file(workdir / "calibrate.bin", size, 1).path
    checkpoint = workdir / "calibrate.checkpoint.json"
    process = _start(_runner_command(emulator, path, checkpoint, part_size, concurrency), emulator.api_key)
    _wait_ready(process)
    started = time.monotonic()
    _finish(process)
    return time.monotonic() - started


def measure_cli_startup() -> float:
    """Seconds until ``airflow-files upload`` has imported what it needs (its ``--help`` run)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "airflow_provider_files.cli", "upload", "--help"],
        capture_output=True,
        check=True,
        timeout=RUN_TIMEOUT_S,
    )
    return time.monotonic() - started


def crash_once(
    emulator: Any,
    workdir: Path,
    run: CrashRun,
    *,
    part_size: int,
    concurrency: int,
) -> None:
    emulator.reset()
    path = write_random_file(workdir / f"crash-{run.index}.bin", run.size, 1000 + run.index).path
    source_md5 = md5_of(path)
    checkpoint = workdir / f"crash-{run.index}.checkpoint.json"
    command = _runner_command(emulator, path, checkpoint, part_size, concurrency, via_cli=run.via_cli)

    first = _start(command, emulator.api_key)
    _wait_ready(first, run.via_cli)
    run.killed = _kill_after(first, run.kill_after_s)
    if not run.killed:
        return
    first.communicate(timeout=RUN_TIMEOUT_S)

    # What the first process left behind, once the server has finished reading what the dead
    # process had already written into its sockets (a part can still complete after the kill).
    _wait_until_idle(emulator)
    before = emulator.stats()
    state = json.loads(checkpoint.read_text()) if checkpoint.exists() else None
    checkpointed: dict[int, str] = {}
    if state and state.get("upload_id"):
        run.checkpoint_upload_id = str(state["upload_id"])
        checkpointed = {int(index): part for index, part in (state.get("parts") or {}).items()}
        if state.get("file"):
            checkpointed = {index: "" for index in range((run.size + part_size - 1) // part_size)}
    run.checkpointed_parts = len(checkpointed)
    checkpointed_bytes = sum(_part_length(index, run.size, part_size) for index in checkpointed)
    stored_before = _upload_bytes(before)
    log_before = emulator.request_log()
    cut_before = _cut_bytes(log_before)
    cut_requests = sum(
        1 for e in log_before if e.get("route") == "add_part" and e.get("status") == "client_disconnected"
    )
    stored_not_checkpointed = sum(stored_before.values()) - (
        checkpointed_bytes if run.checkpoint_upload_id in stored_before else 0
    )
    run.in_flight_bytes = stored_not_checkpointed + cut_before
    run.in_flight_parts = cut_requests + -(-max(0, stored_not_checkpointed) // part_size)

    # Resume to the end.
    second = _start(command, emulator.api_key)
    _wait_ready(second, run.via_cli)
    run.result = _finish(second, run.via_cli)
    after = emulator.stats()
    # the upload the file came from, by the server's records
    run.result["upload_id"] = next(
        (uid for uid, info in after["uploads"].items() if info.get("file_id") == run.result["file_id"]),
        run.result.get("upload_id"),
    )
    stored_after = _upload_bytes(after)
    completed_upload_bytes = run.size if run.result.get("upload_id") in stored_after else 0
    run.resent_bytes = sum(stored_after.values()) - completed_upload_bytes
    run.resent_beyond_in_flight = max(0, run.resent_bytes - stored_not_checkpointed)
    run.resumed = run.checkpoint_upload_id is not None and (
        run.result.get("upload_id") == run.checkpoint_upload_id or bool(run.result.get("reused_file"))
    )
    run.file_count = int(after["file_count"])
    run.duplicate_files = max(0, run.file_count - 1)
    file_id = str(run.result["file_id"])
    run.md5_ok = emulator.file_md5(file_id) == source_md5 and after["files"][file_id]["bytes"] == run.size
    path.unlink(missing_ok=True)


@dataclass
class SingleCrashRun:
    """One kill-and-retry cycle of the single-request upload with its checkpoint."""

    index: int
    killed: bool = False
    stored_before_retry: int = 0
    file_count: int = 0
    md5_ok: bool = False
    ready_to_exit_s: float = 0.0
    error: str | None = None


def crash_single_once(
    emulator: Any, workdir: Path, run: SingleCrashRun, kill_after_s: float, lines: int
) -> None:
    from bench.datagen import write_batch_file

    emulator.reset()
    path = write_batch_file(workdir / f"single-{run.index}.jsonl", lines, seed=run.index).path
    folder = workdir / f"single-{run.index}-checkpoints"
    command = _crash_runner_command(
        emulator, path, folder / "single.json", ["--part-size", "0", "--single-request"]
    )
    first = _start(command)
    _wait_ready(first)
    ready_at = time.monotonic()
    run.killed = _kill_after(first, kill_after_s)
    run.ready_to_exit_s = time.monotonic() - ready_at
    if not run.killed:
        return
    first.communicate(timeout=RUN_TIMEOUT_S)
    _wait_until_idle(emulator)
    run.stored_before_retry = int(emulator.stats()["file_count"])
    second = _start(command)
    _wait_ready(second)
    result = _finish(second)
    stats = emulator.stats()
    run.file_count = int(stats["file_count"])
    file_id = str(result["file_id"])
    run.md5_ok = (
        emulator.file_md5(file_id) == md5_of(path) and stats["files"][file_id]["bytes"] == path.stat().st_size
    )


def run_single_crashes(
    emulator: Any, workdir: Path, *, runs: int, rng: random.Random, log: Callable[[str], None]
) -> tuple[list[Metric], list[str]]:
    """SIGKILL a single-request upload during its POST /files, then run it again with its checkpoint."""
    lines = 20_000  # about 4 MB
    emulator.reset()
    calibration = SingleCrashRun(-1)
    crash_single_once(emulator, workdir, calibration, kill_after_s=RUN_TIMEOUT_S, lines=lines)
    if calibration.killed:
        raise RuntimeError("the uninterrupted single-request run did not finish")
    duration_s = calibration.ready_to_exit_s
    done: list[SingleCrashRun] = []
    attempts = 0
    while len(done) < runs and attempts < runs * 3:
        attempts += 1
        run = SingleCrashRun(len(done))
        try:
            crash_single_once(emulator, workdir, run, kill_after_s=rng.uniform(0.0, duration_s), lines=lines)
        except Exception as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            run.killed = True
        if run.killed:
            done.append(run)
    ok = [run for run in done if run.error is None]
    log(f"  crashes (single request): {len(ok)} killed and retried; uninterrupted run {duration_s:.1f}s")
    row = "single request"
    metrics = [
        Metric.at_least(
            f"{row}: SingleRequestUploader runs killed during POST /files, then retried", len(ok), runs
        ),
        Metric.info(
            f"{row}: of them, the killed try had already stored the file",
            sum(1 for run in ok if run.stored_before_retry),
        ),
        Metric.zero(f"{row}: duplicate files", sum(max(0, run.file_count - 1) for run in ok)),
        Metric.zero(f"{row}: md5 mismatches", sum(1 for run in ok if not run.md5_ok)),
    ]
    return metrics, [f"{row} crash run {run.index}: {run.error}" for run in done if run.error]


def run_crash_scenario(
    workdir: Path,
    *,
    runs: int = 20,
    part_size: int = PART_SIZE_BYTES,
    concurrency: int = CONCURRENCY,
    bandwidth_mbps: float = BANDWIDTH_MBPS,
    parts_per_file: tuple[int, int] = (6, 10),
    single_request_runs: int = 6,
    seed: int = 7,
    log: Callable[[str], None] = print,
) -> ScenarioResult:
    from airflow_provider_files.emulator.testing import run_emulator

    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    result = ScenarioResult("crashes", f"{runs} uploads killed with SIGKILL at a random point, then resumed")
    done: list[CrashRun] = []
    with run_emulator(bandwidth_per_connection=bandwidth_mbps) as emulator:
        typical_size = parts_per_file[1] * part_size
        duration_s = calibrate(emulator, workdir, typical_size, part_size, concurrency)
        cli_startup_s = measure_cli_startup()
        log(
            f"  crashes: an uninterrupted {typical_size} byte upload takes {duration_s:.2f}s; "
            f"the CLI starts in {cli_startup_s:.2f}s"
        )
        attempts = 0
        while len(done) < runs and attempts < runs * 2:
            attempts += 1
            size = rng.randint(parts_per_file[0] * part_size, parts_per_file[1] * part_size) + rng.randint(
                0, 1
            )
            via_cli = len(done) % 2 == 1
            # the CLI is killed counting from its start, so its start-up time is added
            startup_s = cli_startup_s if via_cli else 0.0
            run = CrashRun(
                len(done),
                size,
                kill_after_s=startup_s + rng.uniform(0.0, duration_s * size / typical_size),
                via_cli=via_cli,
            )
            try:
                crash_once(emulator, workdir, run, part_size=part_size, concurrency=concurrency)
            except Exception as exc:
                run.error = f"{type(exc).__name__}: {exc}"
                run.killed = True
            if run.killed:
                done.append(run)
        single_metrics, single_failures = (
            run_single_crashes(emulator, workdir, runs=single_request_runs, rng=rng, log=log)
            if single_request_runs
            else ([], [])
        )
    killed = [run for run in done if run.error is None]
    resumed = sum(1 for run in killed if run.resumed)
    restarted = [run for run in killed if run.checkpoint_upload_id is None]
    max_in_flight = max((run.in_flight_parts for run in killed), default=0)
    result.metrics += [
        Metric.at_least("crash runs (killed, then resumed to the end)", len(killed), runs),
        Metric.equals(
            "resumed from the checkpoint (killed after the upload was created)",
            resumed,
            len(killed) - len(restarted),
        ),
        Metric.info("killed before the first checkpoint (started over)", len(restarted)),
        Metric.zero(
            "bytes re-sent beyond the parts in flight", sum(r.resent_beyond_in_flight for r in killed)
        ),
        Metric(
            "most parts in flight at a kill (cut off, or stored but not checkpointed)",
            max_in_flight,
            f"<= {concurrency} (concurrency)",
            max_in_flight <= concurrency,
        ),
        Metric.info(
            "part bytes stored twice in all (parts in flight at the kills)",
            sum(max(0, r.resent_bytes) for r in killed),
        ),
        Metric.zero("md5 mismatches", sum(1 for run in killed if not run.md5_ok)),
        Metric.zero("duplicate files", sum(run.duplicate_files for run in killed)),
        Metric.zero("runs that failed", sum(1 for run in done if run.error)),
    ]
    result.failures += [f"crash run {run.index}: {run.error}" for run in done if run.error]
    result.metrics += single_metrics
    result.failures += single_failures
    result.notes += [
        f"Files of {parts_per_file[0]}-{parts_per_file[1]} parts of {part_size} bytes, {concurrency} parts in "
        f"parallel, emulator capped at {bandwidth_mbps} MB/s per connection; an uninterrupted upload took "
        f"{duration_s:.2f}s; kill times uniform over that duration.",
        "Even runs use `python -m bench.reliability.crash_runner` (ChunkedUploader + JsonFileCheckpointStore, "
        "killed counting from when the upload starts); odd runs use the real command "
        "`airflow-files upload PATH --checkpoint C --part-size N --concurrency K --base-url URL` "
        f"(killed counting from its start; it takes about {cli_startup_s:.2f}s to start).",
        "Rows `single request`: SingleRequestUploader (one POST /files of a 4 MB file, checkpointed "
        "before it is sent) in a child process, killed at a random point of an uninterrupted run's "
        "duration, then run again with the same checkpoint as a task retry would.",
        f"Counts: {sum(1 for r in killed if r.via_cli)} runs through the CLI; "
        f"{sum(1 for r in killed if r.checkpointed_parts == 0)} killed before any part was checkpointed.",
    ]
    result.elapsed_s = time.monotonic() - started
    return result
