"""How long one attempt of a request may take, and how much of an answer is read.

``timeout_s`` bounds each read and each write; a server that trickles a byte now and then
never trips it. So every attempt also has a deadline: ``timeout_s`` plus the time its bytes
take at :data:`MIN_TRANSFER_RATE_BYTES_PER_S` (the request body's bytes, known before
sending, or counted as they are sent for a stream of unknown length; for a streamed download,
also the bytes received so far). The async client cuts an attempt off at its deadline whatever
it is doing. The blocking one runs each attempt under :func:`attempt_deadline`: its connections'
streams (see :func:`bound_reads_and_writes`) give every socket read and write at most the time
left, so a server that trickles even the response head ends there at the deadline too.
A JSON answer is read up to :data:`MAX_JSON_RESPONSE_BYTES`, an error answer up to
:data:`MAX_ERROR_BODY_BYTES`.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

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


# -- the blocking client's deadline, down to each socket read ------------------------------------

_ATTEMPT_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "airflow_provider_files_attempt_deadline", default=None
)


@contextlib.contextmanager
def attempt_deadline(deadline: Deadline) -> Iterator[Deadline]:
    """Bound every read and write of this thread's connections by ``deadline`` while the block runs."""
    token = _ATTEMPT_DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _ATTEMPT_DEADLINE.reset(token)


def _time_left(timeout: float | None) -> tuple[float | None, Deadline | None]:
    """The timeout of one socket operation: ``timeout``, or less when the attempt's deadline is nearer.

    Returns the timeout and the deadline when it is what bounds the operation.
    """
    deadline = _ATTEMPT_DEADLINE.get()
    if deadline is None:
        return timeout, None
    remaining = deadline.remaining_s()
    if remaining <= 0:
        raise DeadlineExceeded(deadline.allowed_s())
    if timeout is None or remaining < timeout:
        return remaining, deadline
    return timeout, None


class _DeadlineStream(httpcore.NetworkStream):
    """A connection's stream whose reads and writes end at the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bounded, deadline = _time_left(timeout)
        try:
            return self._stream.read(max_bytes, bounded)
        except httpcore.ReadTimeout:
            if deadline is not None:
                deadline.check()
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        bounded, deadline = _time_left(timeout)
        try:
            self._stream.write(buffer, bounded)
        except httpcore.WriteTimeout:
            if deadline is not None:
                deadline.check()
            raise

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Opens connections as the wrapped backend does, with streams bounded by the attempt's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_reads_and_writes(client: httpx.Client) -> int:
    """Make the connections of ``client``'s own transports (direct and through proxies) honour
    :func:`attempt_deadline`; a transport passed in by the caller (a test's mock) is left alone.

    httpx takes no network backend from its caller, so this sets the one of each connection pool
    it built (httpcore's ``network_backend``). Returns how many pools now are bounded.
    """
    transports = [client._transport, *client._mounts.values()]
    bounded = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None) if isinstance(transport, httpx.HTTPTransport) else None
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            bounded += 1
    return bounded
