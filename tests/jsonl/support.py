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


# -- batch result lines (output and error files) ---------------------------------------------


def ok(custom_id: str, usage: dict[str, Any] | None = None, status: int = 200, **body: Any) -> bytes:
    """An output-file line with a response of ``status`` (2xx by default)."""
    if usage is not None:
        body["usage"] = usage
    return _line(
        custom_id,
        {"status_code": status, "request_id": f"req_{custom_id}", "body": body or {"object": "x"}},
        None,
    )


def http_error(custom_id: str, status: int, code: str | None = None) -> bytes:
    """An output-file line whose response is an HTTP error (with ``body.error.code`` when given)."""
    body: dict[str, Any] = {"error": {"message": "failed", "type": "x"}}
    if code is not None:
        body["error"]["code"] = code
    return _line(custom_id, {"status_code": status, "request_id": f"req_{custom_id}", "body": body}, None)


def failed(custom_id: str, code: str | None = "batch_expired") -> bytes:
    """An error-file line: no response, ``error.code`` set."""
    return _line(custom_id, None, {"code": code, "message": "This request could not be executed."})


def _line(custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None) -> bytes:
    record = {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response, "error": error}
    return orjson.dumps(record) + b"\n"


def request_line(custom_id: str) -> bytes:
    """A batch input line."""
    return (
        orjson.dumps(
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": custom_id}]},
            }
        )
        + b"\n"
    )


def input_file(ids: list[str]) -> bytes:
    return b"".join(request_line(custom_id) for custom_id in ids)
