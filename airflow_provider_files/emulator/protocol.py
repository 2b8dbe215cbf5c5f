"""The HTTP protocol the emulator runs under uvicorn: uvicorn's own, with a bound on request heads.

uvicorn's httptools protocol buffers a request's line and headers without a limit (a 100 MB
header once raised the emulator's RSS by 200 MB for good). Here a request whose line and headers
are still incomplete after :data:`MAX_REQUEST_HEAD_BYTES` is answered ``431`` and its connection
closed; the h11 fallback gets the same bound through ``h11_max_incomplete_event_size``.
"""

from __future__ import annotations

from typing import Any

# Far above any real client's headers (a few KB) and below anything that costs memory.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
# After the 431, what the client still sends is dropped unread for this long, then the connection
# closes: closing at once, with its data unread, would reset the connection and could lose the 431.
REFUSED_CLOSE_DELAY_S = 1.0

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"
)


def _error_response() -> bytes:
    body = (
        b'{"error":{"message":"The request line and headers are larger than '
        + str(MAX_REQUEST_HEAD_BYTES).encode()
        + b' bytes.","type":"invalid_request_error","param":null,"code":null}}'
    )
    return _TOO_LARGE + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def uvicorn_http_options() -> dict[str, Any]:
    """The ``http`` option (and limits) of ``uvicorn.Config`` for the emulator."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools ships with uvicorn[standard]
        return {"http": "h11", "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES}

    class BoundedHeadProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing request heads over the limit."""

        _head_bytes = 0  # bytes received since the last end of headers, while reading a head
        _heads_completed = 0
        _in_body = False
        _refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            heads_before = self._heads_completed
            reading_head = not self._in_body
            super().data_received(data)
            if self._heads_completed != heads_before:  # a head ended in this block
                self._head_bytes = 0
            elif reading_head and not self._in_body:  # a head began before this block, still open
                self._head_bytes += len(data)
                if self._head_bytes > MAX_REQUEST_HEAD_BYTES and not self.transport.is_closing():
                    self._refused = True
                    self.transport.write(_error_response())
                    self.loop.call_later(REFUSED_CLOSE_DELAY_S, self.transport.close)

        def on_headers_complete(self) -> None:
            self._in_body = True
            self._heads_completed += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            super().on_message_complete()

    return {"http": BoundedHeadProtocol}
