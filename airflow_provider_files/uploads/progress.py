"""Progress reports of an upload (what they hold, and when to make one), and human-readable sizes,
rates and counts (one unit system, binary, for every message of the package)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.I)


def parse_size_bytes(text: str | int) -> int:
    """``"32MiB"``, ``"64MB"``, ``"1048576"`` -> bytes (MB = 10**6, MiB = 2**20)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE_PATTERN.match(str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (use bytes or a unit: KiB, MiB, GiB, KB, MB, GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_bytes(size: float) -> str:
    """Binary units, as the API's limits are given: ``16 MiB``, ``1.5 GiB``, ``512 KiB``, ``900 B``.

    Every size in a message of this package is written with this; rates with :func:`format_rate`.
    """
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= factor:
            value = size / factor
            text = f"{value:.2f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"
            return f"{text} {unit}"
    return f"{size:.0f} B"


def format_rate(bytes_per_s: float) -> str:
    """A transfer rate in MiB/s with one decimal: ``85.3 MiB/s``."""
    return f"{bytes_per_s / 2**20:.1f} MiB/s"


def plural(count: int, noun: str) -> str:
    """``1 part``, ``3 parts``, ``1,000 parts``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass(frozen=True)
class UploadProgress:
    """Where an upload stands; ``bytes_done`` counts acknowledged parts (resumed parts included).

    :param bytes_done: bytes of the parts the server has acknowledged.
    :param total_bytes: size of the source.
    :param parts_done: acknowledged parts.
    :param parts_total: parts in all.
    :param elapsed_s: seconds since this upload run began.
    :param rate_bytes_per_s: bytes acknowledged in this run per second of this run.
    :param eta_s: estimated seconds left, ``None`` until a rate is known.
    """

    bytes_done: int
    total_bytes: int
    parts_done: int
    parts_total: int
    elapsed_s: float
    rate_bytes_per_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.total_bytes if self.total_bytes else 1.0

    def describe(self) -> str:
        """E.g. ``42% 310 MiB of 740 MiB, 85.3 MiB/s, ETA 5s``."""
        text = (
            f"{self.fraction * 100:.0f}% {format_bytes(self.bytes_done)} of {format_bytes(self.total_bytes)}, "
            f"{format_rate(self.rate_bytes_per_s)}"
        )
        if self.eta_s is not None and self.bytes_done < self.total_bytes:
            text += f", ETA {format_duration(self.eta_s)}"
        return text


class ProgressReporter:
    """Turns an upload's counters into :class:`UploadProgress` reports, at most one per interval.

    A report is only made when more bytes are done than at the last one; ``force`` skips the
    interval (the final report once every part is acknowledged).

    :param callback: receives each report.
    :param interval_s: minimum seconds between two reports (0: every change).
    :param total_bytes: size of the source.
    :param started: ``time.monotonic()`` when the run began.
    """

    def __init__(
        self, callback: Callable[[UploadProgress], None], interval_s: float, total_bytes: int, started: float
    ) -> None:
        self.callback = callback
        self.interval_s = interval_s
        self.total_bytes = total_bytes
        self.started = started
        self.last_report = 0.0
        self.reported_done = -1

    def wait_s(self, cap_s: float) -> float:
        """Seconds until the next report is due, at most ``cap_s``."""
        if not self.interval_s:
            return cap_s
        return min(cap_s, max(0.0, self.interval_s - (time.monotonic() - self.last_report)))

    def report(
        self, *, bytes_done: int, bytes_sent: int, parts_done: int, parts_total: int, force: bool = False
    ) -> None:
        """Report, if due.

        :param bytes_done: bytes acknowledged, earlier runs included.
        :param bytes_sent: bytes acknowledged in this run (the rate counts only these).
        :param parts_done: parts acknowledged.
        :param parts_total: parts in all.
        :param force: report even if the interval has not passed.
        """
        now = time.monotonic()
        if bytes_done == self.reported_done:
            return
        if not force and now - self.last_report < self.interval_s:
            return
        elapsed = now - self.started
        rate = bytes_sent / elapsed if elapsed > 0 else 0.0
        self.last_report = now
        self.reported_done = bytes_done
        self.callback(
            UploadProgress(
                bytes_done=bytes_done,
                total_bytes=self.total_bytes,
                parts_done=parts_done,
                parts_total=parts_total,
                elapsed_s=elapsed,
                rate_bytes_per_s=rate,
                eta_s=(self.total_bytes - bytes_done) / rate if rate > 0 else None,
            )
        )
