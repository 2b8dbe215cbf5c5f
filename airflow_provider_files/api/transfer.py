"""How long one attempt of a request may take, and how much of an answer is read.

``timeout_s`` bounds each read and each write; a server that trickles a byte now and then
never trips it. So every attempt also has a deadline: ``timeout_s`` plus the time its bytes
take at :data:`MIN_TRANSFER_RATE_BYTES_PER_S` (the request body's bytes, known before
sending, or counted as they are sent for a stream of unknown length; for a streamed download,
also the bytes received so far). The async client cuts an attempt off at its deadline whatever
it is doing; the blocking one checks it at each chunk sent or received, so a server that
trickles even the response head is bounded there only by ``timeout_s`` per read.
A JSON answer is read up to :data:`MAX_JSON_RESPONSE_BYTES`, an error answer up to
:data:`MAX_ERROR_BODY_BYTES`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from airflow_provider_files.api.limits import KIB, MIB

#: The slowest transfer an attempt is given time for, beyond ``timeout_s`` (512 kbit/s).
MIN_TRANSFER_RATE_BYTES_PER_S = 64 * KIB
#: The largest JSON answer read (a page of 10,000 files is about 2 MB).
MAX_JSON_RESPONSE_BYTES = 8 * MIB
#: The start of an error answer that is read; the rest is dropped (the message quotes 500 characters).
MAX_ERROR_BODY_BYTES = 64 * KIB


class DeadlineExceeded(Exception):
    """An attempt ran past its deadline (the clients turn this into an ``ApiTimeoutError``).

    :param allowed_s: the time the attempt was given.
    """

    def __init__(self, allowed_s: float) -> None:
        super().__init__(f"did not finish within its deadline of {allowed_s:.1f} s")
        self.allowed_s = allowed_s


class ResponseTooLarge(Exception):
    """A JSON answer larger than :data:`MAX_JSON_RESPONSE_BYTES` (the clients describe the request).

    :param limit_bytes: the cap that was passed.
    """

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"answered with more than {limit_bytes // MIB} MiB of JSON")
        self.limit_bytes = limit_bytes


@dataclass
class Deadline:
    """When one attempt must be over: ``timeout_s`` plus time for the bytes it moves.

    :param timeout_s: the fixed allowance (the settings' ``timeout_s``).
    :param body_bytes: bytes of the request body, known before sending; ``None`` for a stream of
        unknown length, which is given time as it is sent.
    """

    timeout_s: float
    body_bytes: int | None = 0
    started: float = field(default_factory=time.monotonic)
    streamed_bytes: int = 0

    @property
    def fixed(self) -> bool:
        """Whether the deadline is known before sending (it grows only with a download's bytes)."""
        return self.body_bytes is not None

    def sent(self, size: int) -> None:
        """``size`` more bytes of the body were handed to the transport."""
        if self.body_bytes is None:
            self.streamed_bytes += size

    def received(self, size: int) -> None:
        """``size`` more bytes of a streamed download arrived."""
        self.streamed_bytes += size

    def allowed_s(self) -> float:
        """The time the attempt may take, with what was streamed so far."""
        return self.timeout_s + ((self.body_bytes or 0) + self.streamed_bytes) / MIN_TRANSFER_RATE_BYTES_PER_S

    def remaining_s(self) -> float:
        return self.started + self.allowed_s() - time.monotonic()

    def check(self) -> None:
        """Raise :class:`DeadlineExceeded` when the attempt is past its deadline."""
        if self.remaining_s() <= 0:
            raise DeadlineExceeded(self.allowed_s())


class CappedBody:
    """Collects the chunks of an answer up to ``limit_bytes``.

    :param limit_bytes: the most that is kept.
    :param truncate: past the limit, keep the start and stop (``True``, for error answers) or
        raise :class:`ResponseTooLarge` (``False``, for JSON answers).
    """

    def __init__(self, limit_bytes: int, *, truncate: bool) -> None:
        self.limit_bytes = limit_bytes
        self.truncate = truncate
        self._chunks: list[bytes] = []
        self._size = 0

    def refuse_early(self, content_length: str | None) -> None:
        """Refuse an answer whose announced length is already past the limit, before reading it."""
        if self.truncate or content_length is None:
            return
        try:
            announced = int(content_length)
        except ValueError:
            return
        if announced > self.limit_bytes:
            raise ResponseTooLarge(self.limit_bytes)

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; ``False`` when the start is kept whole and reading should stop (truncating only)."""
        room = self.limit_bytes - self._size
        if len(chunk) > room:
            if not self.truncate:
                raise ResponseTooLarge(self.limit_bytes)
            chunk = chunk[:room]
        self._chunks.append(chunk)
        self._size += len(chunk)
        return not self.truncate or self._size < self.limit_bytes

    def value(self) -> bytes:
        return b"".join(self._chunks)
