"""``airflow-files demo``: run the whole Batch loop in real Airflow against the local emulator.

Steps: a private ``AIRFLOW_HOME`` with a SQLite metadata DB under ``./.demo/``, the emulator on a
free port with a processing delay and a short batch duration (so the waits are real), a sample
Batch JSONL file, the DAG file ``example_batch_loop.py`` copied from the package into a dags
folder of its own (so an installed wheel is all the demo needs), ``airflow db migrate``,
``airflow dags test example_batch_loop``: upload in shards, one batch per shard, results
downloaded and accounted for. Then the batch ids, request counts, token usage and where the
results are get printed, and everything the demo started is stopped. Exit code 0 on success.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_files.emulator.testing import EmulatorStartError, run_emulator

DEMO_DAG_ID = "example_batch_loop"
DEMO_DAG_PACKAGE = "airflow_provider_files.example_dags"
DEMO_DIR_NAME = ".demo"
DEMO_API_KEY = "sk-demo-not-a-real-key"
SAMPLE_REQUESTS = 2500
PROCESSING_DELAY_S = 1.0
BATCH_DURATION_S = 2.0
DAG_RUN_TIMEOUT_S = 300.0
SAMPLE_MODEL = "gpt-4o-mini"
# The summary task prints this marker before the loop's summary as JSON.
SUMMARY_MARKER = "LOOP_SUMMARY"
_SUMMARY_LINE = re.compile(rf"^.*?{SUMMARY_MARKER} (\{{.*\}})\s*$", re.MULTILINE)


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


def write_sample_requests(path: str | os.PathLike[str], count: int, *, model: str = SAMPLE_MODEL) -> Path:
    """Write ``count`` chat-completion requests as a Batch JSONL file at ``path``.

    :param path: the file to write (its folder is created).
    :param count: number of requests (lines).
    :param model: ``body.model`` of every request.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        for index in range(count):
            request = {
                "custom_id": f"request-{index:06d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": model,
                    "messages": [
                        {"role": "system", "content": "Label the support ticket with one word."},
                        {"role": "user", "content": f"Ticket {index}: my invoice shows the wrong amount."},
                    ],
                    "max_tokens": 5,
                },
            }
            handle.write(json.dumps(request, separators=(",", ":")) + "\n")
    return target


EXAMPLE_SOURCE_ENV_VAR = "AIRFLOW_FILES_EXAMPLE_JSONL"
EXAMPLE_RESULTS_ENV_VAR = "AIRFLOW_FILES_EXAMPLE_RESULTS"


EXAMPLE_DATA_FOLDER_NAME = "example_data"


def example_data_folder() -> Path:
    """The one folder the example DAGs write their sample inputs to, reused by every run:
    ``$AIRFLOW_HOME/example_data`` (``~/airflow/example_data`` without AIRFLOW_HOME)."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / EXAMPLE_DATA_FOLDER_NAME


def reuse_or_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``path``, written by ``write(temporary_path)`` only if it is missing; the temporary file is
    renamed into place, so runs that share the folder never see half a file."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def example_source(params: Mapping[str, Any] | None, default_requests: int) -> str:
    """The file an example DAG uploads: its ``source`` param, ``$AIRFLOW_FILES_EXAMPLE_JSONL``,
    or a sample of ``sample_requests`` (default ``default_requests``) requests, written once
    into :func:`example_data_folder` and reused by later runs."""
    params = params or {}
    chosen = params.get("source") or os.environ.get(EXAMPLE_SOURCE_ENV_VAR)
    if chosen:
        return str(chosen)
    count = int(params.get("sample_requests") or default_requests)
    target = example_data_folder() / f"requests-{count}.jsonl"
    return str(reuse_or_write(target, lambda path: write_sample_requests(path, count)))


def example_destination(params: Mapping[str, Any] | None) -> str:
    """Where an example DAG writes results: its ``destination`` param, ``$AIRFLOW_FILES_EXAMPLE_RESULTS``,
    or a new temporary folder."""
    chosen = (params or {}).get("destination") or os.environ.get(EXAMPLE_RESULTS_ENV_VAR)
    if chosen:
        return str(chosen)
    return tempfile.mkdtemp(prefix="airflow-files-results-")


def _add_usage(total: dict[str, int], usage: Mapping[str, Any] | None) -> None:
    for key, value in (usage or {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def summarize_loop(
    batches: list[Mapping[str, Any]], results: list[Mapping[str, Any]], destination: str
) -> dict[str, Any]:
    """The whole loop in one JSON-safe dict: per batch its id, status, request counts, outcome and
    files; the totals; and one printable line per batch (``lines``).

    :param batches: the batch dicts of the mapped ``BatchOperator``.
    :param results: the summaries of the mapped ``DownloadBatchResultsOperator``.
    :param destination: the results folder.
    """
    by_batch = {str(r.get("batch_id")): r for r in results}
    rows: list[dict[str, Any]] = []
    usage: dict[str, int] = {}
    lines: list[str] = []
    for batch in batches:
        result = by_batch.get(str(batch["id"]), {})
        counts = batch.get("request_counts") or {}
        _add_usage(usage, result.get("usage"))
        row = {
            "id": batch["id"],
            "status": batch.get("status"),
            "input_file_id": batch.get("input_file_id"),
            "request_counts": counts,
            "succeeded": result.get("succeeded"),
            "failed": result.get("failed"),
            "missing": result.get("missing_count"),
            "usage": result.get("usage"),
            "files": result.get("files", {}),
        }
        rows.append(row)
        lines.append(
            f"BATCH {row['id']} {row['status']}: {counts.get('total', '?')} requests, "
            f"{row['succeeded']} succeeded, {row['failed']} failed, {row['missing']} missing; "
            f"tokens {(row['usage'] or {}).get('total_tokens', '?')}; files {sorted(row['files'].values())}"
        )
    return {
        "batches": rows,
        "batch_ids": [row["id"] for row in rows],
        "requests": sum(int((row["request_counts"] or {}).get("total") or 0) for row in rows),
        "succeeded": sum(int(row["succeeded"] or 0) for row in rows),
        "failed": sum(int(row["failed"] or 0) for row in rows),
        "usage": usage,
        "destination": destination,
        "lines": lines,
    }


def write_loop_summary(summary: Mapping[str, Any], destination: str, name: str) -> str:
    """Write ``summary`` (without its ``lines``) as JSON to ``destination/name``; returns where."""
    from airflow_provider_files.operators._checkpoint import as_storage_path

    target = as_storage_path(destination) / name
    data = {key: value for key, value in summary.items() if key != "lines"}
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return str(target)


# flag, type, default, help: the options of ``airflow-files demo`` in the order --help shows them
_OPTIONS: tuple[tuple[str, Callable[[str], object], object, str], ...] = (
    (
        "--dir",
        Path,
        None,
        f"working folder for AIRFLOW_HOME, the emulator, the results and logs (default ./{DEMO_DIR_NAME})",
    ),
    (
        "--requests",
        int,
        SAMPLE_REQUESTS,
        f"requests in the sample file ({SAMPLE_REQUESTS}; one batch per 1000)",
    ),
    (
        "--processing-delay-s",
        float,
        PROCESSING_DELAY_S,
        f"how long the emulator keeps a new file 'uploaded' before 'processed' ({PROCESSING_DELAY_S:g})",
    ),
    (
        "--batch-duration-s",
        float,
        BATCH_DURATION_S,
        f"how long the emulator takes to run a batch ({BATCH_DURATION_S:g})",
    ),
    (
        "--dags-folder",
        Path,
        None,
        f"folder holding {DEMO_DAG_ID}.py (default: the one shipped in the package)",
    ),
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    for flag, kind, default, help_text in _OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=help_text)
    parser.add_argument("--verbose", action="store_true", help="show Airflow's whole output")


def find_dags_folder(explicit: Path | None, workdir: Path) -> Path:
    """``explicit`` (it must hold the DAG file), or ``workdir/dags`` with the packaged DAG file copied in."""
    file_name = f"{DEMO_DAG_ID}.py"
    if explicit is not None:
        if not (explicit / file_name).is_file():
            raise DemoError(f"cannot find {file_name} in {explicit}")
        return explicit.resolve()
    packaged = importlib.resources.files(DEMO_DAG_PACKAGE) / file_name
    if not packaged.is_file():
        raise DemoError(f"the package holds no {file_name}: reinstall airflow-provider-files")
    folder = workdir / "dags"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / file_name).write_bytes(packaged.read_bytes())
    return folder.resolve()


def _airflow_command() -> list[str]:
    script = Path(sys.executable).with_name("airflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow"]


def demo_environment(
    home: Path, dags_folder: Path, base_url: str, source: Path, results: Path | None = None
) -> dict[str, str]:
    """The environment of the Airflow commands: private home, SQLite DB, env-var connection."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER": str(home / "upload_checkpoints"),
            "AIRFLOW_CONN_OPENAI_FILES_DEFAULT": json.dumps(
                {"conn_type": "openai_files", "host": base_url, "password": DEMO_API_KEY}
            ),
            EXAMPLE_SOURCE_ENV_VAR: str(source),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if results is not None:
        env[EXAMPLE_RESULTS_ENV_VAR] = str(results)
    return env


def _run_step(title: str, command: list[str], env: Mapping[str, str], log_path: Path, verbose: bool) -> str:
    print(f"--> {title}", flush=True)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=DAG_RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(f"{title} did not finish within {DAG_RUN_TIMEOUT_S:g} s") from None
    output = completed.stdout.decode("utf-8", errors="replace")
    log_path.write_text(output, encoding="utf-8")
    if verbose:
        print(output)
    if completed.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise DemoError(
            f"{title} failed (exit code {completed.returncode}); full output in {log_path}:\n{tail}"
        )
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)
    return output


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    workdir = (args.dir or Path.cwd() / DEMO_DIR_NAME).resolve()
    try:
        if args.requests < 1:
            raise DemoError(f"--requests must be at least 1, got {args.requests}")
        dags_folder = find_dags_folder(args.dags_folder, workdir)
        home = workdir / "airflow"
        results = workdir / "results"
        # A fresh home each time: the demo must not depend on what an earlier run left behind.
        for leftover in (home, workdir / "emulator-data", results):
            shutil.rmtree(leftover, ignore_errors=True)
        home.mkdir(parents=True)
        source = write_sample_requests(workdir / "requests.jsonl", args.requests)
        print(f"--> wrote {args.requests} sample requests to {source} ({source.stat().st_size:,} bytes)")
        with run_emulator(
            workdir / "emulator-data",
            processing_delay_s=args.processing_delay_s,
            batch_duration_s=args.batch_duration_s,
        ) as emulator:
            print(
                f"--> emulator listening at {emulator.base_url} (processing delay "
                f"{args.processing_delay_s:g} s, batch duration {args.batch_duration_s:g} s)"
            )
            env = demo_environment(home, dags_folder, emulator.base_url, source, results)
            airflow = _airflow_command()
            _run_step(
                "airflow db migrate",
                [*airflow, "db", "migrate"],
                env,
                workdir / "db-migrate.log",
                args.verbose,
            )
            output = _run_step(
                f"airflow dags test {DEMO_DAG_ID}",
                [*airflow, "dags", "test", DEMO_DAG_ID],
                env,
                workdir / "dags-test.log",
                args.verbose,
            )
        summary = _loop_summary(output, workdir / "dags-test.log", args.requests)
    except (DemoError, EmulatorStartError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"--> the DAG validated and uploaded {summary['requests']} requests in "
        f"{len(summary['batch_ids'])} shard(s), ran one batch per shard and downloaded the results:"
    )
    for row in summary["batches"]:
        counts = row["request_counts"]
        print(
            f"    {row['id']}  {row['status']}  {counts.get('total')} requests: {row['succeeded']} "
            f"succeeded, {row['failed']} failed, tokens {(row['usage'] or {}).get('total_tokens')}"
        )
        for path in sorted(row["files"].values()):
            print(f"        {path}")
    print(f"    tokens in all: {summary['usage']}")
    print(f"--> results and loop_summary.json in {summary['destination']}")
    print(f"demo finished in {time.monotonic() - started:.1f} s (logs in {workdir})")
    return 0


def _loop_summary(output: str, log_path: Path, requests: int) -> dict[str, Any]:
    """The summary the DAG's last task printed, checked against what the demo asked for."""
    found = _SUMMARY_LINE.findall(output)
    if not found:
        raise DemoError(f"the DAG run succeeded but printed no {SUMMARY_MARKER}; see {log_path}")
    summary: dict[str, Any] = json.loads(found[-1])
    if summary.get("requests") != requests or summary.get("succeeded") != requests:
        raise DemoError(
            f"the loop accounted for {summary.get('succeeded')} of {requests} requests "
            f"({summary.get('requests')} in the batches); see {log_path}"
        )
    return summary
