"""Secrets scenario: a full DAG run with known credentials; search everything it left for them.

``airflow dags test reliability_secrets`` (``tests/reliability/dags/``) runs against the emulator
with a Portkey-style connection that carries an API key (``x-portkey-api-key``), a Portkey
virtual key, a Portkey config and an Azure-style ``api-key`` header (``headers`` extra) (all known strings), plus one task whose connection has a wrong
key (it fails with 401). Then every byte the run left is searched for each secret and for its
last 10 characters:

* the output of ``airflow dags test`` (every task log line, tracebacks included);
* every file under the run's ``AIRFLOW_HOME`` (task log files, checkpoints, the SQLite metadata
  database, which holds XComs, rendered template fields and task instance notes);
* the XCom and rendered-field rows, dumped from the database as text;
* the reprs and error texts printed by :mod:`bench.reliability.secrets_runner`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.connections import connection_variable
from bench.datagen import write_batch_file, write_random_file
from bench.reliability.common import Metric, ScenarioResult

DAGS_FOLDER = REPO_ROOT / "tests" / "reliability" / "dags"
DAG_ID = "reliability_secrets"
# the connection ids the DAG file uses (tests/reliability/dags/reliability_secrets_dag.py)
SECRET_CONN_ID = "reliability_secret_conn"
WRONG_KEY_CONN_ID = "reliability_secret_wrong_key"
SECRETS = {
    "api key": "sk-reliability-7f3a9c1e5b2d4f6a8c0e",
    "portkey virtual key": "vk-reliability-2b4d6f8a0c1e3a5b",
    "portkey config": "pc-reliability-config-9z8y7x6w5v",
    "azure api-key header": "az-reliability-header-1q2w3e4r5t",
    "wrong api key": "sk-reliability-wrong-0p9o8i7u6y5t",
}
SUFFIX_CHARS = 10
COMMAND_TIMEOUT_S = 300


def _needles() -> dict[str, bytes]:
    needles = {}
    for name, value in SECRETS.items():
        needles[name] = value.encode()
        needles[f"{name} (last {SUFFIX_CHARS} chars)"] = value[-SUFFIX_CHARS:].encode()
    return needles


def search(haystack: bytes, where: str, hits: list[str]) -> None:
    for name, needle in _needles().items():
        count = haystack.count(needle)
        if count:
            hits.append(f"{name} found {count}x in {where}")


def secret_connection(base_url: str, api_key: str) -> str:
    return json.dumps(
        {
            "conn_type": "openai_files",
            "host": base_url,
            "password": api_key,
            "extra": {
                "gateway": "portkey",
                "portkey_virtual_key": SECRETS["portkey virtual key"],
                "portkey_config": SECRETS["portkey config"],
                "headers": {"api-key": SECRETS["azure api-key header"], "x-team": "reliability"},
            },
        }
    )


def run_environment(home: Path, base_url: str, jsonl: Path, blob: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RELIABILITY"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            connection_variable(SECRET_CONN_ID): secret_connection(base_url, SECRETS["api key"]),
            connection_variable(WRONG_KEY_CONN_ID): secret_connection(base_url, SECRETS["wrong api key"]),
            "RELIABILITY_JSONL": str(jsonl),
            "RELIABILITY_BLOB": str(blob),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _run(command: list[str], env: dict[str, str], log_path: Path) -> tuple[int, bytes]:
    completed = subprocess.run(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
        cwd=REPO_ROOT,
    )
    log_path.write_bytes(completed.stdout)
    return completed.returncode, completed.stdout


def _table_text(db: Path, table: str) -> tuple[int, bytes]:
    with sqlite3.connect(db) as connection:
        try:
            rows = connection.execute(f"SELECT * FROM {table}").fetchall()
        except sqlite3.OperationalError:
            return 0, b""
    return len(rows), "\n".join(repr(row) for row in rows).encode()


def _task_states(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,)
        ).fetchall()
    return {task_id: str(state) for task_id, state in rows}


def run_secrets_scenario(workdir: Path, *, log: Callable[[str], None] = print) -> ScenarioResult:
    from airflow_provider_files.emulator.testing import run_emulator

    started = time.monotonic()
    result = ScenarioResult("secrets", "full DAG run with known credentials; every output searched")
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "airflow-home"
    home.mkdir(exist_ok=True)
    jsonl = write_batch_file(workdir / "requests.jsonl", 50).path
    blob = write_random_file(workdir / "blob.bin", 300 * 1024, 3).path
    airflow = str(Path(sys.executable).parent / "airflow")
    hits: list[str] = []
    with run_emulator(api_key=SECRETS["api key"], processing_delay_s=1.0) as emulator:
        env = run_environment(home, emulator.base_url, jsonl, blob)
        code, _ = _run([airflow, "db", "migrate"], env, workdir / "db-migrate.log")
        if code != 0:
            result.failures.append(f"airflow db migrate failed; see {workdir / 'db-migrate.log'}")
            return result
        _, dag_output = _run([airflow, "dags", "test", DAG_ID], env, workdir / "dags-test.log")
        _, repr_output = _run(
            [sys.executable, "-m", "bench.reliability.secrets_runner"], env, workdir / "reprs.log"
        )
        request_log = emulator.request_log()
        stats = emulator.stats()
    search(dag_output, "`airflow dags test` output", hits)
    search(repr_output, "reprs and error texts", hits)
    files_searched = 0
    for path in sorted(home.rglob("*")):
        if path.is_file():
            files_searched += 1
            search(path.read_bytes(), f"file {path.relative_to(home)}", hits)
    db = home / "airflow.db"
    xcom_rows, xcom_text = _table_text(db, "xcom")
    rendered_rows, rendered_text = _table_text(db, "rendered_task_instance_fields")
    search(xcom_text, "XCom rows", hits)
    search(rendered_text, "rendered template fields", hits)
    states = _task_states(db)
    header_names = {name for entry in request_log for name in entry.get("headers") or []}
    expected_states = {
        "upload_jsonl": "success",
        "upload_chunked": "success",
        "wait_deferred": "success",
        "wait_poking": "success",
        "upload_wrong_key": "failed",
    }
    problems = [
        f"task {task} ended {states.get(task)}, expected {state}"
        for task, state in expected_states.items()
        if states.get(task) != state
    ]
    missing_headers = {
        "x-portkey-api-key",
        "x-portkey-virtual-key",
        "x-portkey-config",
        "api-key",
    } - header_names
    if missing_headers:
        problems.append(f"the secret headers {sorted(missing_headers)} never reached the server")
    if b"401" not in dag_output:
        problems.append("the wrong-key task's 401 is not in the log")
    dag_lines = dag_output.count(b"\n")
    result.metrics += [
        Metric.zero("secret hits (full values and 10-char suffixes)", len(hits)),
        Metric.info(
            "searched",
            f"{dag_lines} log lines, {files_searched} files under AIRFLOW_HOME, {xcom_rows} XCom rows, "
            f"{rendered_rows} rendered-field rows, {repr_output.count(b'---')} reprs/errors",
        ),
        Metric(
            "DAG run as expected (4 tasks succeed, wrong-key task fails with 401)",
            "ok" if not problems else "; ".join(problems),
            "ok",
            not problems,
        ),
        Metric.info("files the run stored on the emulator", int(stats["file_count"])),
    ]
    result.failures += hits
    result.failures += problems
    result.notes += [
        f"Secrets: {', '.join(SECRETS)} (each a distinct known string); outputs kept in `{workdir}`.",
        "Task states: " + ", ".join(f"{task} {state}" for task, state in sorted(states.items())),
    ]
    log(f"  secrets: {len(hits)} hits; tasks {states}")
    result.elapsed_s = time.monotonic() - started
    return result


def main() -> None:  # pragma: no cover - manual use
    import tempfile

    outcome = run_secrets_scenario(Path(tempfile.mkdtemp(prefix="reliability-secrets-")))
    for metric in outcome.metrics:
        print(metric)
    for failure in outcome.failures:
        print("FAIL", failure)


if __name__ == "__main__":  # pragma: no cover
    main()


__all__: list[Any] = ["run_secrets_scenario"]
