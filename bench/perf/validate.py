"""Batch-file validation throughput: ``validate_batch_file`` against a plain ``json.loads`` loop.

``python -m bench.perf.validate [--size-mb 200] [--runs 3] [--line-bytes 4000] [--non-ascii 0.05] [--dir DIR]``

Generates (with :mod:`bench.datagen`, or reuses) a batch file of chat requests, then times both contenders
``--runs`` times, alternating, and prints best and median MB/s (MB = 10**6 bytes) and the ratio.
The default file is a valid batch at the contract's limits: about 200 MB in about 50,000 lines.

``run(path)`` is the entry point for ``make bench`` (:mod:`bench.perf.measure`): it validates ``path`` once
per run and returns a dict of plain figures with ``valid`` and ``lines``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_files.jsonl import BatchLimits, validate_batch_file
from bench.datagen import MB, write_batch_file

DEFAULT_SIZE_BYTES = 200 * MB
DEFAULT_LINE_BYTES = 4_000
GENERATED_NAME = "bench-validate-{size}-{line}-{non_ascii}.jsonl"


def json_loads_loop(path: Path) -> int:
    """The baseline: ``json.loads`` on every line and a set of ``custom_id`` values."""
    ids: set[str] = set()
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            ids.add(json.loads(line)["custom_id"])
            count += 1
    return count


def _time(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    outcome = call()
    return time.perf_counter() - started, outcome


def run(
    path: Path | str,
    *,
    runs: int = 1,
    compare: bool = False,
    limits: BatchLimits | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Validate ``path`` ``runs`` times (and, with ``compare``, the baseline too, alternating).

    :param workers: as :func:`validate_batch_file`'s (``None``: worker processes for a large local file from three cores up).

    :return: plain figures: ``valid``, ``lines``, ``bytes``, ``runs``, ``ours_best_mb_s``,
        ``ours_median_mb_s``; with ``compare`` also ``baseline_*`` and ``ratio_*``.
    """
    path = Path(path)
    size = path.stat().st_size
    limits = limits or BatchLimits()
    ours: list[float] = []
    baseline: list[float] = []
    report = None
    for _ in range(runs):
        elapsed, report = _time(lambda: validate_batch_file(path, limits=limits, workers=workers))
        ours.append(elapsed)
        if compare:
            baseline.append(_time(lambda: json_loads_loop(path))[0])
    assert report is not None
    figures: dict[str, Any] = {
        "valid": report.valid,
        "lines": report.lines,
        "bytes": size,
        "runs": runs,
        "ours_best_mb_s": round(size / min(ours) / MB, 1),
        "ours_median_mb_s": round(size / statistics.median(ours) / MB, 1),
    }
    if compare:
        figures["baseline_best_mb_s"] = round(size / min(baseline) / MB, 1)
        figures["baseline_median_mb_s"] = round(size / statistics.median(baseline) / MB, 1)
        figures["ratio_best"] = round(min(baseline) / min(ours), 2)
        figures["ratio_median"] = round(statistics.median(baseline) / statistics.median(ours), 2)
    if not report.valid:
        figures["first_error"] = str(report.errors[0]) if report.errors else ""
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=DEFAULT_SIZE_BYTES / MB)
    parser.add_argument("--line-bytes", type=int, default=DEFAULT_LINE_BYTES)
    parser.add_argument("--non-ascii", type=float, default=0.05, help="share of lines with non-ASCII words")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the file is kept"
    )
    args = parser.parse_args(argv)
    size = int(args.size_mb * MB)
    path = args.dir / GENERATED_NAME.format(size=size, line=args.line_bytes, non_ascii=args.non_ascii)
    if not path.exists():
        started = time.perf_counter()
        data = write_batch_file(path, max_bytes=size, line_bytes=args.line_bytes, non_ascii=args.non_ascii)
        print(
            f"generated {path}: {data.lines:,} lines, {data.size:,} bytes in {time.perf_counter() - started:.1f} s"
        )
    # Long files of short lines exceed the 50,000-request limit; time the rules, not that one error.
    limits = BatchLimits(max_lines=None)
    figures = run(path, runs=args.runs, compare=True, limits=limits)
    print(json.dumps(figures, indent=2))
    print(
        f"validate_batch_file: best {figures['ours_best_mb_s']} MB/s, median {figures['ours_median_mb_s']} MB/s; "
        f"json.loads loop: best {figures['baseline_best_mb_s']} MB/s, median {figures['baseline_median_mb_s']} MB/s; "
        f"ratio {figures['ratio_best']}x (best), {figures['ratio_median']}x (median)"
    )
    return 0 if figures["valid"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
