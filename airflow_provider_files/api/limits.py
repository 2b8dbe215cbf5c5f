"""The API's documented ranges, each checked in one place before anything is sent."""

from __future__ import annotations

from airflow_provider_files.api.errors import ConfigurationError

KIB = 1024
MIB = 1024 * KIB

EXPIRES_AFTER_MIN_S = 3600
EXPIRES_AFTER_MAX_S = 2_592_000
MIN_PART_SIZE_BYTES = 64 * KIB
MAX_PART_SIZE_BYTES = 64 * MIB
FILES_LIST_LIMIT_MAX = 10_000


def validate_expires_after_s(expires_after_s: int | None, name: str = "expires_after_s") -> int | None:
    """A file lifetime in seconds (1 hour to 30 days), or ``None`` for the server's default.

    :raises ConfigurationError: (a ``ValueError``) outside the range.
    """
    if expires_after_s is None:
        return None
    if not EXPIRES_AFTER_MIN_S <= expires_after_s <= EXPIRES_AFTER_MAX_S:
        raise ConfigurationError(
            f"{name} must be between {EXPIRES_AFTER_MIN_S} (1 hour) and "
            f"{EXPIRES_AFTER_MAX_S} (30 days), got {expires_after_s}"
        )
    return expires_after_s


def validate_part_size(part_size_bytes: int) -> int:
    """Bytes per part of a chunked upload: 64 KiB (ours, to bound the part count) to 64 MiB (the API's)."""
    if isinstance(part_size_bytes, bool) or not isinstance(part_size_bytes, int):
        raise TypeError(f"part_size_bytes must be an int, got {type(part_size_bytes).__name__}")
    if not MIN_PART_SIZE_BYTES <= part_size_bytes <= MAX_PART_SIZE_BYTES:
        raise ValueError(
            f"part_size_bytes must be between {MIN_PART_SIZE_BYTES} (64 KiB) and {MAX_PART_SIZE_BYTES} "
            f"(64 MiB, the API's limit per part), got {part_size_bytes}"
        )
    return part_size_bytes
