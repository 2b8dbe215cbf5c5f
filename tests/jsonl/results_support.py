"""Builders of batch result lines (output and error files) for the results tests."""

from __future__ import annotations

from typing import Any

import orjson


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
