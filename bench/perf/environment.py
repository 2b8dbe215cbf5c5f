"""The machine a bench runs on: installing the peers, recording the versions and hardware, logging."""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.datagen import GIB

# Installed into the running interpreter's environment when missing (pinned: the figures name them).
PEER_REQUIREMENTS = ["apache-airflow-providers-openai==2.2.0"]
CHART_REQUIREMENTS = ["matplotlib==3.11.2"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def ensure_installed(requirements: list[str], probe_module: str) -> bool:
    """Install ``requirements`` into this interpreter's environment if ``probe_module`` is missing."""
    if installed(probe_module):
        return True
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    command = (
        [uv, "pip", "install", "-q", "--python", sys.executable, *requirements]
        if uv
        else [sys.executable, "-m", "pip", "install", "-q", *requirements]
    )
    log(f"installing {' '.join(requirements)}")
    completed = subprocess.run(command, check=False)
    importlib.invalidate_caches()
    if completed.returncode != 0 or not installed(probe_module):
        log(f"could not install {' '.join(requirements)}; the figures that need it are left out")
        return False
    return True


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_bytes = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram_bytes = int(line.split()[1]) * 1024
                break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_bytes / GIB, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "airflow": _version("apache-airflow"),
        "airflow-provider-files": _version("airflow-provider-files"),
        "openai": _version("openai"),
        "apache-airflow-providers-openai": _version("apache-airflow-providers-openai"),
        "httpx": _version("httpx"),
        "orjson": _version("orjson"),
        "load_avg_start": [round(value, 2) for value in os.getloadavg()],
    }
