"""Helpers of the interop tests: the real gateways as processes, the examples of docs/gateways.md,
and what the tests of every gateway do the same way (the CLI in a child process, an example DAG
through ``dag.test()``).

Each gateway runs on a free loopback port with an emulator as its upstream, and is stopped by
its PID when the test session ends. The gateways are installed by ``make interop`` into
``.interop/`` at pinned versions; when they are missing the tests fail with that instruction.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_files.demo import write_sample_requests

if TYPE_CHECKING:
    from airflow_provider_files.emulator.testing import EmulatorHandle

REPO_ROOT = Path(__file__).resolve().parents[2]
INTEROP_DIR = REPO_ROOT / ".interop"
PORTKEY_DIR = INTEROP_DIR / "portkey"
PORTKEY_SERVER = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
LITELLM_BIN = INTEROP_DIR / "litellm" / "bin" / "litellm"
GATEWAYS_DOC = REPO_ROOT / "docs" / "gateways.md"

UPSTREAM_KEY = "sk-interop-upstream-5d1e"
LITELLM_MASTER_KEY = "sk-interop-proxy-77aa"
PORTKEY_STARTUP_S = 60.0
LITELLM_STARTUP_S = 180.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 120.0
#: ``airflow-files upload`` as a child process of this interpreter.
CLI_UPLOAD = (sys.executable, "-m", "airflow_provider_files.cli", "upload")

# The doc's placeholders, replaced by the running processes' addresses.
DOC_GATEWAY_URL = "http://127.0.0.1:8787/v1"
DOC_UPSTREAM_URL = "https://api.openai.com/v1"
DOC_KEY = "sk-your-openai-key"


class GatewayMissingError(RuntimeError):
    """A gateway is not installed: run ``make interop``."""


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doc_block(name: str) -> str:
    """The fenced block after ``<!-- interop:NAME -->`` in docs/gateways.md."""
    text = GATEWAYS_DOC.read_text()
    match = re.search(rf"<!-- interop:{re.escape(name)} -->\n```[a-z]*\n(.*?)```", text, re.S)
    if match is None:
        raise AssertionError(f"docs/gateways.md has no block 'interop:{name}'")
    return match.group(1)


def portkey_self_hosted_connection(gateway_url: str, upstream_url: str, key: str) -> dict[str, Any]:
    """The documented self-hosted Portkey connection, pointed at the running gateway and upstream."""
    text = doc_block("portkey-self-hosted")
    text = text.replace(DOC_GATEWAY_URL, gateway_url).replace(DOC_UPSTREAM_URL, upstream_url)
    return dict(json.loads(text.replace(DOC_KEY, key)))


def litellm_connection(proxy_url: str, key: str = LITELLM_MASTER_KEY) -> dict[str, Any]:
    """A connection to the LiteLLM proxy at ``proxy_url`` with its master key."""
    return {"conn_type": "openai_files", "host": proxy_url, "password": key, "extra": {"gateway": "litellm"}}


def run_upload_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``airflow-files upload ARGS`` in a child process, with this environment plus ``env``."""
    return subprocess.run(
        [*CLI_UPLOAD, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


# -- an example DAG, run for real (``dag.test()``) with its connection pointed at a gateway ---------


def run_example_dag(name: str, **run_conf: Any) -> Any:
    path = REPO_ROOT / "example_dags" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"interop_example_dags.{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test(run_conf=run_conf)


def xcom_of(dag_run: Any, task_id: str) -> Any:
    for ti in dag_run.get_task_instances():
        if ti.task_id == task_id:
            return ti.xcom_pull(task_ids=task_id)
    raise AssertionError(f"no task instance {task_id}")


def task_states(dag_run: Any) -> dict[str, Any]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def upload_through_example_dag(
    upstream: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: int = 300
) -> Any:
    """Run ``example_upload_jsonl`` on ``lines`` sample requests through the default connection
    (the test points it at a gateway), checkpoints under ``tmp_path``: it must succeed and the
    upstream must hold the source's bytes. Returns the DAG run."""
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER", str(tmp_path / "checkpoints"))
    source = write_sample_requests(tmp_path / "requests.jsonl", lines)
    dag_run = run_example_dag("example_upload_jsonl", source=str(source))
    assert dag_run.state == DagRunState.SUCCESS, task_states(dag_run)
    uploaded = xcom_of(dag_run, "upload_requests")
    assert upstream.file_md5(uploaded["id"]) == md5_of(source.read_bytes())
    return dag_run


# -- the gateways as processes ----------------------------------------------------------------------


@dataclass
class GatewayProcess:
    """A gateway started by the tests.

    :param name: ``portkey`` or ``litellm``.
    :param root_url: ``http://127.0.0.1:PORT``.
    :param pid: its process id (stopped by it).
    :param log_path: its stdout and stderr.
    """

    name: str
    root_url: str
    pid: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def _run(
    name: str,
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    port: int,
    ready_path: str,
    startup_s: float,
) -> Iterator[GatewayProcess]:
    log_path = cwd / f"{name}-{port}.log"
    with open(log_path, "wb") as log:
        # its own process group, so that the proxy's workers are stopped with it
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        handle = GatewayProcess(name, f"http://127.0.0.1:{port}", process.pid, log_path)
        deadline = time.monotonic() + startup_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(handle.root_url + ready_path, timeout=2).status_code < 500:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not start (exit code {process.poll()}):\n{handle.log_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield handle
    finally:
        _stop(process)


@contextlib.contextmanager
def run_portkey(run_dir: Path) -> Iterator[GatewayProcess]:
    """The Portkey gateway (pinned in tests/interop/portkey/package.json), listening on loopback only."""
    if not PORTKEY_SERVER.exists():
        raise GatewayMissingError(
            f"the Portkey gateway is not installed ({PORTKEY_SERVER}): run `make interop`"
        )
    port = free_port()
    command = [
        "node",
        "--import",
        str(PORTKEY_DIR / "loopback.mjs"),
        str(PORTKEY_SERVER),
        f"--port={port}",
        "--headless",
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(run_dir), "NODE_ENV": "production"}
    with _run(
        "portkey", command, cwd=run_dir, env=env, port=port, ready_path="/", startup_s=PORTKEY_STARTUP_S
    ) as handle:
        yield handle


@contextlib.contextmanager
def run_litellm(run_dir: Path, upstream_base_url: str) -> Iterator[GatewayProcess]:
    """The LiteLLM proxy with the configuration of docs/gateways.md, upstream the emulator."""
    if not LITELLM_BIN.exists():
        raise GatewayMissingError(f"the LiteLLM proxy is not installed ({LITELLM_BIN}): run `make interop`")
    config = run_dir / "litellm-config.yaml"
    config.write_text(doc_block("litellm-config"))
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(run_dir),
        "OPENAI_API_BASE": upstream_base_url,
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    command = [str(LITELLM_BIN), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with _run(
        "litellm",
        command,
        cwd=run_dir,
        env=env,
        port=port,
        ready_path="/health/liveliness",
        startup_s=LITELLM_STARTUP_S,
    ) as handle:
        yield handle


@dataclass
class Outcome:
    """One row of the operation x gateway table."""

    gateway: str
    client: str
    operation: str
    status: str


class InteropTable:
    """Collects what each client got for each operation through each gateway."""

    def __init__(self) -> None:
        self.rows: list[Outcome] = []

    def record(self, gateway: str, client: str, operation: str, status: str) -> None:
        self.rows.append(Outcome(gateway, client, operation, status))

    def markdown(self) -> str:
        columns = sorted({(r.gateway, r.client) for r in self.rows})
        operations = list(dict.fromkeys(r.operation for r in self.rows))
        cell = {(r.operation, r.gateway, r.client): r.status for r in self.rows}
        lines = [
            "| operation | " + " | ".join(f"{g} / {c}" for g, c in columns) + " |",
            "|---|" + "---|" * len(columns),
        ]
        for op in operations:
            lines.append(f"| {op} | " + " | ".join(cell.get((op, g, c), "-") for g, c in columns) + " |")
        return "\n".join(lines) + "\n"
