"""``airflow-files demo``: run the example DAG end to end in real Airflow against the local emulator.

Steps: a private ``AIRFLOW_HOME`` with a SQLite metadata DB under ``./.demo/``, the emulator on a
free port with a processing delay (so the wait for "processed" is real), a sample Batch JSONL
file, ``airflow db migrate``, ``airflow dags test example_upload_jsonl``; then the file ids the
DAG handed off are printed and everything the demo started is stopped. Exit code 0 on success.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_files.emulator.testing import EmulatorStartError, run_emulator

DEMO_DAG_ID = "example_upload_jsonl"
DEMO_DIR_NAME = ".demo"
DEMO_API_KEY = "sk-demo-not-a-real-key"
SAMPLE_REQUESTS = 1000
PROCESSING_DELAY_S = 2.0
DAG_RUN_TIMEOUT_S = 300.0
SAMPLE_MODEL = "gpt-4o-mini"
# The hand-off task prints this marker before each ready file id.
READY_MARKER = "READY_FILE_ID"
_READY_LINE = re.compile(rf"{READY_MARKER} (\S+)")


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


def example_source(params: Mapping[str, Any] | None, default_requests: int) -> str:
    """The file an example DAG uploads: its ``source`` param, ``$AIRFLOW_FILES_EXAMPLE_JSONL``,
    or a sample of ``sample_requests`` (default ``default_requests``) requests written now."""
    params = params or {}
    chosen = params.get("source") or os.environ.get(EXAMPLE_SOURCE_ENV_VAR)
    if chosen:
        return str(chosen)
    folder = Path(tempfile.mkdtemp(prefix="airflow-files-example-"))
    count = int(params.get("sample_requests") or default_requests)
    return str(write_sample_requests(folder / "requests.jsonl", count))


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"working folder for AIRFLOW_HOME, the emulator and logs (default ./{DEMO_DIR_NAME})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=SAMPLE_REQUESTS,
        help=f"requests in the sample file ({SAMPLE_REQUESTS})",
    )
    parser.add_argument(
        "--processing-delay-s",
        type=float,
        default=PROCESSING_DELAY_S,
        help=f"how long the emulator keeps a new file 'uploaded' before 'processed' ({PROCESSING_DELAY_S:g})",
    )
    parser.add_argument(
        "--dags-folder",
        type=Path,
        default=None,
        help="folder holding example_upload_jsonl.py (default: the repo's)",
    )
    parser.add_argument("--verbose", action="store_true", help="show Airflow's whole output")


def find_dags_folder(explicit: Path | None = None) -> Path:
    """The repository's ``example_dags/`` (next to the package), or ``explicit``."""
    candidates = [explicit] if explicit else [Path(__file__).resolve().parent.parent / "example_dags"]
    for folder in candidates:
        if folder is not None and (folder / f"{DEMO_DAG_ID}.py").is_file():
            return folder.resolve()
    raise DemoError(
        f"cannot find {DEMO_DAG_ID}.py in {candidates[0]}: run the demo from a clone of the "
        "repository (make demo), or pass --dags-folder"
    )


def _airflow_command() -> list[str]:
    script = Path(sys.executable).with_name("airflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow"]


def demo_environment(home: Path, dags_folder: Path, base_url: str, source: Path) -> dict[str, str]:
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
        dags_folder = find_dags_folder(args.dags_folder)
        home = workdir / "airflow"
        # A fresh home each time: the demo must not depend on what an earlier run left behind.
        for leftover in (home, workdir / "emulator-data"):
            shutil.rmtree(leftover, ignore_errors=True)
        home.mkdir(parents=True)
        source = write_sample_requests(workdir / "requests.jsonl", args.requests)
        print(f"--> wrote {args.requests} sample requests to {source} ({source.stat().st_size:,} bytes)")
        with run_emulator(workdir / "emulator-data", processing_delay_s=args.processing_delay_s) as emulator:
            base_url = emulator.base_url
            print(f"--> emulator listening at {base_url} (processing delay {args.processing_delay_s:g} s)")
            env = demo_environment(home, dags_folder, base_url, source)
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
            file_ids = list(dict.fromkeys(_READY_LINE.findall(output)))
            stored = _stored_files(base_url)
        if not file_ids:
            raise DemoError(
                f"the DAG run succeeded but printed no {READY_MARKER}; see {workdir / 'dags-test.log'}"
            )
        missing = [file_id for file_id in file_ids if file_id not in stored]
        if missing:
            raise DemoError(
                f"the emulator does not hold the file(s) the DAG handed off: {', '.join(missing)}"
            )
    except (DemoError, EmulatorStartError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print("--> the DAG validated, uploaded and waited for the file; ready for a Batch job:")
    for file_id in file_ids:
        info = stored[file_id]
        print(
            f"    {file_id}  {info.get('filename')}  {info.get('bytes')} bytes  status {info.get('status')}"
        )
    print(f"demo finished in {time.monotonic() - started:.1f} s (logs in {workdir})")
    return 0


def _stored_files(base_url: str) -> dict[str, dict[str, object]]:
    """Files the emulator holds, by id (read through the project's own client)."""
    from airflow_provider_files.api import ClientSettings, FilesClient

    with FilesClient(ClientSettings(api_key=DEMO_API_KEY, base_url=base_url)) as client:
        return {file.id: file.to_dict() for file in client.iter_files()}
