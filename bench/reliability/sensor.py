"""Sensor-under-faults scenario: UploadCompleteTrigger against an emulator that fails and 404s.

Rows:

* *ready under faults*: files that stay ``uploaded`` for a few seconds, while ``GET /files/{id}``
  answers 429/500/503 or drops the connection on a large share of requests: the trigger must
  end with one success event holding every file, processed, with the right size.
* *missing file, short deadline*: a file id that never appears, with a 404 grace longer than the
  deadline: a ``timeout`` event at the deadline whose message names the file.
* *missing file, short grace*: the same id with a short 404 grace: an ``error`` event naming the
  file before the deadline.
* *deleted while waiting*: a file deleted during the processing delay: an ``error`` event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.connections import connection_env
from bench.reliability.common import Metric, ScenarioResult, emulator_client, env_vars

CONN_ID = "reliability_sensor"
GET_FAULTS = "retrieve_file:429=0.15,retrieve_file:500=0.15,retrieve_file:503=0.1,retrieve_file:drop=0.15"
PROCESSING_DELAY_S = 3.0
POLL_INTERVAL_S = 0.2
MAX_POLL_INTERVAL_S = 0.5
# The trigger may end one poll interval (plus one request) after its deadline.
DEADLINE_SLACK_S = 3.0


@dataclass
class TriggerOutcome:
    event: dict[str, Any]
    elapsed_s: float


def run_trigger(file_ids: list[str], *, deadline_in_s: float, **options: Any) -> TriggerOutcome:
    """Run the trigger to its single event (as the triggerer would) and time it."""
    from airflow_provider_files.triggers.files import UploadCompleteTrigger

    options.setdefault("poll_interval_s", POLL_INTERVAL_S)
    options.setdefault("max_poll_interval_s", MAX_POLL_INTERVAL_S)
    trigger = UploadCompleteTrigger(
        file_ids=file_ids, files_conn_id=CONN_ID, deadline=time.time() + deadline_in_s, **options
    )
    # what the triggerer does: rebuild it from its serialized form
    _classpath, kwargs = trigger.serialize()
    trigger = UploadCompleteTrigger(**kwargs)

    async def first_event() -> dict[str, Any]:
        events = []
        async for event in trigger.run():
            events.append(event.payload)
        if len(events) != 1:
            raise AssertionError(f"the trigger yielded {len(events)} events, expected exactly one")
        return dict(events[0])

    started = time.monotonic()
    event = asyncio.run(first_event())
    return TriggerOutcome(event, time.monotonic() - started)


def upload_files(emulator: Any, count: int, prefix: str) -> list[tuple[str, int]]:
    with emulator_client(emulator.base_url, emulator.api_key) as client:
        files = []
        for index in range(count):
            data = f'{{"custom_id": "{prefix}-{index}"}}\n'.encode() * (index + 1)
            files.append(
                (client.create_file(data, "batch", filename=f"{prefix}-{index}.jsonl").id, len(data))
            )
        return files


def run_sensor_scenario(
    workdir: Path, *, files: int = 5, deadline_s: float = 4.0, log: Callable[[str], None] = print
) -> ScenarioResult:
    from airflow_provider_files.emulator.testing import run_emulator

    started = time.monotonic()
    result = ScenarioResult("sensor", "UploadCompleteTrigger against transient errors and 404s")
    checks: list[tuple[str, bool, str]] = []
    with (
        run_emulator(processing_delay_s=PROCESSING_DELAY_S) as emulator,
        env_vars(**connection_env(CONN_ID, emulator.base_url, emulator.api_key)),
    ):
        # 1. ready under faults
        uploaded = upload_files(emulator, files, "ready")
        emulator.set_faults(GET_FAULTS, seed=11)
        outcome = run_trigger(
            [file_id for file_id, _ in uploaded],
            deadline_in_s=60,
            expected_bytes=dict(uploaded),
            max_consecutive_errors=8,
        )
        injected = emulator.faults().get("injected") or {}
        emulator.clear_faults()
        got = {f["id"]: f for f in outcome.event.get("files") or []}
        ok = outcome.event.get("status") == "success" and all(
            got.get(file_id, {}).get("status") == "processed" and got[file_id].get("bytes") == size
            for file_id, size in uploaded
        )
        checks.append(
            (
                f"{files} files ready under faults -> success",
                ok,
                f"{outcome.event.get('status')} after {outcome.elapsed_s:.1f}s; faults on GET: "
                + ", ".join(f"{k} {v}" for k, v in sorted(injected.items())),
            )
        )
        log(f"  sensor: ready under faults: {checks[-1][2]}")

        # 2. missing file, deadline first
        missing = "file-reliability-never-existed"
        emulator.set_faults(GET_FAULTS, seed=12)
        outcome = run_trigger(
            [missing], deadline_in_s=deadline_s, not_found_grace_s=600, max_consecutive_errors=50
        )
        emulator.clear_faults()
        message = str(outcome.event.get("message", ""))
        ok = (
            outcome.event.get("status") == "timeout"
            and missing in message
            and "deadline" in message
            and deadline_s - 0.5 <= outcome.elapsed_s <= deadline_s + DEADLINE_SLACK_S
        )
        checks.append(
            (
                f"missing file, {deadline_s:.0f}s deadline -> timeout at the deadline",
                ok,
                f"{outcome.event.get('status')} after {outcome.elapsed_s:.1f}s: {message[:200]}",
            )
        )

        # 3. missing file, short 404 grace
        outcome = run_trigger([missing], deadline_in_s=60, not_found_grace_s=1.0)
        message = str(outcome.event.get("message", ""))
        ok = outcome.event.get("status") == "error" and missing in message and outcome.elapsed_s < 10
        checks.append(
            (
                "missing file, 1s grace for 404s -> error naming the file",
                ok,
                f"{outcome.event.get('status')} after {outcome.elapsed_s:.1f}s: {message[:200]}",
            )
        )

        # 4. deleted while waiting
        ((victim, size),) = upload_files(emulator, 1, "deleted")
        with emulator_client(emulator.base_url, emulator.api_key) as client:
            client.delete_file(victim)
        outcome = run_trigger(
            [victim], deadline_in_s=30, not_found_grace_s=1.0, expected_bytes={victim: size}
        )
        message = str(outcome.event.get("message", ""))
        ok = outcome.event.get("status") == "error" and victim in message
        checks.append(
            (
                "file deleted while waiting -> error naming the file",
                ok,
                f"{outcome.event.get('status')} after {outcome.elapsed_s:.1f}s: {message[:200]}",
            )
        )
    for name, ok, detail in checks:
        result.metrics.append(Metric(name, "ok" if ok else "FAILED", "ok", ok))
        result.notes.append(f"- {name}: {detail}")
        if not ok:
            result.failures.append(f"sensor: {name}: {detail}")
    result.notes.insert(
        0,
        f"Emulator processing delay {PROCESSING_DELAY_S}s; faults on GET /files/{{id}}: `{GET_FAULTS}`; "
        f"poll interval {POLL_INTERVAL_S}s growing to {MAX_POLL_INTERVAL_S}s.",
    )
    result.elapsed_s = time.monotonic() - started
    return result
