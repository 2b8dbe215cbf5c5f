"""Builders of batch lines and files for the jsonl tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o-mini"


def request(index: int, **overrides: Any) -> dict[str, Any]:
    """A valid chat request; ``overrides`` replace top-level keys (``None`` deletes the key)."""
    line: dict[str, Any] = {
        "custom_id": f"req-{index}",
        "method": "POST",
        "url": CHAT,
        "body": {"model": MODEL, "messages": [{"role": "user", "content": f"Say hello number {index}"}]},
    }
    for key, value in overrides.items():
        if value is None:
            line.pop(key, None)
        else:
            line[key] = value
    return line


def line(index: int, **overrides: Any) -> bytes:
    """One request line with its newline."""
    return orjson.dumps(request(index, **overrides)) + b"\n"


def lines(count: int, start: int = 1) -> bytes:
    return b"".join(line(index) for index in range(start, start + count))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
