"""Validation of a large local batch file on several cores: line-aligned ranges checked in worker processes.

This process reads the file once, in :data:`RANGE_BYTES` blocks, and the md5 of those bytes is
taken beside it by :class:`~airflow_provider_files.jsonl._hashing.HashingReader` (one sequential
stream, as in the serial pass). Each block, cut after its last newline (the rest goes to the next
one), is sent to a worker process (:mod:`~airflow_provider_files.jsonl._range_worker`) that
parses its lines (``orjson`` holds the GIL, so threads would not share the parsing) and answers
whether every line passes the per-line rules on its own with one endpoint and one model.

The results are merged here in file order into one :class:`~airflow_provider_files.jsonl.checker.BatchChecker`:
a clean range only registers its ``custom_id`` values and, for the first one, the endpoint and
model; any other range (and a clean one whose ids or model clash with the lines before it) is
checked line by line by the same checker, with the same state the serial pass would have there.
So the errors, their order, their line numbers and the limit on kept errors are those of the
serial pass. Whatever the serial pass treats specially (a BOM, a line over the cap, the byte or
line limit) makes this pass give up (:func:`check_in_ranges` returns ``None``), and the caller
validates the file the serial way.
"""

from __future__ import annotations

import collections
import contextlib
import marshal
import os
import queue
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import IO, Final, cast

from airflow_provider_files.jsonl import _range_worker
from airflow_provider_files.jsonl._hashing import HashingReader
from airflow_provider_files.jsonl._range_worker import (
    CLEAN,
    TOO_LONG,
    RangeResult,
    RangeRules,
    read_frame,
    split_lines,
    write_frame,
)
from airflow_provider_files.jsonl.checker import BatchChecker
from airflow_provider_files.jsonl.report import (
    MODEL_REQUIRED_ENDPOINTS,
    MODERATIONS_ENDPOINT,
    UTF8_BOM,
    BatchLimits,
)

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None

#: Files smaller than this are validated serially when the number of workers is left to us:
#: starting the workers costs about as much as checking this much on one core.
PARALLEL_MIN_BYTES: Final = 64 * 1024 * 1024
#: Bytes read (and sent to a worker) at a time.
RANGE_BYTES: Final = 4 * 1024 * 1024
#: The buffer asked for the pipe to each worker.
PIPE_BYTES: Final = 1024 * 1024
#: Most workers started, whatever the number of cores.
MAX_WORKERS: Final = 4
#: Ranges queued per worker beyond the one it checks: keeps it busy while the parent merges.
IN_FLIGHT_PER_WORKER: Final = 2
# Run by its path: it then imports only orjson and the standard library, not this package.
_WORKER_SCRIPT: Final = _range_worker.__file__


def auto_workers() -> int:
    """Workers to use when the caller leaves it to us: one per core but one, up to :data:`MAX_WORKERS`.

    The core left over reads the file and hashes it. On two cores none: the serial pass already
    keeps both busy (parsing on one, the md5 thread on the other), and splitting the parsing
    between processes only adds the cost of sending the ranges (measured in ``make bench``).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores - 1, MAX_WORKERS) if cores >= 3 else 0


def local_file_size(source: object) -> int | None:
    """The size of ``source`` if it is a path (``str`` or ``os.PathLike``) to a regular local file."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        status = os.stat(source)
    except (OSError, TypeError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


@dataclass
class ReadStats:
    """What the read found out about the file as a whole (the attributes ``file_level_checks`` reads)."""

    bytes_read: int = 0
    saw_carriage_return: bool = False
    ends_with_newline: bool = True
    stopped: None = None


@dataclass
class RangesOutcome:
    """The state after every line was checked, for :func:`~airflow_provider_files.jsonl.validation.validate_batch_file`."""

    checker: BatchChecker
    lines: int
    stats: ReadStats
    md5: str


def _widen_pipe(pipe: IO[bytes]) -> None:
    """Give the pipe a 1 MiB buffer (Linux; else left as it is): fewer wake-ups per range sent."""
    module = fcntl
    set_pipe_size = getattr(module, "F_SETPIPE_SZ", None)
    if module is not None and set_pipe_size is not None:
        with contextlib.suppress(OSError):
            module.fcntl(pipe.fileno(), set_pipe_size, PIPE_BYTES)


class WorkerStopped(RuntimeError):
    """A worker process could not start or ended before answering; the file is validated serially."""


class _Worker:
    """One worker process, fed by a writer thread and drained by a reader thread (so neither pipe blocks the parent)."""

    def __init__(self, config: bytes) -> None:
        try:
            self._process = subprocess.Popen(
                [sys.executable, _WORKER_SCRIPT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as error:
            raise WorkerStopped(f"a validation worker could not start: {error}") from error
        _widen_pipe(cast(IO[bytes], self._process.stdin))
        self._to_send: queue.Queue[bytes | None] = queue.Queue()
        self._results: queue.Queue[RangeResult | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, name="jsonl-range-writer", daemon=True)
        self._reader = threading.Thread(target=self._read, name="jsonl-range-reader", daemon=True)
        self._to_send.put(config)
        self._writer.start()
        self._reader.start()

    def send(self, data: bytes) -> None:
        self._to_send.put(data)

    def result(self) -> RangeResult:
        """The result of the oldest range sent; raises if the worker died."""
        outcome = self._results.get()
        if outcome is None:
            raise WorkerStopped("a validation worker stopped")
        return outcome

    def close(self) -> None:
        self._to_send.put(None)
        self._writer.join()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join()

    def _write(self) -> None:
        stdin = cast(IO[bytes], self._process.stdin)
        try:
            while (data := self._to_send.get()) is not None:
                write_frame(stdin, data)
        except OSError:  # the worker is gone; the reader reports it
            self._process.kill()
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _read(self) -> None:
        stdout = cast(IO[bytes], self._process.stdout)
        try:
            while (payload := read_frame(stdout)) is not None:
                self._results.put(marshal.loads(payload))
        except (OSError, ValueError, EOFError):
            pass
        finally:
            self._results.put(None)


class _Pool:
    def __init__(self, count: int, limits: BatchLimits) -> None:
        rules = RangeRules(
            limits.endpoints, limits.line_cap_bytes, MODEL_REQUIRED_ENDPOINTS, MODERATIONS_ENDPOINT
        )
        config = rules.to_bytes()
        self.workers: list[_Worker] = []
        try:
            for _ in range(count):
                self.workers.append(_Worker(config))
        except WorkerStopped:
            self.__exit__(None, None, None)
            raise

    def __enter__(self) -> _Pool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for worker in self.workers:
            worker.close()


def check_in_ranges(
    path: str | os.PathLike[str],
    limits: BatchLimits,
    max_errors: int,
    *,
    workers: int,
    range_bytes: int | None = None,
) -> RangesOutcome | None:
    """Check every line of the local file ``path`` in ``workers`` processes; ``None`` to go serial.

    :param range_bytes: bytes read and sent to a worker at a time; default :data:`RANGE_BYTES`.
    """
    try:
        return _check_in_ranges(
            path, limits, max_errors, workers=workers, range_bytes=range_bytes or RANGE_BYTES
        )
    except WorkerStopped:
        return None


def _check_in_ranges(
    path: str | os.PathLike[str], limits: BatchLimits, max_errors: int, *, workers: int, range_bytes: int
) -> RangesOutcome | None:
    checker = BatchChecker(limits.endpoints, max_errors)
    cap = limits.line_cap_bytes
    stats = ReadStats()
    in_flight: collections.deque[tuple[bytes, _Worker]] = collections.deque()
    next_line = 1

    def merge_oldest() -> bool:
        nonlocal next_line
        data, worker = in_flight.popleft()
        status, count, url, model, ids = worker.result()
        first_line = next_line
        next_line += count
        if status == TOO_LONG or (limits.max_lines is not None and next_line - 1 > limits.max_lines):
            return False
        clean = status == CLEAN and ids is not None and url is not None
        if clean and checker.merge_clean(cast("list[str]", ids), first_line, cast(str, url), model):
            return True
        checker.check_lines(split_lines(data), first_line)
        return True

    with (
        open(path, "rb", buffering=0) as stream,
        HashingReader(stream) as hashed,
        _Pool(workers, limits) as pool,
    ):
        carry: list[bytes] = []
        carry_bytes = 0
        sent = 0
        while block := hashed.read(range_bytes):
            if stats.bytes_read == 0 and block[: len(UTF8_BOM)] == UTF8_BOM:
                return None
            stats.bytes_read += len(block)
            if limits.max_bytes is not None and stats.bytes_read > limits.max_bytes:
                return None
            if not stats.saw_carriage_return and b"\r" in block:
                stats.saw_carriage_return = True
            stats.ends_with_newline = block.endswith(b"\n")
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                carry.append(block)
                carry_bytes += len(block)
                if carry_bytes > cap:
                    return None
                continue
            data = b"".join([*carry, block[:cut]]) if carry else block[:cut]
            carry, carry_bytes = ([block[cut:]], len(block) - cut) if cut < len(block) else ([], 0)
            worker = pool.workers[sent % len(pool.workers)]
            worker.send(data)
            in_flight.append((data, worker))
            sent += 1
            while len(in_flight) > len(pool.workers) * IN_FLIGHT_PER_WORKER:
                if not merge_oldest():
                    return None
        if carry:
            data = b"".join(carry)
            worker = pool.workers[sent % len(pool.workers)]
            worker.send(data)
            in_flight.append((data, worker))
        while in_flight:
            if not merge_oldest():
                return None
        md5 = hashed.hexdigest()
    if stats.bytes_read == 0:
        return None
    return RangesOutcome(checker, next_line - 1, stats, md5)
