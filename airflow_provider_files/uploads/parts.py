"""Sending an upload's parts: bodies that stop at once on request, the parallel schedule, the md5 reader."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from airflow_provider_files.api.bodies import BodySource
from airflow_provider_files.uploads.errors import SourceChangedError
from airflow_provider_files.uploads.sources import UploadSource, md5_of


class Stopped(Exception):
    """Raised inside a part's body when the run is stopping, which aborts the request at once."""


class WatchedBody:
    """A part's body that stops streaming as soon as ``should_stop()`` says so.

    :param inner: the part's bytes.
    :param should_stop: polled before each chunk.
    """

    def __init__(self, inner: BodySource, should_stop: Callable[[], bool]) -> None:
        self._inner = inner
        self._should_stop = should_stop

    @property
    def length(self) -> int | None:
        return self._inner.length

    @property
    def replayable(self) -> bool:
        # Once stopping, the client must not retry (nor sleep before retrying) this part.
        return self._inner.replayable and not self._should_stop()

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._inner.chunks():
            if self._should_stop():
                raise Stopped()
            yield chunk


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
