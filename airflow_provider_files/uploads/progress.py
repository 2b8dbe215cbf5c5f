"""Progress reports of an upload, and human-readable sizes (in and out)."""

from __future__ import annotations

import re
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
    """Decimal units, as transfer rates are usually quoted: ``310 MB``, ``1.07 GB``."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(size) >= factor:
            value = size / factor
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size:.0f} B"


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
        """E.g. ``42% 310 MB of 740 MB, 85.3 MB/s, ETA 5s``."""
        text = (
            f"{self.fraction * 100:.0f}% {format_bytes(self.bytes_done)} of {format_bytes(self.total_bytes)}, "
            f"{self.rate_bytes_per_s / 1e6:.1f} MB/s"
        )
        if self.eta_s is not None and self.bytes_done < self.total_bytes:
            text += f", ETA {format_duration(self.eta_s)}"
        return text
