"""The API's documented ranges, each checked in one place before anything is sent."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_files.api.errors import ConfigurationError
from airflow_provider_files.contract import BATCH_ENDPOINTS as BATCH_ENDPOINTS  # re-exported

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


# -- text that travels in headers ---------------------------------------------------------------

_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Text fields of the client settings that are not sent in a header: no control characters, any script.
SETTINGS_FIELDS_NOT_IN_HEADERS = frozenset({"gateway", "base_url", "api_version", "context"})


def require_header_text(value: str, name: str, where: str = "") -> str:
    """Refuse text bound for an HTTP header with a line break, another control character or a
    non-ASCII character: httpx would fail on it with the value in the message (and it could
    inject a header). The message names the field, never the value: it may be a credential.
    """
    if _CONTROL_CHARACTER.search(value):
        raise ConfigurationError(
            f"{name}{where} contains a line break or another control character; remove it (the value is not shown)"
        )
    if not value.isascii():
        raise ConfigurationError(
            f"{name}{where} contains a non-ASCII character, which an HTTP header cannot carry (a pasted "
            "typographic quote or space?); the value is not shown"
        )
    return value


def validate_settings_text(settings: Any, where: str = "") -> None:
    """Check every text field of a ``ClientSettings`` and its extra headers (names and values).

    The API key is checked as it is sent: trimmed.
    """
    for item in dataclasses.fields(settings):
        value = getattr(settings, item.name)
        if not isinstance(value, str):
            continue
        if item.name == "api_key":
            value = value.strip()
        if item.name in SETTINGS_FIELDS_NOT_IN_HEADERS:
            if _CONTROL_CHARACTER.search(value):
                raise ConfigurationError(
                    f"{item.name}{where} contains a line break or another control character"
                )
        else:
            require_header_text(value, item.name, where)
    for header, value in (settings.headers or {}).items():
        require_header_text(str(header), "a header name", where)
        require_header_text(str(value), f"header {header!r}", where)


# -- batches -------------------------------------------------------------------------------------

#: The completion windows the API offers (``CreateBatchRequest.completion_window``).
BATCH_COMPLETION_WINDOWS: frozenset[str] = frozenset({"24h"})
BATCHES_LIST_LIMIT_MAX = 100
METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 512


def validate_completion_window(completion_window: str) -> str:
    """A completion window the API offers (only ``24h`` today)."""
    if completion_window not in BATCH_COMPLETION_WINDOWS:
        raise ConfigurationError(
            f"completion_window must be one of {', '.join(sorted(BATCH_COMPLETION_WINDOWS))}, "
            f"got {completion_window!r}"
        )
    return completion_window


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    """Batch metadata: at most 16 pairs of strings, keys up to 64 characters, values up to 512."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise ConfigurationError(
            f"metadata must be a mapping of strings to strings, got {type(metadata).__name__}"
        )
    if len(metadata) > METADATA_MAX_PAIRS:
        raise ConfigurationError(f"metadata may hold at most {METADATA_MAX_PAIRS} pairs, got {len(metadata)}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigurationError(f"metadata keys and values must be strings, got {key!r}: {value!r}")
        if len(key) > METADATA_KEY_MAX_CHARS:
            raise ConfigurationError(
                f"metadata key {key!r} is {len(key)} characters long; the limit is {METADATA_KEY_MAX_CHARS}"
            )
        if len(value) > METADATA_VALUE_MAX_CHARS:
            raise ConfigurationError(
                f"metadata value of {key!r} is {len(value)} characters long; the limit is {METADATA_VALUE_MAX_CHARS}"
            )
    return dict(metadata)
