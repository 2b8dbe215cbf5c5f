"""Batch-file validation throughput: ``validate_batch_file`` against a plain ``json.loads`` loop.

``python -m bench.bench_validate [--size-mb 200] [--runs 3] [--line-bytes 4000] [--non-ascii 0.05] [--dir DIR]``

Generates (or reuses) a realistic batch file of chat requests, then times both contenders
``--runs`` times, alternating, and prints best and median MB/s (MB = 10**6 bytes) and the ratio.
The default file is a valid batch at the contract's limits: about 200 MB in about 50,000 lines.

``run(path)`` is the entry point for ``make bench`` (``bench/run.py``): it validates ``path`` once
per run and returns a dict of plain figures with ``valid`` and ``lines``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from airflow_provider_files.jsonl import BatchLimits, validate_batch_file

MB = 10**6
DEFAULT_SIZE_BYTES = 200 * MB
DEFAULT_LINE_BYTES = 4_000
GENERATED_NAME = "bench-validate-{size}-{line}-{non_ascii}.jsonl"

_ENGLISH_TEXT = (
    "the customer said that delivery was late but the product quality is good and the price fair "
    "please summarise this review in one sentence and classify its sentiment as positive negative "
    "or neutral also extract any product names order numbers or dates mentioned by the customer"
)
_ENGLISH = _ENGLISH_TEXT.split(" ")
_NON_ASCII = ["café", "naïve", "über", "déjà", "façade", "smörgåsbord", "日本語", "données", "€", "—"]


def generate_batch_file(
    path: Path,
    size_bytes: int,
    *,
    line_bytes: int = DEFAULT_LINE_BYTES,
    non_ascii: float = 0.0,
    seed: int = 7,
) -> tuple[int, int]:
    """Write chat-completion request lines (about ``line_bytes`` each) up to ``size_bytes``.

    :param non_ascii: share of lines whose user message contains non-ASCII words.
    :return: (lines, bytes) written.
    """
    rng = random.Random(seed)
    lines = written = 0
    with open(path, "wb") as handle:
        pending: list[bytes] = []
        while True:
            words = [
                rng.choice(_ENGLISH) for _ in range(max(8, int(rng.gauss(line_bytes, line_bytes / 4)) // 6))
            ]
            if rng.random() < non_ascii:
                for _ in range(len(words) // 20 + 1):
                    words[rng.randrange(len(words))] = rng.choice(_NON_ASCII)
            request = {
                "custom_id": f"request-{lines:08d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [
                        {"role": "system", "content": "You are a careful assistant that classifies reviews."},
                        {"role": "user", "content": " ".join(words)},
                    ],
                    "max_tokens": 64 + lines % 512,
                    "temperature": 0.2,
                },
            }
            line = orjson.dumps(request) + b"\n"
            if written + len(line) > size_bytes:
                break
            pending.append(line)
            written += len(line)
            lines += 1
            if len(pending) >= 4096:
                handle.write(b"".join(pending))
                pending.clear()
        handle.write(b"".join(pending))
    return lines, written


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
    path: Path | str, *, runs: int = 1, compare: bool = False, limits: BatchLimits | None = None
) -> dict[str, Any]:
    """Validate ``path`` ``runs`` times (and, with ``compare``, the baseline too, alternating).

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
        elapsed, report = _time(lambda: validate_batch_file(path, limits=limits))
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
        lines, written = generate_batch_file(path, size, line_bytes=args.line_bytes, non_ascii=args.non_ascii)
        print(
            f"generated {path}: {lines:,} lines, {written:,} bytes in {time.perf_counter() - started:.1f} s"
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
