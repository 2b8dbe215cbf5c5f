"""Fast subset of the crash scenario (the full one is `make reliability`): an upload through the
engine's runner and one through the ``airflow-files upload`` command, each SIGKILLed while it
uploads, then run again with the same checkpoint.

What makes it hold on a machine shared with other work: the emulator's bandwidth cap, not the
CPU, sets how long an upload takes; a run that finished before its kill (the machine was faster
than during the calibration) is not counted, and the next try kills it earlier, until it is
killed (an explicit condition, not a share of lucky draws); the test's time limit grows with
the load, since it starts about ten Python processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airflow_provider_files.emulator.testing import run_emulator
from bench.reliability.crash import RUN_TIMEOUT_S, CrashRun, calibrate, crash_once

pytestmark = pytest.mark.timeout(240)  # stretched by the load (tests/conftest.py)

PART_SIZE_BYTES = 256 * 1024
CONCURRENCY = 2
BANDWIDTH_MBPS = 0.5  # per connection: 5 parts take about 1.3 s
SIZE_BYTES = 5 * PART_SIZE_BYTES + 1
MAX_TRIES = 6


def cli_startup_s(emulator, workdir: Path, duration_s: float) -> float:
    """How long ``airflow-files upload`` takes to start uploading: an uninterrupted run of the
    command, less the upload's own ``duration_s`` (its ``--help`` imports more than an upload
    with ``--base-url`` does, and can take longer than the whole upload)."""
    started = time.monotonic()
    run = CrashRun(99, SIZE_BYTES, RUN_TIMEOUT_S, via_cli=True)
    crash_once(emulator, workdir, run, part_size=PART_SIZE_BYTES, concurrency=CONCURRENCY)
    assert not run.killed, "the uninterrupted run of the command did not finish"
    return max(0.0, time.monotonic() - started - duration_s)


def killed_and_resumed(emulator, workdir: Path, *, via_cli: bool, duration_s: float) -> CrashRun:
    """One upload killed ``0.6 x duration_s`` into the upload (earlier on each try that finished
    before the kill), then resumed to the end."""
    startup_s = cli_startup_s(emulator, workdir, duration_s) if via_cli else 0.0
    fraction = 0.6
    for attempt in range(MAX_TRIES):
        run = CrashRun(attempt, SIZE_BYTES, startup_s + fraction * duration_s, via_cli=via_cli)
        crash_once(emulator, workdir, run, part_size=PART_SIZE_BYTES, concurrency=CONCURRENCY)
        if run.killed:
            return run
        fraction /= 2
    raise AssertionError(
        f"the upload finished before each of {MAX_TRIES} kills (the last after {run.kill_after_s:.2f}s)"
    )


@pytest.mark.parametrize("via_cli", [False, True], ids=["runner", "cli"])
def test_killed_uploads_resume_without_resending_checkpointed_parts(tmp_path: Path, via_cli: bool) -> None:
    with run_emulator(bandwidth_per_connection=BANDWIDTH_MBPS) as emulator:
        duration_s = calibrate(emulator, tmp_path, SIZE_BYTES, PART_SIZE_BYTES, CONCURRENCY)
        run = killed_and_resumed(emulator, tmp_path, via_cli=via_cli, duration_s=duration_s)

    assert run.error is None
    if run.checkpoint_upload_id is not None:  # killed after the upload was created: resumed it
        assert run.resumed, run.result
    assert run.resent_beyond_in_flight == 0, run
    assert run.in_flight_parts <= CONCURRENCY, run
    assert run.md5_ok, run
    assert run.duplicate_files == 0, run
