"""Running the contenders: each upload in its own child process (its peak RSS is its own), each
validation in this process, alternating contenders run by run, every upload's md5 checked."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.datagen import MB, DataFile
from bench.perf.contenders import WHOLE_PROCESS_CONTENDERS, whole_process_command
from bench.perf.environment import installed, log

WAN_BANDWIDTH_MBPS = 25.0
WAN_LATENCY_MS = 40.0
CHILD_TIMEOUT_S = 900.0


@dataclass
class Run:
    """One upload by one contender."""

    elapsed_s: float
    peak_rss_bytes: int
    md5_ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


class ContenderFailed(RuntimeError):
    pass


TIME_COMMAND = "/usr/bin/time"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``), 0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """Run ``command``, return its JSON output and its own peak RSS in bytes.

    The peak comes from GNU time (``%M``) when present: ``os.wait4`` on a child of this process
    would count this (large) process's pages too, since Linux carries the pre-exec memory's high
    water mark into ``ru_maxrss``. Without GNU time, the child's own ``VmHWM`` is used.
    """
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-child-") as scratch:
        rss_file = Path(scratch) / "maxrss"
        stderr_path = Path(scratch) / "stderr"
        wrapped = command
        if os.access(TIME_COMMAND, os.X_OK):
            wrapped = [TIME_COMMAND, "-f", "%M", "-o", str(rss_file), *command]
        with open(stderr_path, "wb") as stderr:
            try:
                completed = subprocess.run(
                    wrapped,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    cwd=REPO_ROOT,
                    env=env,
                    timeout=CHILD_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ContenderFailed(f"{_name(command)} did not finish in {CHILD_TIMEOUT_S:.0f} s") from None
        wall_s = time.perf_counter() - started
        if completed.returncode != 0:
            tail = stderr_path.read_text(errors="replace")[-3000:]
            raise ContenderFailed(f"{_name(command)} exited {completed.returncode}:\n{tail}")
        outcome = _json_printed(completed.stdout.decode())
        rss_text = rss_file.read_text().split() if rss_file.exists() else []
    # CPU of the whole child process, interpreter start and imports included.
    outcome["client_cpu_s"] = round(_children_cpu_s() - cpu_before, 3)
    # Process start to exit, just after the JSON was printed.
    outcome["process_wall_s"] = round(wall_s, 4)
    if rss_text and rss_text[-1].isdigit():
        return outcome, int(rss_text[-1]) * 1024  # GNU time reports KiB
    return outcome, int(outcome.get("vm_hwm_bytes") or 0)


def _name(command: list[str]) -> str:
    """The contender a child command runs, for messages."""
    return (
        command[3]
        if len(command) > 3 and command[1:3] == ["-m", "bench.perf.contenders"]
        else Path(command[0]).name
    )


def _json_printed(stdout: str) -> dict[str, Any]:
    """The JSON object a child printed: all of its output, or its last line."""
    text = stdout.strip()
    try:
        return dict(json.loads(text))
    except ValueError:
        return dict(json.loads(text.splitlines()[-1]))


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the repository on ``PYTHONPATH`` (and ``extra``), for a child."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return {**env, **(extra or {})}


@dataclass
class Scenario:
    """Several contenders doing the same job on the same input, alternating run by run."""

    id: str
    title: str
    profile: str  # loopback | wan | local
    input_key: str
    contenders: list[str]
    purpose: str = "assistants"
    mime_type: str = "application/octet-stream"
    runs: dict[str, list[Run]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    size_bytes: int = 0
    load_avg: list[float] = field(default_factory=list)


def contender_available(name: str) -> str | None:
    """Why ``name`` cannot run here, or None."""
    needs = {
        "sdk-chunked": "openai",
        "sdk-single": "openai",
        "sdk-script": "openai",
        "airflow-openai-hook-single": "airflow.providers.openai",
    }.get(name)
    if needs and not installed(needs):
        return f"{needs} is not installed"
    return None


def measure_child(
    scenario: Scenario, name: str, command: list[str], env: dict[str, str], emulator: Any
) -> tuple[dict[str, Any], int] | None:
    """Run one contender's child: its outcome (with the emulator's CPU seconds meanwhile) and peak
    RSS, or ``None`` once the failure is recorded in ``scenario.errors``."""
    server_cpu_before = process_cpu_s(emulator.pid)
    try:
        outcome, rss = run_child(command, env)
    except (ContenderFailed, ValueError, IndexError) as error:
        scenario.errors[name] = str(error)
        log(f"{scenario.id}: {name} failed: {error}")
        return None
    outcome["server_cpu_s"] = round(process_cpu_s(emulator.pid) - server_cpu_before, 3)
    return outcome, rss


def log_run(scenario: Scenario, run_number: str, name: str, run: Run, size_bytes: int, verdict: str) -> None:
    outcome = run.detail
    log(
        f"{scenario.id} run {run_number} {name}: {run.elapsed_s:.2f} s, "
        f"{size_bytes / run.elapsed_s / MB:.1f} MB/s, peak RSS {run.peak_rss_bytes / MB:.0f} MB, "
        f"CPU client {outcome['client_cpu_s']:.1f} s server {outcome['server_cpu_s']:.1f} s, {verdict}"
    )


def _upload_command(name: str, scenario: Scenario, data: DataFile, emulator: Any, workdir: Path) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    if name in WHOLE_PROCESS_CONTENDERS:
        return whole_process_command(
            name, base_url=emulator.base_url, api_key=emulator.api_key, file=str(data.path),
            purpose=scenario.purpose, mime_type=scenario.mime_type, airflow_home=workdir / "airflow-home",
        )  # fmt: skip
    command = [
        sys.executable, "-m", "bench.perf.contenders", name,
        "--base-url", emulator.base_url, "--api-key", emulator.api_key,
        "--file", str(data.path), "--purpose", scenario.purpose, "--mime-type", scenario.mime_type,
    ]  # fmt: skip
    return command, {}


def alternating_rounds(scenario: Scenario, names: Iterable[str], runs: int) -> Iterator[tuple[int, str]]:
    """``(round_index, name)`` for ``runs`` rounds of the contenders in turn (A B A B ...), each
    given an empty run list first; a contender that has failed (in ``scenario.errors``) is skipped."""
    names = list(names)
    for name in names:
        scenario.runs[name] = []
    for round_index in range(runs):
        for name in names:
            if name not in scenario.errors:
                yield round_index, name


def run_upload_scenario(scenario: Scenario, data: DataFile, emulator: Any, runs: int, workdir: Path) -> None:
    """Alternate the contenders; check each upload's stored md5 (``md5-alone``: the md5 it computed).

    Whole-process contenders (:data:`~bench.perf.contenders.WHOLE_PROCESS_CONTENDERS`) are timed
    from process start to exit, and their CPU is the whole process's.
    """
    scenario.size_bytes = data.size
    (workdir / "airflow-home").mkdir(parents=True, exist_ok=True)
    active = []
    for name in scenario.contenders:
        reason = contender_available(name)
        if reason:
            scenario.errors[name] = reason
        else:
            active.append(name)
    for round_index, name in alternating_rounds(scenario, active, runs):
        command, extra_env = _upload_command(name, scenario, data, emulator, workdir)
        measured = measure_child(scenario, name, command, child_env(extra_env), emulator)
        if measured is None:
            continue
        outcome, rss = measured
        if name in WHOLE_PROCESS_CONTENDERS:
            printed = {key: outcome.pop(key) for key in list(outcome) if key in ("id", "bytes")}
            outcome.update(
                elapsed_s=outcome["process_wall_s"], call_cpu_s=outcome["client_cpu_s"],
                file_id=printed.get("id"), bytes=printed.get("bytes"),
            )  # fmt: skip
        # md5-alone uploads nothing: its own md5 must be the file's
        stored_md5 = emulator.file_md5(outcome["file_id"]) if "file_id" in outcome else outcome.get("md5")
        md5_ok = stored_md5 == data.md5 and outcome.get("bytes") in (None, data.size)
        run = Run(outcome["elapsed_s"], rss, md5_ok, outcome)
        scenario.runs[name].append(run)
        verdict = "md5 ok" if md5_ok else f"md5 MISMATCH ({stored_md5} != {data.md5})"
        log_run(scenario, f"{round_index + 1}/{runs}", name, run, data.size, verdict)
        emulator.reset()  # frees the stored bytes before the next run
    scenario.load_avg = [round(value, 2) for value in os.getloadavg()]


def run_validation_scenario(scenario: Scenario, data: DataFile, runs: int) -> None:
    """Validation MB/s in this process (nothing to upload; RSS is not a target here).

    The contenders come from ``bench.perf.validate``: ``run(path)`` validates once with every
    rule and the default limits (default settings: worker processes from three cores up),
    ``run(path, workers=1)`` the serial pass (one parsing core, the md5 on a thread),
    ``run(path, workers=2)`` two worker processes parsing while this one reads and hashes,
    ``json_loads_loop(path)`` is the plain baseline.
    """
    scenario.size_bytes = data.size
    try:
        from bench.perf.validate import json_loads_loop
        from bench.perf.validate import run as validate_once
    except ImportError as error:
        scenario.errors["ours-validate"] = f"bench.perf.validate is not available: {error}"
        return
    contenders: list[tuple[str, Callable[[], Any]]] = [
        ("ours-validate", lambda: validate_once(data.path)),
        ("ours-validate-serial", lambda: validate_once(data.path, workers=1)),
        ("ours-validate-2-workers", lambda: validate_once(data.path, workers=2)),
        ("json-loads-loop", lambda: json_loads_loop(data.path)),
    ]
    calls = dict(contenders)
    for round_index, name in alternating_rounds(scenario, calls, runs):
        call = calls[name]
        started = time.perf_counter()
        try:
            outcome = call()
        except Exception as error:  # a bench must report, not stop
            scenario.errors[name] = f"{type(error).__name__}: {error}"
            log(f"{scenario.id}: {name} failed: {error}")
            continue
        elapsed = time.perf_counter() - started
        valid = _validation_passed(outcome, data)
        scenario.runs[name].append(Run(elapsed, 0, valid, _validation_detail(outcome)))
        log(
            f"{scenario.id} run {round_index + 1}/{runs} {name}: {elapsed:.2f} s, "
            f"{data.size / elapsed / MB:.1f} MB/s, {'valid' if valid else 'NOT VALID'}"
        )
    scenario.load_avg = [round(value, 2) for value in os.getloadavg()]


def _validation_passed(outcome: Any, data: DataFile) -> bool:
    if isinstance(outcome, int):
        return outcome == data.lines
    report = getattr(outcome, "report", outcome)
    if isinstance(report, dict):
        return bool(report.get("valid", True)) and report.get("lines", data.lines) == data.lines
    return bool(getattr(report, "valid", False)) and getattr(report, "lines", None) == data.lines


def _validation_detail(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, int):
        return {"lines": outcome}
    if isinstance(outcome, dict):
        return {key: value for key, value in outcome.items() if isinstance(value, (int, float, str, bool))}
    report = getattr(outcome, "report", outcome)
    return {"lines": getattr(report, "lines", None), "valid": getattr(report, "valid", None)}


@contextlib.contextmanager
def emulator_for(profile: str, data_dir: Path) -> Iterator[Any]:
    from airflow_provider_files.emulator.testing import run_emulator

    options: dict[str, Any] = {}
    if profile == "wan":
        options = {"bandwidth_per_connection": WAN_BANDWIDTH_MBPS, "latency_ms": WAN_LATENCY_MS}
    with run_emulator(data_dir=data_dir, **options) as emulator:
        yield emulator
