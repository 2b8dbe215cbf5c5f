"""``make bench``: our uploads against the peers, on this machine, against the targets of DESIGN.md.

``python -m bench.run [--quick] [--runs 3] [--sizes chunked=1GiB,large=4GiB,...] [--profiles loopback,wan]``

What it does, in order:

1. installs the peers it compares against if they are missing (``apache-airflow-providers-openai``;
   the ``openai`` SDK is a dev dependency already) and matplotlib for the chart;
2. writes the inputs once (real bytes, see :mod:`bench.datagen`) into a temporary directory;
3. times JSONL validation in this process (``bench.bench_validate.run``) against a plain
   ``json.loads`` loop;
4. for each network profile starts one emulator process (loopback: no limits; WAN: each TCP
   connection capped at 25 MB/s, 40 ms added to every response) and runs every contender as its
   own child process, alternating contenders run by run; each upload's md5, as stored by the
   emulator, must equal the source's, or the figure is marked invalid and the exit code is 1;
5. writes ``bench/results/latest.{md,json,png}``.

MB is 10**6 bytes everywhere (throughput and RSS); MiB/GiB are binary.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import datagen
from bench.datagen import GIB, MIB, DataFile

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
MB = 1_000_000

# Installed into the running interpreter's environment when missing (pinned: the figures name them).
PEER_REQUIREMENTS = ["apache-airflow-providers-openai==2.2.0"]
CHART_REQUIREMENTS = ["matplotlib==3.11.2"]

WAN_BANDWIDTH_MBPS = 25.0
WAN_LATENCY_MS = 40.0
CHILD_TIMEOUT_S = 900.0

DEFAULT_SIZES = {
    "chunked": 1 * GIB,  # chunked upload, loopback and WAN
    "large": 4 * GIB,  # chunked upload, loopback, for peak RSS at 4 GiB
    "single": 400 * MB,  # one POST /files request
    "validate": 200 * MB,  # JSONL validation
    "jsonl": 1 * GIB,  # validate + upload, WAN
}
QUICK_SIZES = {
    "chunked": 256 * MIB,
    "large": 512 * MIB,
    "single": 100 * MB,
    "validate": 50 * MB,
    "jsonl": 256 * MIB,
}

UNITS = {"b": 1, "kb": 1000, "mb": MB, "gb": 1000 * MB, "kib": 1024, "mib": MIB, "gib": GIB}


def parse_size(text: str) -> int:
    """``4GiB``, ``400MB``, ``512MiB``, ``1000`` (bytes)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or (match.group(2).lower() not in UNITS and match.group(2)):
        raise argparse.ArgumentTypeError(f"cannot read size {text!r}; use e.g. 1GiB, 400MB, 512MiB")
    return int(float(match.group(1)) * UNITS[match.group(2).lower() or "b"])


def parse_sizes(text: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        if key not in DEFAULT_SIZES or not value:
            raise argparse.ArgumentTypeError(
                f"--sizes item {item!r}: expected KEY=SIZE with KEY one of {', '.join(DEFAULT_SIZES)}"
            )
        sizes[key] = parse_size(value)
    return sizes


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- peers ---------------------------------------------------------------------------------------


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def ensure_installed(requirements: list[str], probe_module: str) -> bool:
    """Install ``requirements`` into this interpreter's environment if ``probe_module`` is missing."""
    if _installed(probe_module):
        return True
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    command = (
        [uv, "pip", "install", "-q", "--python", sys.executable, *requirements]
        if uv
        else [sys.executable, "-m", "pip", "install", "-q", *requirements]
    )
    log(f"installing {' '.join(requirements)}")
    completed = subprocess.run(command, check=False)
    importlib.invalidate_caches()
    if completed.returncode != 0 or not _installed(probe_module):
        log(f"could not install {' '.join(requirements)}; the figures that need it are left out")
        return False
    return True


# -- machine -------------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_bytes = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram_bytes = int(line.split()[1]) * 1024
                break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_bytes / GIB, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "airflow": _version("apache-airflow"),
        "airflow-provider-files": _version("airflow-provider-files"),
        "openai": _version("openai"),
        "apache-airflow-providers-openai": _version("apache-airflow-providers-openai"),
        "httpx": _version("httpx"),
        "orjson": _version("orjson"),
        "load_avg_start": [round(value, 2) for value in os.getloadavg()],
    }


# -- measuring one child process ----------------------------------------------------------------


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
                raise ContenderFailed(f"{command[3]} did not finish in {CHILD_TIMEOUT_S:.0f} s") from None
        if completed.returncode != 0:
            tail = stderr_path.read_text(errors="replace")[-3000:]
            raise ContenderFailed(f"{command[3]} exited {completed.returncode}:\n{tail}")
        outcome = json.loads(completed.stdout.decode().strip().splitlines()[-1])
        rss_text = rss_file.read_text().split() if rss_file.exists() else []
    # CPU of the whole child process, interpreter start and imports included.
    outcome["client_cpu_s"] = round(_children_cpu_s() - cpu_before, 3)
    if rss_text and rss_text[-1].isdigit():
        return outcome, int(rss_text[-1]) * 1024  # GNU time reports KiB
    return outcome, int(outcome.get("vm_hwm_bytes") or 0)


# -- scenarios -----------------------------------------------------------------------------------


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
        "airflow-openai-hook-single": "airflow.providers.openai",
    }.get(name)
    if needs and not _installed(needs):
        return f"{needs} is not installed"
    return None


def run_upload_scenario(scenario: Scenario, data: DataFile, emulator: Any, runs: int) -> None:
    scenario.size_bytes = data.size
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    active = []
    for name in scenario.contenders:
        reason = contender_available(name)
        if reason:
            scenario.errors[name] = reason
        else:
            active.append(name)
            scenario.runs[name] = []
    for round_index in range(runs):
        for name in active:
            if name in scenario.errors:
                continue
            command = [
                sys.executable, "-m", "bench.contenders", name,
                "--base-url", emulator.base_url, "--api-key", emulator.api_key,
                "--file", str(data.path), "--purpose", scenario.purpose, "--mime-type", scenario.mime_type,
            ]  # fmt: skip
            server_cpu_before = process_cpu_s(emulator.pid)
            try:
                outcome, rss = run_child(command, env)
            except (ContenderFailed, ValueError, IndexError) as error:
                scenario.errors[name] = str(error)
                log(f"{scenario.id}: {name} failed: {error}")
                continue
            outcome["server_cpu_s"] = round(process_cpu_s(emulator.pid) - server_cpu_before, 3)
            stored_md5 = emulator.file_md5(outcome["file_id"])
            md5_ok = stored_md5 == data.md5 and outcome.get("bytes") in (None, data.size)
            scenario.runs[name].append(Run(outcome["elapsed_s"], rss, md5_ok, outcome))
            log(
                f"{scenario.id} run {round_index + 1}/{runs} {name}: {outcome['elapsed_s']:.2f} s, "
                f"{data.size / outcome['elapsed_s'] / MB:.1f} MB/s, peak RSS {rss / MB:.0f} MB, "
                f"CPU client {outcome['client_cpu_s']:.1f} s server {outcome['server_cpu_s']:.1f} s, "
                f"md5 {'ok' if md5_ok else f'MISMATCH ({stored_md5} != {data.md5})'}"
            )
            emulator.reset()  # frees the stored bytes before the next run
    scenario.load_avg = [round(value, 2) for value in os.getloadavg()]


def run_validation_scenario(scenario: Scenario, data: DataFile, runs: int) -> None:
    """Validation MB/s in this process (nothing to upload; RSS is not a target here).

    Both contenders come from ``bench.bench_validate``: ``run(path)`` validates once with every
    rule and the default limits, ``json_loads_loop(path)`` is the plain baseline.
    """
    scenario.size_bytes = data.size
    try:
        from bench.bench_validate import json_loads_loop
        from bench.bench_validate import run as validate_once
    except ImportError as error:
        scenario.errors["ours-validate"] = f"bench.bench_validate is not available: {error}"
        return
    contenders: list[tuple[str, Callable[[], Any]]] = [
        ("ours-validate", lambda: validate_once(data.path)),
        ("json-loads-loop", lambda: json_loads_loop(data.path)),
    ]
    for name, _ in contenders:
        scenario.runs[name] = []
    for round_index in range(runs):
        for name, call in contenders:
            if name in scenario.errors:
                continue
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


# -- statistics and figures ----------------------------------------------------------------------


@dataclass
class Summary:
    runs: int
    median_s: float
    min_s: float
    max_s: float
    median_mbps: float
    min_mbps: float
    max_mbps: float
    median_rss_mb: float
    max_rss_mb: float
    md5_ok: bool


def summarise(runs: list[Run], size_bytes: int) -> Summary | None:
    if not runs:
        return None
    times = [run.elapsed_s for run in runs]
    rss = [run.peak_rss_bytes / MB for run in runs]
    return Summary(
        runs=len(runs),
        median_s=statistics.median(times),
        min_s=min(times),
        max_s=max(times),
        median_mbps=size_bytes / statistics.median(times) / MB,
        min_mbps=size_bytes / max(times) / MB,
        max_mbps=size_bytes / min(times) / MB,
        median_rss_mb=statistics.median(rss),
        max_rss_mb=max(rss),
        md5_ok=all(run.md5_ok for run in runs),
    )


@dataclass
class Figure:
    """One row of the results table."""

    what: str
    ours: str
    peer: str
    ratio: str
    target: str
    met: str
    ours_value: float | None = None
    peer_value: float | None = None


def _range(summary: Summary, unit: str = "MB/s") -> str:
    if unit == "MB/s":
        return f"{summary.median_mbps:.0f} MB/s ({summary.median_s:.1f} s; {summary.min_mbps:.0f}-{summary.max_mbps:.0f})"
    return f"{summary.median_s:.2f} s ({summary.min_s:.2f}-{summary.max_s:.2f})"


def _met(ok: bool | None, valid: bool = True) -> str:
    if not valid:
        return "INVALID (md5 mismatch)"
    if ok is None:
        return "not measured"
    return "met" if ok else "not met"


def compute_figures(scenarios: dict[str, Scenario]) -> list[Figure]:
    figures: list[Figure] = []

    def summary(scenario_id: str, contender: str) -> Summary | None:
        scenario = scenarios.get(scenario_id)
        if scenario is None:
            return None
        return summarise(scenario.runs.get(contender, []), scenario.size_bytes)

    def size_label(scenario_id: str) -> str:
        return _size_label(scenarios[scenario_id].size_bytes)

    for scenario_id, label, target in (
        ("chunked-wan", "chunked upload, {size}, WAN (25 MB/s per connection, +40 ms)", 3.5),
        ("chunked-loopback", "chunked upload, {size}, loopback", 1.5),
        ("chunked-large-loopback", "chunked upload, {size}, loopback", None),
    ):
        ours, sdk = summary(scenario_id, "ours-chunked"), summary(scenario_id, "sdk-chunked")
        if scenario_id not in scenarios:
            continue
        ratio = sdk.median_s / ours.median_s if ours and sdk else None
        figures.append(
            Figure(
                what=label.format(size=size_label(scenario_id)) + " vs openai SDK upload_file_chunked",
                ours=_range(ours) if ours else "failed",
                peer=_range(sdk) if sdk else "failed",
                ratio=f"{ratio:.2f}x faster" if ratio else "-",
                target=f">= {target}x faster" if target else "(no target)",
                met=_met(ratio >= target if ratio and target else None, _valid(ours, sdk))
                if target
                else ("-" if _valid(ours, sdk) else _met(None, False)),
                ours_value=ratio,
            )
        )
        no_md5 = summary(scenario_id, "ours-chunked-no-md5")
        if no_md5 and sdk:
            no_md5_ratio = sdk.median_s / no_md5.median_s
            figures.append(
                Figure(
                    what=label.format(size=size_label(scenario_id))
                    + " vs openai SDK, ours without md5 (send_md5=False; the SDK sends none)",
                    ours=_range(no_md5),
                    peer=_range(sdk),
                    ratio=f"{no_md5_ratio:.2f}x faster",
                    target="(informative)",
                    met="-" if _valid(no_md5, sdk) else _met(None, False),
                    ours_value=no_md5_ratio,
                )
            )

    large_ours, large_sdk = (
        summary("chunked-large-loopback", "ours-chunked"),
        summary("chunked-large-loopback", "sdk-chunked"),
    )
    small_ours, small_sdk = (
        summary("chunked-loopback", "ours-chunked"),
        summary("chunked-loopback", "sdk-chunked"),
    )
    if large_ours:
        figures.append(
            Figure(
                what=f"peak RSS of the uploading process, {size_label('chunked-large-loopback')} chunked upload",
                ours=f"{large_ours.median_rss_mb:.0f} MB (max {large_ours.max_rss_mb:.0f})",
                peer=f"{large_sdk.median_rss_mb:.0f} MB (max {large_sdk.max_rss_mb:.0f})"
                if large_sdk
                else "-",
                ratio=f"{large_sdk.median_rss_mb / large_ours.median_rss_mb:.1f}x less" if large_sdk else "-",
                target="<= 150 MB",
                met=_met(large_ours.max_rss_mb <= 150, large_ours.md5_ok),
                ours_value=large_ours.max_rss_mb,
            )
        )
    if large_ours and small_ours:
        change = large_ours.median_rss_mb / small_ours.median_rss_mb - 1
        peer_change = (
            f"{small_sdk.median_rss_mb:.0f} -> {large_sdk.median_rss_mb:.0f} MB "
            f"({(large_sdk.median_rss_mb / small_sdk.median_rss_mb - 1) * 100:+.0f}%)"
            if small_sdk and large_sdk
            else "-"
        )
        figures.append(
            Figure(
                what=f"peak RSS, {size_label('chunked-loopback')} vs {size_label('chunked-large-loopback')}",
                ours=f"{small_ours.median_rss_mb:.0f} -> {large_ours.median_rss_mb:.0f} MB ({change * 100:+.1f}%)",
                peer=peer_change,
                ratio="-",
                target="within +-10%",
                met=_met(abs(change) <= 0.10),
                ours_value=change,
            )
        )

    if "single-loopback" in scenarios:
        ours = summary("single-loopback", "ours-hook-single")
        for peer_name, peer_label in (
            ("sdk-single", "openai SDK files.create"),
            ("airflow-openai-hook-single", "apache-airflow-providers-openai OpenAIHook.upload_file"),
        ):
            peer = summary("single-loopback", peer_name)
            error = scenarios["single-loopback"].errors.get(peer_name)
            ratio = peer.median_s / ours.median_s if ours and peer else None
            figures.append(
                Figure(
                    what=f"single-request upload, {size_label('single-loopback')}, loopback: FilesHook.upload_file vs {peer_label}",
                    ours=_range(ours) if ours else "failed",
                    peer=_range(peer) if peer else (error or "failed").splitlines()[0],
                    ratio=f"{ratio:.2f}x faster" if ratio else "-",
                    target="(no target)",
                    met="-" if _valid(ours, peer) else _met(None, False),
                    ours_value=ratio,
                )
            )

    if "validate" in scenarios:
        ours, peer = summary("validate", "ours-validate"), summary("validate", "json-loads-loop")
        figures.append(
            Figure(
                what=f"JSONL batch validation, {size_label('validate')}, all rules vs json.loads loop + set of ids",
                ours=_range(ours)
                if ours
                else (scenarios["validate"].errors.get("ours-validate") or "failed"),
                peer=_range(peer) if peer else "failed",
                ratio=f"{ours.median_mbps / peer.median_mbps:.2f}x faster" if ours and peer else "-",
                target=">= 350 MB/s",
                met=_met(ours.median_mbps >= 350 if ours else None, ours.md5_ok if ours else True),
                ours_value=ours.median_mbps if ours else None,
            )
        )

    if "validate-upload-wan" in scenarios:
        both, alone = (
            summary("validate-upload-wan", "ours-validate-upload"),
            summary("validate-upload-wan", "ours-chunked"),
        )
        ratio = both.median_s / alone.median_s if both and alone else None
        figures.append(
            Figure(
                what=f"validate + upload, {size_label('validate-upload-wan')} JSONL, WAN vs upload alone",
                ours=_range(both, "s") if both else "failed",
                peer=_range(alone, "s") if alone else "failed",
                ratio=f"{ratio:.2f}x the time" if ratio else "-",
                target="<= 1.1x the time",
                met=_met(ratio <= 1.1 if ratio else None, _valid(both, alone)),
                ours_value=ratio,
            )
        )
    return figures


def _valid(*summaries: Summary | None) -> bool:
    return all(summary.md5_ok for summary in summaries if summary is not None)


def _size_label(size: int) -> str:
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= MB:
        return f"{size / MB:.0f} MB"
    return f"{size} bytes"


# -- writing the results -------------------------------------------------------------------------


def write_results(
    output_dir: Path,
    machine: dict[str, Any],
    plan: dict[str, Any],
    scenarios: dict[str, Scenario],
    figures: list[Figure],
    *,
    chart: bool = True,
) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": output_dir / "latest.md",
        "json": output_dir / "latest.json",
        "png": output_dir / "latest.png",
    }
    payload = {
        "machine": machine,
        "plan": plan,
        "figures": [dataclasses.asdict(figure) for figure in figures],
        "scenarios": {
            scenario_id: {
                "title": scenario.title,
                "profile": scenario.profile,
                "size_bytes": scenario.size_bytes,
                "load_avg_after": scenario.load_avg,
                "errors": scenario.errors,
                "contenders": {
                    name: {
                        "summary": dataclasses.asdict(summary) if summary else None,
                        "runs": [dataclasses.asdict(run) for run in runs],
                    }
                    for name, runs in scenario.runs.items()
                    for summary in [summarise(runs, scenario.size_bytes)]
                },
            }
            for scenario_id, scenario in scenarios.items()
        },
    }
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n")
    paths["md"].write_text(render_markdown(machine, plan, scenarios, figures))
    if not chart or not draw_chart(paths["png"], scenarios):
        paths.pop("png")
    return paths


def render_markdown(
    machine: dict[str, Any], plan: dict[str, Any], scenarios: dict[str, Scenario], figures: list[Figure]
) -> str:
    out = ["# Benchmark results", ""]
    command = f"python -m bench.run {plan['argv']}".strip()
    out.append(f"Written by `make bench` (`{command}`) on {machine['date']}.")
    out.append(
        f"Each figure is the median of {plan['runs']} runs per contender, contenders alternating run by "
        "run; min-max across runs in parentheses. MB = 10^6 bytes. Every upload's md5 as stored by the "
        "emulator was checked against the source file."
    )
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    for key in (
        "cpu", "cores", "ram_gib", "os", "python", "airflow", "airflow-provider-files", "openai",
        "apache-airflow-providers-openai", "httpx", "orjson", "load_avg_start", "load_avg_end",
    ):  # fmt: skip
        if key in machine:
            value = machine[key]
            if isinstance(value, list):
                value = " / ".join(str(item) for item in value) + " (1/5/15 min)"
            out.append(f"| {key.replace('_', ' ')} | {value} |")
    out += ["", "## Figures against the targets of DESIGN.md", ""]
    out += ["| what | ours | peer | ratio | target | met? |", "|---|---|---|---|---|---|"]
    for figure in figures:
        out.append(
            f"| {figure.what} | {figure.ours} | {figure.peer} | {figure.ratio} | {figure.target} | **{figure.met}** |"
        )
    out += ["", "## Every contender", ""]
    out += [
        "| scenario | contender | runs | wall time s (min-max) | MB/s (min-max) | peak RSS MB (max) | md5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios.values():
        for name, runs in scenario.runs.items():
            summary = summarise(runs, scenario.size_bytes)
            if summary is None:
                continue
            rss = f"{summary.median_rss_mb:.0f} ({summary.max_rss_mb:.0f})" if summary.max_rss_mb else "-"
            out.append(
                f"| {scenario.title} | {name} | {summary.runs} | {summary.median_s:.2f} "
                f"({summary.min_s:.2f}-{summary.max_s:.2f}) | {summary.median_mbps:.0f} "
                f"({summary.min_mbps:.0f}-{summary.max_mbps:.0f}) | {rss} | "
                f"{'ok' if summary.md5_ok else 'MISMATCH'} |"
            )
        for name, error in scenario.errors.items():
            out.append(f"| {scenario.title} | {name} | 0 | failed: {error.splitlines()[0][:120]} | | | |")
    out += ["", "## What was run", ""]
    out += plan["notes"]
    loads = [f"{scenario.id} {scenario.load_avg[0]}" for scenario in scenarios.values() if scenario.load_avg]
    if loads:
        out.append("- Load average (1 min) after each scenario: " + ", ".join(loads) + ".")
    out.append("")
    return "\n".join(out)


CHART_COLOURS = {
    "ours-validate-upload": "#9467bd",
    "ours-chunked-no-md5": "#aec7e8",
    "ours": "#1f77b4",
    "sdk": "#ff7f0e",
    "json-loads": "#ff7f0e",
    "airflow-openai": "#2ca02c",
}


def _colour(name: str) -> str:
    for prefix, value in CHART_COLOURS.items():
        if name.startswith(prefix):
            return value
    return "#7f7f7f"


def draw_chart(path: Path, scenarios: dict[str, Scenario]) -> bool:
    """MB/s per scenario and contender, and peak RSS of the uploads; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed; no chart")
        return False
    groups = []
    for scenario in scenarios.values():
        bars = [
            (name, summary)
            for name, runs in scenario.runs.items()
            for summary in [summarise(runs, scenario.size_bytes)]
            if summary is not None
        ]
        if bars:
            groups.append((scenario, bars))
    if not groups:
        return False
    width = max(9.0, 1.25 * sum(len(bars) for _, bars in groups) + 2)
    figure, (speed_axis, rss_axis) = plt.subplots(
        2, 1, figsize=(width, 9), dpi=110, gridspec_kw={"height_ratios": [3, 2]}
    )
    positions: list[float] = []
    names: list[str] = []
    centres: list[tuple[float, str]] = []
    x = 0.0
    for scenario, bars in groups:
        start = x
        for name, summary in bars:
            low, high = summary.median_mbps - summary.min_mbps, summary.max_mbps - summary.median_mbps
            speed_axis.bar(x, summary.median_mbps, 0.8, color=_colour(name), yerr=[[low], [high]], capsize=3)
            speed_axis.text(
                x, summary.max_mbps, f"{summary.median_mbps:.0f}", ha="center", va="bottom", fontsize=8
            )
            if summary.max_rss_mb:
                rss_axis.bar(x, summary.median_rss_mb, 0.8, color=_colour(name))
                rss_axis.text(
                    x,
                    summary.median_rss_mb,
                    f"{summary.median_rss_mb:.0f}",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
            positions.append(x)
            names.append(name)
            x += 1
        centres.append(((start + x - 1) / 2, scenario.title))
        x += 0.8
    speed_axis.set_ylabel("MB/s (median; bars: min-max)")
    speed_axis.set_title("airflow-provider-files (blue) vs peers: throughput, higher is better")
    speed_axis.set_xticks([centre for centre, _ in centres], [title for _, title in centres], fontsize=8)
    speed_axis.grid(axis="y", alpha=0.3)
    rss_axis.set_ylabel("peak RSS, MB (median)")
    rss_axis.set_title("peak RSS of the uploading process, lower is better (target for ours: <= 150 MB)")
    rss_axis.axhline(150, color="red", linestyle="--", linewidth=1)
    rss_axis.set_xticks(positions, names, rotation=35, ha="right", fontsize=8)
    rss_axis.grid(axis="y", alpha=0.3)
    rss_axis.set_xlim(speed_axis.get_xlim())
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


# -- the plan ------------------------------------------------------------------------------------


def build_scenarios(sizes: dict[str, int], profiles: list[str], only: set[str] | None) -> list[Scenario]:
    all_scenarios = [
        Scenario("validate", f"validate {_size_label(sizes['validate'])} JSONL", "local", "validate", []),
        Scenario(
            "chunked-loopback",
            f"chunked {_size_label(sizes['chunked'])} loopback",
            "loopback",
            "chunked",
            ["ours-chunked", "sdk-chunked", "ours-chunked-no-md5"],
        ),
        Scenario(
            "chunked-large-loopback",
            f"chunked {_size_label(sizes['large'])} loopback",
            "loopback",
            "large",
            ["ours-chunked", "sdk-chunked"],
        ),
        Scenario(
            "single-loopback",
            f"single request {_size_label(sizes['single'])} loopback",
            "loopback",
            "single",
            ["ours-hook-single", "sdk-single", "airflow-openai-hook-single"],
        ),
        Scenario(
            "chunked-wan",
            f"chunked {_size_label(sizes['chunked'])} WAN",
            "wan",
            "chunked",
            ["ours-chunked", "sdk-chunked"],
        ),
        Scenario(
            "validate-upload-wan",
            f"validate+upload {_size_label(sizes['jsonl'])} JSONL WAN",
            "wan",
            "jsonl",
            ["ours-validate-upload", "ours-chunked"],
            purpose="batch",
            mime_type="application/jsonl",
        ),
    ]
    return [
        scenario
        for scenario in all_scenarios
        if (scenario.profile in profiles or scenario.profile == "local")
        and (only is None or scenario.id in only)
    ]


def make_inputs(workdir: Path, sizes: dict[str, int], needed: set[str]) -> dict[str, DataFile]:
    inputs: dict[str, DataFile] = {}
    for key, seed in (("chunked", 11), ("large", 12), ("single", 13)):
        if key in needed:
            started = time.perf_counter()
            inputs[key] = datagen.make_random_file(workdir / f"{key}.bin", sizes[key], seed=seed)
            log(f"wrote {key}.bin ({_size_label(sizes[key])}) in {time.perf_counter() - started:.1f} s")
    for key, seed in (("validate", 21), ("jsonl", 22)):
        if key in needed:
            started = time.perf_counter()
            inputs[key] = datagen.make_jsonl_file(workdir / f"{key}.jsonl", sizes[key], seed=seed)
            log(
                f"wrote {key}.jsonl ({inputs[key].size / MB:.0f} MB, {inputs[key].lines} lines) "
                f"in {time.perf_counter() - started:.1f} s"
            )
    return inputs


@contextlib.contextmanager
def emulator_for(profile: str, data_dir: Path) -> Iterator[Any]:
    from airflow_provider_files.emulator.testing import run_emulator

    options: dict[str, Any] = {}
    if profile == "wan":
        options = {"bandwidth_per_connection": WAN_BANDWIDTH_MBPS, "latency_ms": WAN_LATENCY_MS}
    with run_emulator(data_dir=data_dir, **options) as emulator:
        yield emulator


def plan_notes(sizes: dict[str, int], runs: int, scenarios: list[Scenario]) -> list[str]:
    notes = [
        f"- Runs per contender: {runs}, alternating contenders (A B A B ...). Wall time is the upload "
        "call inside the child process (interpreter start and imports excluded).",
        "- Each upload contender runs as its own child process; peak RSS is that process's maximum "
        "resident set size as reported by GNU `/usr/bin/time -f %M` (the child's own `VmHWM` where GNU "
        "time is missing), so it includes the interpreter and its imports.",
        "- Emulator: `airflow-files emulator` as a separate process on 127.0.0.1 (uvicorn), one per profile. "
        f"WAN profile: each TCP connection capped at {WAN_BANDWIDTH_MBPS:.0f} MB/s both ways, "
        f"{WAN_LATENCY_MS:.0f} ms added before every response. Loopback: no limits. Client and emulator "
        "share the 2 cores, so loopback figures are bounded by the emulator's own CPU use too.",
        "- Inputs are real files, written once per run (random 64 MiB block with a distinct header per "
        "block; JSONL lines of ~4 KB with unique custom_id values); they sit in the page cache.",
        "- ours-chunked: `ChunkedUploader(FilesClient(settings)).upload(path, ...)` with the engine's "
        "defaults (part size, concurrency, md5 computed and sent on complete, so the emulator verifies "
        "it); ours-chunked-no-md5: the same with `send_md5=False`; sdk-chunked: "
        "`OpenAI(...).uploads.upload_file_chunked(file=Path)` (sequential 64 MiB parts, no md5).",
        "- Single request: `FilesHook.upload_file(path)` vs `OpenAI(...).files.create(file=open(path))` vs "
        "`OpenAIHook.upload_file(path)` (apache-airflow-providers-openai), each through an Airflow "
        "connection from an `AIRFLOW_CONN_*` variable where it is a hook.",
        "- Validation: `bench.bench_validate.run(path)` (all rules, default limits) vs a `json.loads` loop "
        "adding each custom_id to a set, both in the driver process, file in page cache.",
        "- Validate + upload: `ensure_valid_batch_file` (size/line limits lifted: the 1 GiB file is above "
        "the API's 200 MB batch limit on purpose) then the engine upload, vs the engine upload alone, same file.",
        "- Sizes: " + ", ".join(f"{key}={_size_label(value)}" for key, value in sizes.items()) + ". "
        "The 4 GiB upload runs on loopback only (it is there for peak RSS; the SDK needs about 45 s per "
        "GiB on the WAN profile), the WAN figures use the 1 GiB file.",
        "- Scenarios: " + ", ".join(scenario.id for scenario in scenarios) + ".",
    ]
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="smaller files (for a first look); 1 run unless --runs"
    )
    parser.add_argument(
        "--sizes", type=parse_sizes, default={}, help="e.g. chunked=1GiB,large=4GiB,single=400MB"
    )
    parser.add_argument("--profiles", default="loopback,wan", help="loopback,wan (default both)")
    parser.add_argument("--only", default="", help="comma-separated scenario ids to run (default all)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="where latest.{md,json,png} go")
    parser.add_argument("--workdir", type=Path, default=None, help="where inputs and emulator data go")
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers")
    parser.add_argument("--no-chart", action="store_true", help="do not draw latest.png")
    args = parser.parse_args(argv)
    raw_argv = " ".join(sys.argv[1:] if argv is None else argv)

    sizes = dict(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    sizes.update(args.sizes)
    runs = args.runs if args.runs or not args.quick else 1
    if runs < 1:
        parser.error("--runs must be at least 1")
    profiles = [item.strip() for item in args.profiles.split(",") if item.strip()]
    if unknown := set(profiles) - {"loopback", "wan"}:
        parser.error(f"unknown profile(s) {', '.join(sorted(unknown))}")
    only = {item.strip() for item in args.only.split(",") if item.strip()} or None

    started = time.monotonic()
    if not args.no_install:
        ensure_installed(PEER_REQUIREMENTS, "airflow.providers.openai")
        ensure_installed(CHART_REQUIREMENTS, "matplotlib")
    machine = machine_info()
    scenarios = build_scenarios(sizes, profiles, only)
    needed = {scenario.input_key for scenario in scenarios}
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine['load_avg_start']}")

    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="airflow-files-bench-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        inputs = make_inputs(workdir, sizes, needed)
        for scenario in scenarios:
            if scenario.profile == "local":
                run_validation_scenario(scenario, inputs[scenario.input_key], runs)
        for profile in profiles:
            todo = [scenario for scenario in scenarios if scenario.profile == profile]
            if not todo:
                continue
            log(f"starting the emulator ({profile})")
            with emulator_for(profile, workdir / f"emulator-{profile}") as emulator:
                for scenario in todo:
                    run_upload_scenario(scenario, inputs[scenario.input_key], emulator, runs)
    machine["load_avg_end"] = [round(value, 2) for value in os.getloadavg()]
    machine["bench_minutes"] = round((time.monotonic() - started) / 60, 1)

    by_id = {scenario.id: scenario for scenario in scenarios}
    figures = compute_figures(by_id)
    plan = {
        "argv": raw_argv,
        "runs": runs,
        "sizes": sizes,
        "profiles": profiles,
        "notes": [*plan_notes(sizes, runs, scenarios), f"- Whole bench took {machine['bench_minutes']} min."],
    }
    paths = write_results(args.output, machine, plan, by_id, figures, chart=not args.no_chart)
    for figure in figures:
        log(
            f"{figure.what}: ours {figure.ours} | peer {figure.peer} | {figure.ratio} | {figure.target}: {figure.met}"
        )
    log("wrote " + ", ".join(str(path) for path in paths.values()))
    invalid = any(
        not run.md5_ok for scenario in scenarios for runs_ in scenario.runs.values() for run in runs_
    )
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
