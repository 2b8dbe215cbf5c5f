"""Start the emulator as a separate process for tests, and talk to its admin routes.

::

    from airflow_provider_files.emulator.testing import run_emulator

    with run_emulator(max_part_bytes=1024, latency_ms=5) as emulator:
        client = openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key)
        ...
        emulator.set_faults("parts:429=x2")
        assert emulator.stats()["file_count"] == 1

The process is real (its RSS can be measured, it does not share the test's GIL); introspection
routes are always enabled. Only the standard library and httpx are used here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_files.emulator.config import RUNTIME_SETTINGS

DEFAULT_API_KEY = "sk-emulator"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
ADMIN_TIMEOUT_S = 30.0

# run_emulator keyword -> command-line option; booleans become flags.
_OPTIONS = {
    "api_key": "--api-key",
    "faults": "--faults",
    "fault_seed": "--fault-seed",
    "bandwidth_per_connection": "--bandwidth-per-connection",
    "latency_ms": "--latency-ms",
    "processing_delay_s": "--processing-delay-s",
    "max_file_bytes": "--max-file-bytes",
    "max_upload_bytes": "--max-upload-bytes",
    "max_part_bytes": "--max-part-bytes",
    "upload_expiry_s": "--upload-expiry-s",
    "validate_batch": "--validate-batch",
    "batch_duration_s": "--batch-duration-s",
    "batch_request_error_rate": "--batch-request-error-rate",
    "batch_seed": "--batch-seed",
    "batch_expire_after_s": "--batch-expire-after-s",
    "batch_enqueued_token_limit": "--batch-enqueued-token-limit",
    "host": "--host",
}


class EmulatorStartError(RuntimeError):
    """The emulator process did not come up; the message holds the end of its log."""


@dataclass
class EmulatorHandle:
    """A running emulator process.

    :param root_url: ``http://host:port`` (no ``/v1``).
    :param api_key: a key it accepts; when ``api_key_enforced`` is False any non-empty key works.
    :param api_key_enforced: whether only ``api_key`` is accepted.
    :param pid: the server process id (for RSS measurements).
    :param data_dir: where it stores bytes.
    :param log_path: the process's stdout/stderr.
    """

    root_url: str
    api_key: str
    api_key_enforced: bool
    pid: int
    data_dir: Path
    log_path: Path
    _admin: httpx.Client = field(repr=False, default_factory=lambda: httpx.Client(timeout=ADMIN_TIMEOUT_S))
    _initial_settings: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ``http://host:port/v1``."""
        return self.root_url + "/v1"

    @property
    def azure_endpoint(self) -> str:
        """Azure-style endpoint (the clients append ``/openai``)."""
        return self.root_url

    @property
    def respan_base_url(self) -> str:
        return self.root_url + "/api"

    def _call(self, method: str, route: str, json: Any = None) -> Any:
        response = self._admin.request(method, f"{self.root_url}/_emulator{route}", json=json)
        if response.status_code >= 400:
            raise RuntimeError(
                f"emulator admin {method} {route} failed: {response.status_code} {response.text}"
            )
        return response.json()

    def set_faults(self, spec: str, seed: int | None = None) -> dict[str, Any]:
        """Replace the fault plan (format: :mod:`airflow_provider_files.emulator.faults`)."""
        return dict(self._call("POST", "/faults", {"spec": spec, "seed": seed}))

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def faults(self) -> dict[str, Any]:
        """The current fault plan, including how many faults of each type were injected."""
        return dict(self._call("GET", "/faults"))

    def reset(self) -> None:
        """Delete every file, upload and part, clear the request log and the clock offset."""
        self._call("POST", "/reset")

    def request_log(self) -> list[dict[str, Any]]:
        """One entry per API request: method, path, query, route, header names (values only for
        non-secret headers), status (or ``dropped``), bytes_received, fault, connection."""
        return list(self._call("GET", "/requests")["data"])

    def stats(self) -> dict[str, Any]:
        """file_count, upload_count, per-file bytes/md5/status, per-upload bytes_received/part_count
        and md5_bytes_hashed_in_flight/md5_bytes_reread_at_complete, batch_count, batches_created, per-batch status/metadata/total, body_bytes_received,
        request_count, faults_injected."""
        return dict(self._call("GET", "/stats"))

    def file_md5(self, file_id: str) -> str:
        """md5 hex digest of a stored file's bytes."""
        return str(self._call("GET", f"/files/{file_id}/md5")["md5"])

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings: processing_delay_s, latency_ms, bandwidth_per_connection_mbps,
        validate_batch, max_file_bytes, max_upload_bytes, max_part_bytes, upload_expiry_s,
        batch_duration_s, batch_request_error_rate, batch_seed, batch_expire_after_s,
        batch_enqueued_token_limit."""
        return dict(self._call("POST", "/config", settings))

    def settings(self) -> dict[str, Any]:
        return dict(self._call("GET", "/config"))

    def restore_settings(self) -> None:
        """Put the runtime settings back to what they were when the process started."""
        self.configure(**{name: self._initial_settings[name] for name in RUNTIME_SETTINGS})

    def set_processing_delay(self, seconds: float) -> None:
        self.configure(processing_delay_s=seconds)

    def set_latency(self, ms: float) -> None:
        self.configure(latency_ms=ms)

    def set_bandwidth(self, megabytes_per_s: float | None) -> None:
        self.configure(bandwidth_per_connection_mbps=megabytes_per_s)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (expiries, processing delay) without waiting."""
        self._call("POST", "/clock", {"advance_s": seconds})

    def expire_upload(self, upload_id: str) -> dict[str, Any]:
        """Expire a pending upload now."""
        return dict(self._call("POST", f"/uploads/{upload_id}/expire"))

    def peak_rss_bytes(self) -> int:
        """The server process's peak resident set size so far (Linux ``VmHWM``)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("VmHWM not available")

    def close(self) -> None:
        self._admin.close()


def _command(data_dir: Path, port_file: Path, options: dict[str, Any]) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_files.emulator",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--data-dir",
        str(data_dir),
        "--enable-introspection",
    ]
    for name, value in options.items():
        if name not in _OPTIONS:
            raise TypeError(f"run_emulator() got an unknown option {name!r} (known: {sorted(_OPTIONS)})")
        if value is None or value is False:
            continue
        if value is True:
            command.append(_OPTIONS[name])
        else:
            command += [_OPTIONS[name], str(value)]
    return command


@contextlib.contextmanager
def run_emulator(data_dir: str | Path | None = None, **options: Any) -> Iterator[EmulatorHandle]:
    """Start an emulator process on a free port, wait until it answers, stop it on exit.

    :param data_dir: where it stores bytes (default: a temporary directory removed afterwards).
    :param options: ``api_key``, ``faults``, ``fault_seed``, ``bandwidth_per_connection`` (MB/s),
        ``latency_ms``, ``processing_delay_s``, ``max_file_bytes``, ``max_upload_bytes``,
        ``max_part_bytes``, ``upload_expiry_s``, ``validate_batch``, ``batch_duration_s``,
        ``batch_request_error_rate``, ``batch_seed``, ``batch_expire_after_s``,
        ``batch_enqueued_token_limit``, ``host``.
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="airflow-files-emulator-"))
        data_path = Path(data_dir)
        data_path.mkdir(parents=True, exist_ok=True)
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="airflow-files-emulator-run-")))
        port_file = run_dir / "port"
        log_path = run_dir / "emulator.log"
        log = stack.enter_context(open(log_path, "wb"))
        env = dict(os.environ)
        env.pop("AIRFLOW_FILES_EMULATOR_API_KEY", None)
        process = subprocess.Popen(
            _command(data_path / "store", port_file, options),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        stack.callback(_stop, process)
        port = _wait_for_port(process, port_file, log_path)
        host = str(options.get("host") or "127.0.0.1")
        handle = EmulatorHandle(
            root_url=f"http://{host}:{port}",
            api_key=str(options.get("api_key") or DEFAULT_API_KEY),
            api_key_enforced=bool(options.get("api_key")),
            pid=process.pid,
            data_dir=data_path / "store",
            log_path=log_path,
        )
        if handle.api_key_enforced:  # the admin routes take the same key
            handle._admin.headers["authorization"] = f"Bearer {handle.api_key}"
        stack.callback(handle.close)
        _wait_until_healthy(handle, process)
        handle._initial_settings = handle.settings()
        yield handle


def _wait_for_port(process: subprocess.Popen[bytes], port_file: Path, log_path: Path) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if process.poll() is not None:
            break
        time.sleep(0.02)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise EmulatorStartError(f"emulator did not start (exit code {process.poll()}):\n{tail}")


def _wait_until_healthy(handle: EmulatorHandle, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if handle._admin.get(f"{handle.root_url}/_emulator/health").status_code == 200:
                return
        if process.poll() is not None:
            break
        time.sleep(0.02)
    raise EmulatorStartError(f"emulator at {handle.root_url} did not answer its health check")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
