"""A streaming ``multipart/form-data`` parser: bounded memory, big chunks, no per-byte Python loop.

The body is fed chunk by chunk; the part delimiter is searched with ``bytes.find`` and only a tail
shorter than the delimiter is carried between chunks. Each part's data goes to a sink chosen
from its name when its headers have been read, so a file field streams straight to disk while
small text fields are kept in memory (with a cap).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol
from urllib.parse import unquote

MAX_PART_HEADER_BYTES = 16 * 1024
MAX_TEXT_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64

_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MultipartError(ValueError):
    """The body is not well-formed multipart; the message says where."""


class PartSink(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...

    def finish(self) -> None: ...


class TextSink:
    """Collects a small text field in memory, refusing more than ``limit_bytes``.

    :param name: the field name (for error messages).
    :param limit_bytes: the largest accepted value.
    """

    def __init__(self, name: str, limit_bytes: int = MAX_TEXT_FIELD_BYTES) -> None:
        self.name = name
        self.limit_bytes = limit_bytes
        self._chunks: list[bytes] = []
        self._size = 0
        self.value: str | None = None

    def write(self, data: bytes | memoryview) -> None:
        self._size += len(data)
        if self._size > self.limit_bytes:
            raise MultipartError(f"form field {self.name!r} is longer than {self.limit_bytes} bytes")
        self._chunks.append(bytes(data))

    def finish(self) -> None:
        try:
            self.value = b"".join(self._chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise MultipartError(f"form field {self.name!r} is not valid UTF-8") from None


def boundary_from_content_type(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` content type.

    :raises MultipartError: when the type is not multipart/form-data or has no boundary.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "multipart/form-data":
        raise MultipartError(f"expected Content-Type multipart/form-data, got {media_type or 'none'!r}")
    params = parse_header_params(content_type)
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise MultipartError("multipart/form-data Content-Type has no valid boundary")
    return boundary.encode("latin-1")


def parse_header_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for match in _PARAM_RE.finditer(value):
        key = match.group(1).lower()
        raw = match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
    return params


# part name, filename (None for a plain field), content type -> where its bytes go
SinkFactory = Callable[[str, "str | None", "str | None"], PartSink]


class MultipartParser:
    """Incremental parser; call :meth:`feed` per chunk and :meth:`close` at the end of the body.

    :param boundary: the multipart boundary (without the leading dashes).
    :param open_sink: called when a part's headers are complete; returns its sink.
    """

    _HEADERS, _DATA, _AFTER_DELIMITER, _DONE = range(4)

    def __init__(self, boundary: bytes, open_sink: SinkFactory) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._open_sink = open_sink
        # Pretending the body starts with CRLF makes the first delimiter look like all the others.
        self._buffer = b"\r\n"
        self._state = self._DATA
        self._sink: PartSink | None = None
        self._in_preamble = True
        self.parts_seen = 0

    def feed(self, chunk: bytes) -> None:
        data = self._buffer + chunk if self._buffer else chunk
        self._buffer = b""
        position = 0
        length = len(data)
        while position < length or self._state == self._AFTER_DELIMITER:
            if self._state == self._DATA:
                index = data.find(self._delimiter, position)
                if index < 0:
                    keep = min(len(self._delimiter) - 1, length - position)
                    end = length - keep
                    if end > position:
                        self._emit(memoryview(data)[position:end])
                    self._buffer = data[end:]
                    return
                if index > position:
                    self._emit(memoryview(data)[position:index])
                self._finish_part()
                position = index + len(self._delimiter)
                self._state = self._AFTER_DELIMITER
            elif self._state == self._AFTER_DELIMITER:
                if length - position < 2:
                    self._buffer = data[position:]
                    return
                marker = data[position : position + 2]
                if marker == b"--":
                    self._state = self._DONE
                    return
                # Transport padding (spaces/tabs) may follow the delimiter before CRLF.
                line_end = data.find(b"\r\n", position)
                if line_end < 0:
                    if length - position > 256:
                        raise MultipartError("malformed multipart delimiter line")
                    self._buffer = data[position:]
                    return
                if data[position:line_end].strip(b" \t"):
                    raise MultipartError("malformed multipart delimiter line")
                position = line_end + 2
                self._state = self._HEADERS
            elif self._state == self._HEADERS:
                end = data.find(b"\r\n\r\n", position)
                if end < 0:
                    if length - position > MAX_PART_HEADER_BYTES:
                        raise MultipartError("multipart part headers are too long")
                    self._buffer = data[position:]
                    return
                self._start_part(data[position:end])
                position = end + 4
                self._state = self._DATA
            else:  # epilogue after the closing delimiter is ignored
                return

    def close(self) -> None:
        """Declare the end of the body.

        :raises MultipartError: when the closing delimiter was not seen.
        """
        if self._state != self._DONE:
            raise MultipartError("multipart body ended before its closing boundary")

    def _emit(self, data: memoryview) -> None:
        if self._in_preamble:
            return
        if self._sink is not None:
            self._sink.write(data)

    def _finish_part(self) -> None:
        if self._in_preamble:
            self._in_preamble = False
            return
        if self._sink is not None:
            self._sink.finish()
            self._sink = None

    def _start_part(self, raw_headers: bytes) -> None:
        self.parts_seen += 1
        if self.parts_seen > MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} multipart parts")
        disposition = ""
        content_type: str | None = None
        for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise MultipartError(f"malformed multipart header line {line[:80]!r}")
            lowered = name.strip().lower()
            if lowered == "content-disposition":
                disposition = value.strip()
            elif lowered == "content-type":
                content_type = value.strip()
        if not disposition.lower().startswith("form-data"):
            raise MultipartError("multipart part without Content-Disposition: form-data")
        params = parse_header_params(disposition)
        if "name" not in params:
            raise MultipartError("multipart part without a name")
        filename = params.get("filename")
        if "filename*" in params:
            encoded = params["filename*"]
            charset, _, rest = encoded.partition("''")
            filename = unquote(rest or encoded, encoding=charset or "utf-8", errors="replace")
        self._sink = self._open_sink(params["name"], filename, content_type)
