"""The README's "Try it locally in 2 minutes" runs as written: its shell blocks in bash, its DAG in a
fresh Airflow home, against the emulator the block itself starts.

Two liberties, both needed to run inside the test suite: the port (8000 in the README) becomes a
free one, and ``HOME`` is a temporary folder (the README puts ``AIRFLOW_HOME`` under ``~``). The
install line (``make setup && . .venv/bin/activate``) is not run: the suite already runs in that
virtualenv, whose ``bin/`` leads ``PATH``. The connection is the README's own ``AIRFLOW_CONN_*``
line, which is what is under test here (no ``files_connection`` fixture on purpose).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .support import README, REPO_ROOT, marked_blocks, section

README_PORT = "8000"
RUN_TIMEOUT_S = 540.0
REQUESTS = 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quickstart() -> dict[str, tuple[str, str]]:
    return marked_blocks(section(README.read_text(encoding="utf-8"), "Try it locally in 2 minutes"))


def test_quickstart_blocks_are_there_and_use_the_emulators_real_defaults() -> None:
    blocks = _quickstart()
    assert set(blocks) == {"quickstart:install", "quickstart:setup", "quickstart:dag", "quickstart:run"}
    assert blocks["quickstart:install"][1] == "make setup && . .venv/bin/activate"
    assert "\nsetup: $(STAMP)\n" in (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    setup = blocks["quickstart:setup"][1]
    # The emulator's default port, and the key it is started with is the connection's password.
    import argparse

    from airflow_provider_files.emulator.cli import configure_parser

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    assert str(parser.parse_args([]).port) == README_PORT
    emulator_line = next(line for line in setup.splitlines() if line.startswith("airflow-files emulator"))
    key = emulator_line.split("--api-key ")[1].split()[0]
    conn_line = next(line for line in setup.splitlines() if "AIRFLOW_CONN_OPENAI_FILES_DEFAULT=" in line)
    connection = json.loads(conn_line.split("=", 1)[1].strip("'"))
    assert connection == {
        "conn_type": "openai_files",
        "host": f"http://127.0.0.1:{README_PORT}/v1",
        "password": key,
    }
    assert "airflow db migrate" in setup
    dag_file, dag = blocks["quickstart:dag"]
    assert dag_file == "batch_quickstart.py"
    assert "import pendulum" in dag  # every name the snippet uses is imported
    compile(dag, dag_file, "exec")


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_quickstart_runs_verbatim_in_a_fresh_airflow_home(tmp_path: Path) -> None:
    blocks = _quickstart()
    port = str(_free_port())
    setup = blocks["quickstart:setup"][1]
    run = blocks["quickstart:run"][1]
    assert setup.count(README_PORT) == 2  # the emulator's --port and the connection's host
    dag_file, dag = blocks["quickstart:dag"]
    saved_dag = tmp_path / "saved-dag.py"
    saved_dag.write_text(dag + "\n", encoding="utf-8")
    script = "\n".join(
        [
            "set -euo pipefail",
            "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
            setup.replace(README_PORT, port),
            f'cp "{saved_dag}" "$AIRFLOW_HOME/dags/{dag_file}"',
            run,
        ]
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME", "AIRFLOW_FILES_"))
    }
    env.update(
        {
            "HOME": str(home),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        }
    )
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output_bytes, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output_bytes, _ = process.communicate()
        pytest.fail(
            "the quick start did not finish in time:\n" + output_bytes.decode(errors="replace")[-4000:]
        )
    output = output_bytes.decode("utf-8", errors="replace")
    assert process.returncode == 0, output[-6000:]
    assert f"{REQUESTS} of {REQUESTS} requests succeeded" in output, output[-6000:]

    results = sorted((home / "airflow-files-quickstart" / "results").glob("batch_*_results.jsonl"))
    assert len(results) == 1
    lines = [json.loads(line) for line in results[0].read_text(encoding="utf-8").splitlines()]
    assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(REQUESTS)]  # order="input"
    assert all(line["response"]["status_code"] == 200 for line in lines)
    # `kill %1` stopped the emulator the first block started.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(port)), timeout=2):
        pass
