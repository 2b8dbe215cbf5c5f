"""The batch-results row: download a finished batch's output file and check every ``custom_id``.

The emulator makes the output: a request's ``max_tokens`` sets the length of its fake answer
(about 4 bytes per token, see ``emulator/batch_results.py``), so an input of 50,000 short requests
gives an output file of a chosen size. One batch is created per scenario, before the runs; each
contender then downloads its output in its own child process (``bench.perf.contenders``):

* ``ours-collect``: ``collect_results`` (``batches/collect.py``) through ``FilesHook``'s client
  from an ``AIRFLOW_CONN_*`` connection: the input's ids, the output streamed to a file through
  the accounting, every id checked once;
* ``sdk-content``: ``OpenAI().files.content(output_file_id)``, written to a file, then
  ``json.loads`` per line and a set of the ids;
* ``raw-download`` (the ceiling): ``httpx`` streaming ``GET /files/{id}/content`` to ``/dev/null``.

A run is valid when the file written has the md5 of the emulator's output file and the contender
counted one line per request with no id twice (the raw download: all bytes received).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.datagen import MB, DataFile, md5_of, size_label, write_short_requests
from bench.perf.environment import log
from bench.perf.measure import Run, Scenario, alternating_rounds, child_env, log_run, measure_child

#: The contenders of the row, in the order they alternate.
BATCH_RESULT_CONTENDERS = ("ours-collect", "sdk-content", "raw-download")
#: Input keys (``--sizes``) of the result files, each the size of the output file to make.
RESULT_SIZE_KEYS = ("results", "results_small")
MAX_RESULT_LINES = 50_000
#: An output line of a chat completion without its answer text (measured on the emulator's lines).
RESULT_LINE_OVERHEAD_BYTES = 687
BYTES_PER_TOKEN = 4
ENDPOINT = "/v1/chat/completions"
BATCH_DURATION_S = 1.0
BATCH_READY_TIMEOUT_S = 600.0


def result_lines(size_bytes: int) -> int:
    """Requests of the batch whose output is about ``size_bytes`` long (50,000 from 50 MB up)."""
    return max(10, min(MAX_RESULT_LINES, size_bytes // 1000))


def write_results_input(path: Path, size_bytes: int) -> DataFile:
    """A Batch JSONL input whose output file will be about ``size_bytes`` long."""
    lines = result_lines(size_bytes)
    max_tokens = max(1, round((size_bytes / lines - RESULT_LINE_OVERHEAD_BYTES) / BYTES_PER_TOKEN))
    return write_short_requests(path, lines, max_tokens=max_tokens, url=ENDPOINT)


def make_batch(emulator: Any, data: DataFile) -> tuple[str, str, int]:
    """Upload ``data``, run it as a batch on the emulator; (batch id, output file id, output bytes)."""
    from airflow_provider_files.api import ClientSettings, FilesClient

    emulator.configure(batch_duration_s=BATCH_DURATION_S, batch_request_error_rate=0.0)
    settings = ClientSettings(api_key=emulator.api_key, base_url=emulator.base_url, timeout_s=300.0)
    with FilesClient(settings) as client:
        file = client.create_file(data.path, "batch")
        batch = client.create_batch(file.id, ENDPOINT)
        deadline = time.monotonic() + BATCH_READY_TIMEOUT_S
        while batch.status != "completed":
            if batch.is_terminal or time.monotonic() > deadline:
                raise RuntimeError(f"batch {batch.id} ended {batch.status}, not completed")
            time.sleep(0.5)
            batch = client.retrieve_batch(batch.id)
        assert batch.output_file_id is not None
        output = client.retrieve_file(batch.output_file_id)
    return batch.id, batch.output_file_id, int(output.bytes or 0)


def run_batch_results_scenario(
    scenario: Scenario, data: DataFile, emulator: Any, runs: int, workdir: Path
) -> None:
    """Alternate the contenders on one finished batch; check every run's file and counts."""
    env = child_env()
    try:
        batch_id, output_id, output_bytes = make_batch(emulator, data)
    except Exception as error:  # a bench reports, it does not stop
        for name in scenario.contenders:
            scenario.errors[name] = f"the batch could not be made: {type(error).__name__}: {error}"
        return
    scenario.size_bytes = output_bytes
    expected_md5 = emulator.file_md5(output_id)
    log(
        f"{scenario.id}: batch {batch_id}, {data.lines} requests, output {size_label(output_bytes)} "
        f"({output_bytes / MB:.0f} MB)"
    )
    for round_index, name in alternating_rounds(scenario, scenario.contenders, runs):
        dest = workdir / f"{scenario.id}-{name}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        command = [
            sys.executable, "-m", "bench.perf.contenders", name,
            "--base-url", emulator.base_url, "--api-key", emulator.api_key,
            "--batch-id", batch_id, "--file", str(dest),
        ]  # fmt: skip
        measured = measure_child(scenario, name, command, env, emulator)
        if measured is None:
            continue
        outcome, rss = measured
        valid = _valid(outcome, data.lines, output_bytes, expected_md5)
        run = Run(outcome["elapsed_s"], rss, valid, outcome)
        scenario.runs[name].append(run)
        verdict = "checked" if valid else "NOT VALID: " + str(outcome)[:300]
        log_run(scenario, f"{round_index + 1}/{runs}", name, run, output_bytes, verdict)
        shutil.rmtree(dest, ignore_errors=True)
    scenario.load_avg = [round(value, 2) for value in os.getloadavg()]


def _valid(outcome: dict[str, Any], lines: int, output_bytes: int, expected_md5: str) -> bool:
    if outcome.get("bytes") != output_bytes:
        return False
    written = outcome.pop("written_path", None)
    if written is None:  # the raw download keeps nothing
        return True
    file_ok = md5_of(written) == expected_md5
    outcome["md5_ok"] = file_ok
    return file_ok and outcome.get("lines") == lines and outcome.get("duplicates") == 0
