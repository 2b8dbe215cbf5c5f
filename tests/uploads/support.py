"""Helpers shared by the upload engine tests."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from airflow_provider_files.api import ClientSettings, FilesClient, RetryPolicy
from airflow_provider_files.emulator.testing import EmulatorHandle

FAST_RETRIES = RetryPolicy(max_attempts=12, initial_delay_s=0.005, max_delay_s=0.05, max_retry_after_s=5.0)
MIB = 1024 * 1024


def client_for(emulator: EmulatorHandle, *, max_connections: int = 16) -> FilesClient:
    settings = ClientSettings(api_key=emulator.api_key, base_url=emulator.base_url, retry_policy=FAST_RETRIES)
    return FilesClient(settings, max_connections=max_connections)


def write_random(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def requests_to(emulator: EmulatorHandle, route: str, since: int = 0) -> list[dict[str, Any]]:
    """Request log entries of one route (``add_part``, ``complete_upload`` ...), from entry ``since`` on."""
    return [entry for entry in emulator.request_log()[since:] if entry["route"] == route]
