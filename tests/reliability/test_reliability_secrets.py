"""Fast subset of the secrets scenario: reprs and error texts of hooks, clients, operators and
triggers built from a connection full of known secrets (the full DAG run is `make reliability`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_files.emulator.testing import run_emulator
from bench.datagen import write_batch_file, write_random_file
from bench.reliability.secrets import REPO_ROOT, SECRETS, run_environment, search

pytestmark = pytest.mark.timeout(120)


def test_reprs_and_error_texts_carry_no_secret(tmp_path: Path) -> None:
    jsonl = write_batch_file(tmp_path / "requests.jsonl", 5).path
    blob = write_random_file(tmp_path / "blob.bin", 1000, 1).path
    with run_emulator(api_key=SECRETS["api key"]) as emulator:
        env = run_environment(tmp_path / "home", emulator.base_url, jsonl, blob)
        completed = subprocess.run(
            [sys.executable, "-m", "bench.reliability.secrets_runner"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=100,
            check=False,
        )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output.decode(errors="replace")[-3000:]
    assert b"401 Unauthorized" in output  # the wrong key was really rejected
    hits: list[str] = []
    search(output, "runner output", hits)
    assert hits == []


def test_search_finds_a_leaked_secret() -> None:
    hits: list[str] = []
    search(f"oops Bearer {SECRETS['api key']}".encode(), "control", hits)
    assert hits
