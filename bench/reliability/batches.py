"""Batches scenario: create a batch exactly once and account for every request, under faults and kills.

Each loop uploads a fresh Batch JSONL input (20 to 200 requests) and runs
:mod:`bench.reliability.batch_runner` with a run key of its own: ``run_batch`` (look for the
run key's batch, create it once, wait until it ends) then ``collect_results`` (download the
output and error files once each, account every ``custom_id``). Throughout, the emulator fails the
batch routes (``create_batch``, ``retrieve_batch``, ``list_batches``, ``cancel_batch``): 429 with a
``retry-after``, 500/503, connections dropped before the request has any effect, and latency.
Every other loop also loses the answer to the create (``create_batch:drop_after=x1``: the batch
*is* created, the connection is closed instead of answering). In the crash loops the runner is
killed with SIGKILL at a random moment between its start and the batch's end, then run again with
the same run key (a task retry); half the loops also keep a checkpoint file (the operator's
checkpoint folder), the other half rely on the run key alone.

Figures (counted from the emulator's bookkeeping and the files written, not the runner's word):

* *batches per loop*: batches on the server whose metadata holds the loop's run key. Exactly one
  for every loop: *duplicate batches* are those beyond the first, summed over the loops.
* *custom_ids missing / duplicated / unexpected*: the output and error files the last runner
  wrote, read line by line and compared with the ids of the loop's input.
* *lost create answers*: ``POST /batches`` requests the emulator processed and then dropped.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_files.batches import RUN_KEY_METADATA_KEY
from bench.datagen import write_batch_file
from bench.reliability.batch_runner import READY_LINE, RESULT_PREFIX
from bench.reliability.common import Metric, ScenarioResult, emulator_client

RETRY_AFTER_S = 0.2
LATENCY_MS = 10
FAULT_SPEC = (
    "batches:429=0.12,batches:500=0.05,batches:503=0.05,batches:drop=0.1,"
    f"batches:latency_ms={LATENCY_MS},retry_after={RETRY_AFTER_S}"
)
LOST_CREATE_SPEC = "create_batch:drop_after=x1"
BATCH_DURATION_S = 1.5
REQUEST_ERROR_RATE = 0.05
RUN_TIMEOUT_S = 180.0


@dataclass
class BatchLoop:
    """What one loop did and found."""

    index: int
    lines: int
    crash: bool
    lost_create: bool
    checkpoint: bool
    run_key: str
    killed: bool = False
    kill_after_s: float = 0.0
    batches: int = 0
    missing: int = 0
    duplicated: int = 0
    unexpected: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None


def _start(command: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != READY_LINE:
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
        raise RuntimeError(f"runner did not start: {line}{out}{err[-2000:]}")


def _kill_after(process: subprocess.Popen[str], seconds: float) -> bool:
    """SIGKILL ``process`` (and its group) after ``seconds`` unless it ends first; whether it was killed."""
    try:
        process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return True
    return False


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise RuntimeError(f"runner did not finish in {RUN_TIMEOUT_S:.0f} s") from None
    for line in out.splitlines():
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    raise RuntimeError(f"runner exited {process.returncode} without a result: {err[-3000:]}")


def _input_ids(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        return [json.loads(line)["custom_id"] for line in handle if line.strip()]


def _result_ids(work_dir: Path, files: dict[str, str]) -> collections.Counter[str]:
    """How often each custom_id appears in the result files the runner wrote."""
    seen: collections.Counter[str] = collections.Counter()
    for name in files.values():
        with open(work_dir / name, "rb") as handle:
            seen.update(json.loads(line)["custom_id"] for line in handle if line.strip())
    return seen


def _batches_by_run_key(emulator: Any) -> collections.Counter[str]:
    batches = emulator.stats()["batches"].values()
    return collections.Counter(
        str((info.get("metadata") or {}).get(RUN_KEY_METADATA_KEY)) for info in batches
    )


def _runner_command(emulator: Any, loop: BatchLoop, file_id: str, work_dir: Path) -> list[str]:
    command = [
        sys.executable, "-m", "bench.reliability.batch_runner",
        "--base-url", emulator.base_url, "--api-key", emulator.api_key,
        "--input-file-id", file_id, "--run-key", loop.run_key, "--work-dir", str(work_dir),
    ]  # fmt: skip
    if loop.checkpoint:
        command += ["--checkpoint", str(work_dir / "batch.checkpoint.json")]
    return command


def run_loop(emulator: Any, workdir: Path, loop: BatchLoop, rng: random.Random) -> None:
    """Upload the loop's input, run (and maybe kill and rerun) the runner, then count."""
    started = time.monotonic()
    loop_dir = workdir / f"loop-{loop.index:03d}"
    loop_dir.mkdir(parents=True, exist_ok=True)
    data = write_batch_file(loop_dir / "input.jsonl", loop.lines, line_bytes=300, seed=1000 + loop.index)
    with emulator_client(emulator.base_url, emulator.api_key) as client:
        file_id = client.create_file(data.path, "batch").id
    emulator.set_faults(FAULT_SPEC + (f",{LOST_CREATE_SPEC}" if loop.lost_create else ""), seed=loop.index)
    command = _runner_command(emulator, loop, file_id, loop_dir / "results")
    if loop.crash:
        process = _start(command)
        _wait_ready(process)
        # from the start to past the batch's end: before, during and after the create, in the wait
        loop.kill_after_s = rng.uniform(0.0, BATCH_DURATION_S + 0.5)
        loop.killed = _kill_after(process, loop.kill_after_s)
    process = _start(command)
    _wait_ready(process)
    loop.result = _finish(process)
    emulator.clear_faults()
    loop.batches = _batches_by_run_key(emulator)[loop.run_key]
    expected = _input_ids(data.path)
    seen = _result_ids(loop_dir / "results", loop.result["files"])
    loop.missing = sum(1 for custom_id in expected if custom_id not in seen)
    loop.duplicated = sum(count - 1 for count in seen.values() if count > 1)
    loop.unexpected = len(set(seen) - set(expected))
    loop.elapsed_s = time.monotonic() - started


def run_batches_scenario(
    workdir: Path,
    *,
    loops: int = 30,
    crash_every: int = 3,
    lines: tuple[int, int] = (20, 200),
    seed: int = 11,
    log: Callable[[str], None] = print,
) -> ScenarioResult:
    """Run ``loops`` batch loops (every ``crash_every``-th one killed and rerun) and their figures."""
    from airflow_provider_files.emulator.testing import run_emulator

    started = time.monotonic()
    rng = random.Random(seed)
    crashes = sum(1 for index in range(loops) if index % crash_every == crash_every - 1)
    result = ScenarioResult(
        "batches",
        f"{loops} batch loops (create once, wait, collect) under faults on the batch routes, "
        f"{crashes} of them killed at a random point and run again with the same run key",
    )
    done: list[BatchLoop] = []
    workdir.mkdir(parents=True, exist_ok=True)
    with run_emulator(
        data_dir=workdir / "emulator",
        batch_duration_s=BATCH_DURATION_S,
        batch_request_error_rate=REQUEST_ERROR_RATE,
    ) as emulator:
        for index in range(loops):
            loop = BatchLoop(
                index=index,
                lines=rng.randint(*lines),
                crash=index % crash_every == crash_every - 1,
                lost_create=index % 2 == 0,
                checkpoint=(index // 2) % 2 == 0,
                run_key=f"reliability-batches-{seed}-{index:03d}",
            )
            try:
                run_loop(emulator, workdir, loop, rng)
            except Exception as exc:  # a scenario reports, it does not stop
                loop.error = f"{type(exc).__name__}: {exc}"
                result.failures.append(f"loop {index}: {loop.error}")
                emulator.clear_faults()
            done.append(loop)
            killed = f"killed after {loop.kill_after_s:.2f}s, " if loop.killed else ""
            log(
                f"   loop {index:2d}: {loop.lines:3d} requests, {killed}"
                f"{'lost create, ' if loop.lost_create else ''}{loop.batches} batch(es), "
                f"missing {loop.missing}, duplicated {loop.duplicated}, {loop.elapsed_s:.1f}s"
                + (f", ERROR {loop.error}" if loop.error else "")
            )
        lost_creates = sum(
            1
            for entry in emulator.request_log()
            if entry.get("route") == "create_batch" and entry.get("fault") == "drop_after"
        )
    finished = [loop for loop in done if loop.error is None]
    duplicates = sum(max(0, loop.batches - 1) for loop in finished)
    result.metrics += [
        Metric.at_least("batch loops completed", len(finished), loops),
        Metric.info("of them killed mid-run, then run again", sum(1 for loop in finished if loop.killed)),
        Metric.info("lost create answers (batch created, answer dropped)", lost_creates),
        Metric.equals(
            "loops with exactly 1 batch", sum(1 for loop in finished if loop.batches == 1), len(finished)
        ),
        Metric.zero("duplicate batches", duplicates),
        Metric.info("requests (custom_ids) in all inputs", sum(loop.lines for loop in finished)),
        Metric.zero("custom_ids missing from the results", sum(loop.missing for loop in finished)),
        Metric.zero("custom_ids duplicated in the results", sum(loop.duplicated for loop in finished)),
        Metric.zero("custom_ids not in the input", sum(loop.unexpected for loop in finished)),
        Metric.info(
            "seconds per loop (median; max)",
            f"{statistics.median(loop.elapsed_s for loop in finished):.1f}; "
            f"{max(loop.elapsed_s for loop in finished):.1f}"
            if finished
            else "-",
        ),
    ]
    result.notes += [
        f"Faults on the batch routes: `{FAULT_SPEC}`; every other loop adds `{LOST_CREATE_SPEC}`.",
        f"Emulator batches take {BATCH_DURATION_S:g} s; {REQUEST_ERROR_RATE:.0%} of requests end in "
        "the error file (so both result files are checked).",
        f"Kills: SIGKILL at a uniform moment in 0..{BATCH_DURATION_S + 0.5:g} s after the runner is "
        "ready (a kill after it finished leaves nothing to retry; the rerun still runs and must reuse the batch).",
        "Half the loops keep a checkpoint file of the batch, the other half find it by the run key alone.",
    ]
    result.elapsed_s = time.monotonic() - started
    return result
