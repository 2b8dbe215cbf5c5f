"""Issue 14 item 3: ``pip install`` the wheel, then ``airflow-files demo`` works with nothing else.

The wheel is built from this checkout, installed into a fresh virtualenv (``uv venv``, no system
site packages) with only ``apache-airflow`` beside it (pinned by the lock, so uv's cache serves it),
and the demo runs there from an empty folder: the DAG file must come from the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_REQUIREMENT = "apache-airflow==3.3.2"
INSTALL_TIMEOUT_S = 600
DEMO_TIMEOUT_S = 420


def uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv is needed to build and install the wheel (make setup installs it)"
    return found


def clean_env() -> dict[str, str]:
    """No Airflow settings, connections, virtualenv or path of the test session leak in."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME", "PYTEST"))
        and key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    }


def run(command: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT_S + DEMO_TIMEOUT_S)
def test_demo_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    wheels, venv, workdir = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    workdir.mkdir()
    started = time.monotonic()
    run(
        [uv(), "build", "--wheel", "-q", "-o", str(wheels), str(REPO)],
        cwd=tmp_path,
        timeout=INSTALL_TIMEOUT_S,
    )
    (wheel,) = wheels.glob("airflow_provider_files-*.whl")
    run([uv(), "venv", "-q", str(venv), "--python", sys.executable], cwd=tmp_path, timeout=120)
    python = venv / "bin" / "python"
    lock = REPO / "requirements-dev.lock"
    install = [uv(), "pip", "install", "-q", "--python", str(python), "-c", str(lock)]
    run([*install, AIRFLOW_REQUIREMENT, str(wheel)], cwd=tmp_path, timeout=INSTALL_TIMEOUT_S)
    installed_s = time.monotonic() - started
    print(f"wheel built and installed with Airflow in {installed_s:.1f} s")

    where = run(
        [str(python), "-c", "import airflow_provider_files as p; print(p.__file__)"], cwd=workdir, timeout=60
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)  # not this checkout
    script = venv / "bin" / "airflow-files"
    run([str(script), "emulator", "--help"], cwd=workdir, timeout=120)

    demo = run(
        [str(script), "demo", "--requests", "1200", "--batch-duration-s", "1", "--processing-delay-s", "0.5"],
        cwd=workdir,
        timeout=DEMO_TIMEOUT_S,
    )

    assert "demo finished" in demo.stdout
    batch_lines = [line.split() for line in demo.stdout.splitlines() if line.startswith("    batch_")]
    assert [(line[1], line[2]) for line in batch_lines] == [("completed", "1000"), ("completed", "200")]
    results = workdir / ".demo" / "results"
    assert all((results / f"{line[0]}_output.jsonl").is_file() for line in batch_lines)
    assert (results / "loop_summary.json").is_file()
