"""``make reliability``: run every reliability scenario, print a table, write RELIABILITY.md.

Scenarios (each module's docstring defines its figures precisely):

* faults (:mod:`bench.reliability.faults`): uploads under 429/5xx/drops/latency and lost responses;
* crashes (:mod:`bench.reliability.crash`): SIGKILL at random points, then resume;
* bad input (:mod:`bench.reliability.badinput`): the corpus of ``tests/reliability/cases.py``;
* secrets (:mod:`bench.reliability.secrets`): a full DAG run searched for credentials;
* sensor (:mod:`bench.reliability.sensor`): the deferrable trigger under faults and 404s;
* batches (:mod:`bench.reliability.batches`): create once, wait, collect, under faults and kills;
* hardening (:mod:`bench.reliability.hardening`): the cases of issue 12, run through their tests.

``python -m bench.reliability [--quick] [--only faults,crashes] [--output RELIABILITY.md]``;
exits 1 when any target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import REPO_ROOT
from bench.reliability.common import Metric, ScenarioResult

SCENARIOS = ("faults", "crashes", "bad input", "secrets", "sensor", "batches", "hardening")


def _runners(quick: bool) -> dict[str, Callable[[Path], ScenarioResult]]:
    from bench.reliability.badinput import run_badinput_scenario
    from bench.reliability.batches import run_batches_scenario
    from bench.reliability.crash import run_crash_scenario
    from bench.reliability.faults import run_faults_scenario
    from bench.reliability.hardening import run_hardening_scenario
    from bench.reliability.secrets import run_secrets_scenario
    from bench.reliability.sensor import run_sensor_scenario

    return {
        "faults": lambda d: (
            run_faults_scenario(d, uploads=30, lost_response_uploads=15) if quick else run_faults_scenario(d)
        ),
        "crashes": lambda d: run_crash_scenario(d, runs=4 if quick else 24),
        "bad input": lambda d: run_badinput_scenario(d, quick_only=quick),
        "secrets": run_secrets_scenario,
        "sensor": run_sensor_scenario,
        "batches": lambda d: run_batches_scenario(d, loops=6 if quick else 30),
        "hardening": run_hardening_scenario,
    }


def _ok_text(metric: Metric) -> str:
    return "" if metric.ok is None else ("ok" if metric.ok else "MISSED")


def table(results: list[ScenarioResult]) -> str:
    rows = [("scenario", "figure", "value", "target", "")]
    for result in results:
        for metric in result.metrics:
            rows.append(
                (result.scenario, metric.name, str(metric.value), metric.target or "", _ok_text(metric))
            )
        if not result.metrics:
            rows.append(
                (result.scenario, "scenario did not run", "; ".join(result.failures)[:80], "", "MISSED")
            )
    widths = [min(max(len(row[i]) for row in rows), 70) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(widths[i])[: max(widths[i], 1)] if i < 4 else cell for i, cell in enumerate(row)
            )
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(results: list[ScenarioResult], *, quick: bool, elapsed_s: float) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    verdict = "all targets met" if all(r.passed for r in results) else "SOME TARGETS MISSED"
    out = [
        "# Reliability",
        "",
        f"Figures from `make reliability` (`python -m bench.reliability{' --quick' if quick else ''}`), "
        f"run on {now} ({machine}); {elapsed_s:.0f} s in all: **{verdict}**.",
        "Everything runs against the local emulator over real HTTP on 127.0.0.1; its own bookkeeping "
        "(stored bytes, md5s, uploads, request log) is the source of every count, not the client's word.",
        "A fast subset of each scenario runs in `make test` (`tests/reliability/`).",
        "",
        "| scenario | figure | value | target | |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for metric in result.metrics:
            out.append(
                f"| {result.scenario} | {_md_cell(metric.name)} | {_md_cell(metric.value)} | "
                f"{_md_cell(metric.target or '')} | {_ok_text(metric)} |"
            )
    for result in results:
        out += [
            "",
            f"## {result.scenario.capitalize()}",
            "",
            f"{result.title} ({result.elapsed_s:.0f} s).",
            "",
        ]
        module = {
            "faults": "bench/reliability/faults.py",
            "crashes": "bench/reliability/crash.py",
            "bad input": "bench/reliability/badinput.py",
            "secrets": "bench/reliability/secrets.py",
            "sensor": "bench/reliability/sensor.py",
            "batches": "bench/reliability/batches.py",
            "hardening": "bench/reliability/hardening.py",
        }[result.scenario]
        out.append(f"Definitions of the figures: the docstring of `{module}`.")
        out.append("")
        out += [note if note.startswith(("-", "Cases")) else f"- {note}" for note in result.notes]
        if result.failures:
            out += ["", "Failures:", ""] + [
                f"- {_md_cell(failure)[:500]}" for failure in result.failures[:30]
            ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run of each scenario (about a minute)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--output", type=Path, default=None, help="where to write the report (default RELIABILITY.md)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep scratch files here")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    output = args.output or (REPO_ROOT / "RELIABILITY.md" if not args.quick and not args.only else None)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="airflow-files-reliability-"))
    # Operators run in this process: give Airflow a private home before it is first imported.
    home = workdir / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    runners = _runners(args.quick)
    results: list[ScenarioResult] = []
    started = time.monotonic()
    for name in chosen:
        print(f"== {name}", flush=True)
        try:
            result = runners[name](workdir / name.replace(" ", "-"))
        except Exception as exc:
            result = ScenarioResult(name, "crashed")
            result.failures.append(f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
        print(f"   {name}: {'passed' if result.passed else 'MISSED'} in {result.elapsed_s:.0f}s", flush=True)
        results.append(result)
    elapsed_s = time.monotonic() - started
    print()
    print(table(results))
    failures = [failure for result in results for failure in result.failures]
    if failures:
        print("\nFailures:")
        for failure in failures[:50]:
            print(f"  - {failure[:400]}")
    if output is not None:
        output.write_text(markdown(results, quick=args.quick, elapsed_s=elapsed_s), encoding="utf-8")
        print(f"\nwrote {output}")
    print(
        f"\nreliability: {'all targets met' if not failures and all(r.passed for r in results) else 'TARGETS MISSED'} ({elapsed_s:.0f}s)"
    )
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
