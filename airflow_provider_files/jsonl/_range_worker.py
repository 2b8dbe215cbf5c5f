"""The process that checks line-aligned ranges of a batch file for the parallel validator.

``python .../jsonl/_range_worker.py`` (run by its path, so that it imports nothing but ``orjson``
and the standard library: a worker starts in a few tens of milliseconds) reads frames from stdin
and writes one result frame per range to stdout. A frame is an 8-byte little-endian length and
that many bytes; the first frame is the configuration (``marshal`` of :class:`RangeRules`), each
next one a range of whole lines (ending with ``\\n``, except the file's last range).

A range's result says only what can be known without the lines before it: whether every line
passes every per-line rule on its own with one endpoint and one model (then its ``custom_id``
values come back, in order, for the parent to check uniqueness and to merge the file-wide state),
or not (then the parent checks the range's lines itself, with the state the lines before left).
The parent (:mod:`~airflow_provider_files.jsonl._parallel`) decides everything that spans ranges.
"""

from __future__ import annotations

import marshal
import struct
import sys
from typing import IO, Any, Final, NamedTuple

import orjson

FRAME_HEADER: Final = struct.Struct("<Q")

#: Every line passes the per-line rules with one endpoint and one model.
CLEAN: Final = 0
#: Some line breaks a rule, or the lines disagree on endpoint or model: the parent checks them.
DIRTY: Final = 1
#: A line is longer than the cap: the parent validates the whole file the serial way.
TOO_LONG: Final = 2

#: ``(status, lines, url, model, custom_ids)``; url, model and ids only when ``CLEAN``.
RangeResult = tuple[int, int, "str | None", "str | None", "list[str] | None"]


class RangeRules(NamedTuple):
    """What a worker needs to know of the rules (sent as the first frame)."""

    endpoints: frozenset[str]
    max_line_bytes: int
    model_required: frozenset[str]
    moderations: str

    def to_bytes(self) -> bytes:
        return marshal.dumps(
            (sorted(self.endpoints), self.max_line_bytes, sorted(self.model_required), self.moderations)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RangeRules:
        endpoints, max_line_bytes, model_required, moderations = marshal.loads(data)
        return cls(frozenset(endpoints), max_line_bytes, frozenset(model_required), moderations)


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a range, without their ``\\n`` (the piece after a final ``\\n`` is no line)."""
    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()
    return lines


def check_range(data: bytes, rules: RangeRules) -> RangeResult:
    """Check the lines of ``data`` on their own (see the module's docstring)."""
    endpoints, max_line_bytes = rules.endpoints, rules.max_line_bytes
    lines = split_lines(data)
    count = len(lines)
    if len(data) > max_line_bytes and any(len(line) > max_line_bytes for line in lines):
        return TOO_LONG, count, None, None, None
    ids: list[str] = []
    append = ids.append
    loads = orjson.loads
    url: Any = None
    model: Any = None
    plain = True
    try:
        first = loads(lines[0])
        url = first["url"]
        model = first["body"].get("model")
        if (
            type(url) is not str
            or url not in endpoints
            or (model is None and url in rules.model_required)
            or (model is not None and (type(model) is not str or not model))
        ):
            return DIRTY, count, None, None, None
        plain = url != rules.moderations
        for line in lines:
            request = loads(line)
            custom_id = request["custom_id"]
            body = request["body"]
            if not (
                type(request) is dict
                and type(body) is dict
                and request["method"] == "POST"
                and request["url"] == url
                and body.get("model") == model
                and type(custom_id) is str
                and custom_id
                and (plain or ("input" in body and body.get("stream") is not True))
            ):
                return DIRTY, count, None, None, None
            append(custom_id)
    except Exception:  # any failure is some broken rule: the parent finds out which
        return DIRTY, count, None, None, None
    return CLEAN, count, url, model, ids


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's payload, or ``None`` at the end of the stream."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(FRAME_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    config = read_frame(stdin)
    if config is None:
        return 1
    rules = RangeRules.from_bytes(config)
    while (data := read_frame(stdin)) is not None:
        write_frame(stdout, marshal.dumps(check_range(data, rules)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
