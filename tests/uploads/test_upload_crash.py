"""A killed upload process is resumed by the next one: only the missing parts are sent again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle

from .support import md5_file, requests_to

pytestmark = pytest.mark.timeout(60)

PART = 256 * 1024
PARTS = 32
CONCURRENCY = 2
KILL_AFTER_PARTS = 8


def upload_command(emulator: EmulatorHandle, path: Path, checkpoint: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "airflow_provider_files.cli",
        "upload",
        str(path),
        "--purpose",
        "batch",
        "--base-url",
        emulator.base_url,
        "--api-key-env",
        "TEST_FILES_API_KEY",
        "--part-size",
        str(PART),
        "--concurrency",
        str(CONCURRENCY),
        "--checkpoint",
        str(checkpoint),
        "--chunked",  # the Uploads API and its checkpoint, whatever the size
        "--no-validate",  # the bytes are random
    ]


def acknowledged_parts(checkpoint: Path) -> int:
    try:
        return len(json.loads(checkpoint.read_text())["parts"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def test_sigkilled_upload_resumes_with_only_the_missing_parts(
    emulator_factory: Callable[..., EmulatorHandle], make_file: Callable[..., Path], tmp_path: Path
) -> None:
    emulator = emulator_factory(bandwidth_per_connection=2)  # MB/s per connection: about 4 s in all
    path = make_file(PARTS * PART - 100)
    checkpoint = tmp_path / "upload.ckpt.json"
    env = {**os.environ, "TEST_FILES_API_KEY": emulator.api_key}
    command = upload_command(emulator, path, checkpoint)

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while acknowledged_parts(checkpoint) < KILL_AFTER_PARTS and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    acknowledged = acknowledged_parts(checkpoint)
    assert KILL_AFTER_PARTS <= acknowledged < PARTS, "kill the process mid-way"
    upload_id = json.loads(checkpoint.read_text())["upload_id"]
    time.sleep(0.5)  # let the server finish reading whatever the dead process had sent
    first_run_log = len(emulator.request_log())
    stored_by_first_run = [e for e in requests_to(emulator, "add_part") if e["status"] == 200]

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert second.returncode == 0, second.stderr
    file_object = json.loads(second.stdout)
    assert emulator.file_md5(file_object["id"]) == md5_file(path)
    assert file_object["bytes"] == path.stat().st_size
    resent = requests_to(emulator, "add_part", since=first_run_log)
    assert len(resent) == PARTS - acknowledged  # only the parts missing from the checkpoint
    assert all(upload_id in entry["path"] for entry in resent)
    # parts the server stored but the dead process never recorded were at most those in flight
    assert acknowledged <= len(stored_by_first_run) <= acknowledged + CONCURRENCY
    assert requests_to(emulator, "create_upload") and len(requests_to(emulator, "create_upload")) == 1
    assert emulator.stats()["uploads"][upload_id]["file_id"] == file_object["id"]
    assert "resuming upload" in second.stderr
