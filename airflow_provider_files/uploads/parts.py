"""Sending an upload's parts: bodies that stop at once on request, the parallel schedule, the md5 reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from airflow_provider_files.api.bodies import BodySource
from airflow_provider_files.uploads.errors import SourceChangedError
from airflow_provider_files.uploads.sources import UploadSource, md5_of

# A part starts at least this long after the part before it, waiting at most this long for that
# part to start sending, polling at this step.
START_ORDER_GAP_S = 0.02
START_ORDER_MAX_WAIT_S = 2.0
START_ORDER_POLL_S = 0.05


class Stopped(Exception):
    """Raised inside a part's body when the run is stopping, which aborts the request at once."""


class WatchedBody:
    """A part's body that stops streaming as soon as ``should_stop()`` says so.

    :param inner: the part's bytes.
    :param should_stop: polled before each chunk.
    :param on_start: called when the body starts streaming (the request's headers are sent).
    """

    def __init__(
        self,
        inner: BodySource,
        should_stop: Callable[[], bool],
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self._inner = inner
        self._should_stop = should_stop
        self._on_start = on_start

    @property
    def length(self) -> int | None:
        return self._inner.length

    @property
    def replayable(self) -> bool:
        # Once stopping, the client must not retry (nor sleep before retrying) this part.
        return self._inner.replayable and not self._should_stop()

    def chunks(self) -> Iterator[bytes]:
        if self._on_start is not None:  # the request's headers are in the socket
            self._on_start()
        for chunk in self._inner.chunks():
            if self._should_stop():
                raise Stopped()
            yield chunk


class StartOrder:
    """Starts the parts' requests in schedule order, a little apart.

    Each part waits until the one scheduled before it is sending, and then ``gap_s`` more: a
    server reads many connections in one turn of its event loop, so two requests started within
    the same instant may reach it in either order. A server that hashes parts as they arrive,
    in the order their requests began (as the emulator does), then has nothing left to hash at
    ``complete``. The order is a courtesy, not a rule: a part whose predecessor has not started
    within ``max_wait_s`` (a retry sleeping, say) goes anyway.

    :param indexes: the parts, in the order they are scheduled.
    :param gap_s: the least time between the starts of two parts in a row (default
        :data:`START_ORDER_GAP_S`).
    :param max_wait_s: the longest a part waits for its predecessor (default
        :data:`START_ORDER_MAX_WAIT_S`).
    """

    def __init__(
        self,
        indexes: Sequence[int],
        gap_s: float | None = None,
        max_wait_s: float | None = None,
    ) -> None:
        self._started = {index: threading.Event() for index in indexes}
        self._started_at: dict[int, float] = {}
        self._previous = dict(zip(indexes[1:], indexes[:-1], strict=True))
        self._gap_s = START_ORDER_GAP_S if gap_s is None else gap_s
        self._max_wait_s = START_ORDER_MAX_WAIT_S if max_wait_s is None else max_wait_s

    def wait_turn(self, index: int, should_stop: Callable[[], bool]) -> None:
        """Block until the part scheduled before ``index`` has been sending for ``gap_s`` (or a
        stop, or the limit)."""
        previous = self._previous.get(index)
        if previous is None:
            return
        started = self._started[previous]
        deadline = time.monotonic() + self._max_wait_s
        while not started.wait(START_ORDER_POLL_S):
            if should_stop() or time.monotonic() >= deadline:
                return
        left_s = self._started_at.get(previous, 0.0) + self._gap_s - time.monotonic()
        if left_s > 0:
            time.sleep(left_s)

    def started(self, index: int) -> None:
        """``index`` is sending (or has finished, or failed): the next part may start."""
        if not self._started[index].is_set():
            self._started_at[index] = time.monotonic()
            self._started[index].set()


class Md5Reader(threading.Thread):
    """Reads the whole source in order and hashes it, beside the parallel part uploads.

    :param source: the file being uploaded.
    :param should_stop: polled while reading; the reader gives up (md5 ``""``) when it says so.
    """

    def __init__(self, source: UploadSource, should_stop: Callable[[], bool]) -> None:
        super().__init__(name="upload-md5", daemon=True)
        self._source = source
        self._should_stop = should_stop
        self.md5 = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.md5 = md5_of(self._source, stop=self._should_stop)
        except BaseException as exc:
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error is not None:
            if isinstance(self.error, OSError):
                raise SourceChangedError(f"could not read {self._source.name} for its md5: {self.error}")
            raise self.error
        return self.md5


def send_in_parallel(
    indexes: list[int],
    send: Callable[[int], None],
    *,
    concurrency: int,
    should_stop: Callable[[], bool],
    stop: Callable[[], None],
    tick_wait_s: Callable[[], float],
    on_tick: Callable[[], None],
    wait_in_flight: Callable[[BaseException | None], bool],
) -> BaseException | None:
    """Call ``send(index)`` for every index, ``concurrency`` at a time; return the first failure.

    After the first failure (or once ``should_stop()``) no new part starts and ``stop()`` is
    called; whether the parts still in flight are waited for is ``wait_in_flight(failure)``.
    ``on_tick`` runs at least every ``tick_wait_s()`` seconds while parts are in flight.
    """
    queue = iter(indexes)
    failure: BaseException | None = None
    in_flight: set[Future[None]] = set()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload-part")
    try:
        for index in queue:
            in_flight.add(pool.submit(send, index))
            if len(in_flight) >= concurrency:
                break
        while in_flight:
            done, in_flight = wait(in_flight, timeout=tick_wait_s(), return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                # errors of parts stopped on purpose (cancel, or after the first failure) are noise
                if error is not None and failure is None and not should_stop():
                    failure = error
                    stop()
            if failure is None and not should_stop():
                for index in queue:
                    in_flight.add(pool.submit(send, index))
                    if len(in_flight) >= concurrency:
                        break
            elif not wait_in_flight(failure):
                break
            on_tick()
    finally:
        if failure is not None or should_stop():
            stop()
        pool.shutdown(wait=wait_in_flight(failure), cancel_futures=True)
    return failure
