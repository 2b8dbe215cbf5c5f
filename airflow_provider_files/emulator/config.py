"""Settings of one emulator process; the runtime-tunable ones can be changed through the admin routes."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
GIB = 1024 * MIB

# OpenAI's documented limits; the SDK's DEFAULT_PART_SIZE is 64 MiB, so the "MB"/"GB" of the
# documentation are read as binary units.
DEFAULT_MAX_FILE_BYTES = 512 * MIB
DEFAULT_MAX_UPLOAD_BYTES = 8 * GIB
DEFAULT_MAX_PART_BYTES = 64 * MIB
DEFAULT_UPLOAD_EXPIRY_S = 3600.0
BATCH_FILE_DEFAULT_EXPIRY_S = 30 * 24 * 3600
FILE_EXPIRY_MIN_S = 3600
FILE_EXPIRY_MAX_S = 2_592_000
DEFAULT_BATCH_DURATION_S = 2.0

# Settings that POST /_emulator/config may change while the server runs.
RUNTIME_SETTINGS = (
    "processing_delay_s",
    "latency_ms",
    "bandwidth_per_connection_mbps",
    "validate_batch",
    "max_file_bytes",
    "max_upload_bytes",
    "max_part_bytes",
    "upload_expiry_s",
    "batch_duration_s",
    "batch_request_error_rate",
    "batch_seed",
    "batch_expire_after_s",
    "batch_enqueued_token_limit",
)

# name -> (type, lowest value, whether the lowest value itself is allowed, whether None is allowed)
_RUNTIME_SETTING_RULES: dict[str, tuple[type, float | None, bool, bool]] = {
    "processing_delay_s": (float, 0, True, False),
    "latency_ms": (float, 0, True, False),
    "bandwidth_per_connection_mbps": (float, 0, False, True),
    "validate_batch": (bool, None, True, False),
    "max_file_bytes": (int, 0, False, False),
    "max_upload_bytes": (int, 0, False, False),
    "max_part_bytes": (int, 0, False, False),
    "upload_expiry_s": (float, 0, False, False),
    "batch_duration_s": (float, 0, True, False),
    "batch_request_error_rate": (float, 0, True, False),
    "batch_seed": (int, None, True, False),
    "batch_expire_after_s": (float, 0, False, True),
    "batch_enqueued_token_limit": (int, 0, False, True),
}
assert set(_RUNTIME_SETTING_RULES) == set(RUNTIME_SETTINGS)


def check_runtime_setting(name: str, value: object) -> object:
    """``value`` as the setting ``name`` takes it (an int given for a float becomes a float).

    :raises ValueError: naming the setting and what it takes, for a wrong type or range.
    """
    kind, lowest, lowest_allowed, none_allowed = _RUNTIME_SETTING_RULES[name]
    if value is None:
        if none_allowed:
            return None
        raise ValueError(f"{name} must not be null.")
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {type(value).__name__}.")
        return value
    wanted = "an integer" if kind is int else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not isinstance(value, int))
        or not math.isfinite(value)
    ):
        raise ValueError(f"{name} must be {wanted}{' or null' if none_allowed else ''}.")
    if lowest is not None and (value < lowest or (value == lowest and not lowest_allowed)):
        relation = "at least" if lowest_allowed else "greater than"
        raise ValueError(f"{name} must be {relation} {lowest:g}.")
    if name == "batch_request_error_rate" and value > 1:
        raise ValueError(f"{name} must be between 0 and 1.")
    return float(value) if kind is float else value


@dataclass
class EmulatorConfig:
    """What one emulator process enforces and imitates.

    :param data_dir: directory holding the stored bytes (one file per file id / part id).
    :param api_key: the only accepted key; None accepts any non-empty key.
    :param max_file_bytes: largest body of ``POST /files``.
    :param max_upload_bytes: largest declared ``bytes`` of an upload, and of all its parts together.
    :param max_part_bytes: largest part.
    :param upload_expiry_s: lifetime of a pending upload.
    :param processing_delay_s: how long a new file reports ``uploaded`` before ``processed``.
    :param latency_ms: added before every API response.
    :param bandwidth_per_connection_mbps: cap in megabytes (10**6 bytes) per second per TCP
        connection, applied to request and response bodies; None for no cap.
    :param validate_batch: check ``purpose=batch`` files line by line and mark bad ones ``error``.
    :param batch_duration_s: time from a batch's creation to ``completed`` (validating 10%,
        in_progress 80%, finalizing 10%); cancelling takes 10% of it.
    :param batch_request_error_rate: share of a batch's requests (0..1) that end in the error file
        with a retryable error (429 ``rate_limit_exceeded`` or 500 ``server_error``), chosen per
        ``custom_id`` from ``batch_seed``.
    :param batch_seed: seed of that choice.
    :param batch_expire_after_s: a batch still running this long after creation becomes
        ``expired``; None uses the 24 h window.
    :param batch_enqueued_token_limit: enqueued-token limit per model; a batch whose (estimated)
        tokens would exceed it fails validation with ``token_limit_exceeded``. None: no limit.
    :param enable_introspection: serve the test-only ``/_emulator/...`` routes.
    :param faults: fault spec (see :mod:`airflow_provider_files.emulator.faults`).
    :param fault_seed: seed of the fault dice, for reproducible runs.
    """

    data_dir: Path
    api_key: str | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES
    upload_expiry_s: float = DEFAULT_UPLOAD_EXPIRY_S
    processing_delay_s: float = 0.0
    latency_ms: float = 0.0
    bandwidth_per_connection_mbps: float | None = None
    validate_batch: bool = False
    batch_duration_s: float = DEFAULT_BATCH_DURATION_S
    batch_request_error_rate: float = 0.0
    batch_seed: int = 0
    batch_expire_after_s: float | None = None
    batch_enqueued_token_limit: int | None = None
    enable_introspection: bool = False
    faults: str = ""
    fault_seed: int | None = None

    def public_settings(self) -> dict[str, object]:
        """The settings without the API key (for the introspection routes)."""
        settings = dataclasses.asdict(self)
        settings["data_dir"] = str(self.data_dir)
        settings["api_key"] = "configured" if self.api_key else None
        return settings
