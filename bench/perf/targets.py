"""The targets of DESIGN.md as one table, and the figures computed from it.

Each :class:`Target` row names a scenario, our contender, the peer it is compared with, how the
comparison is measured and the limit it must meet. :func:`compute_figures` turns the runs of a
bench into one :class:`Figure` per row: the printed table, ``latest.md``/``latest.json`` and the
README's headline rows all come from it, and so does each row's met / not met.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.datagen import MB, size_label

if TYPE_CHECKING:
    from bench.perf.measure import Run, Scenario


@dataclass
class Summary:
    """Median, min and max of one contender's runs in one scenario."""

    runs: int
    median_s: float
    min_s: float
    max_s: float
    median_mbps: float
    min_mbps: float
    max_mbps: float
    median_rss_mb: float
    max_rss_mb: float
    md5_ok: bool
    # the most bytes fetched per pass over the source, as a multiple of its size (object storage)
    max_fetched_ratio: float | None = None


def summarise(runs: list[Run], size_bytes: int) -> Summary | None:
    if not runs:
        return None
    times = [run.elapsed_s for run in runs]
    rss = [run.peak_rss_bytes / MB for run in runs]
    fetched = [run.detail["fetched_ratio"] for run in runs if "fetched_ratio" in run.detail]
    return Summary(
        runs=len(runs),
        median_s=statistics.median(times),
        min_s=min(times),
        max_s=max(times),
        median_mbps=size_bytes / statistics.median(times) / MB,
        min_mbps=size_bytes / max(times) / MB,
        max_mbps=size_bytes / min(times) / MB,
        median_rss_mb=statistics.median(rss),
        max_rss_mb=max(rss),
        md5_ok=all(run.md5_ok for run in runs),
        max_fetched_ratio=max(fetched) if fetched else None,
    )


@dataclass
class Figure:
    """One row of the results table."""

    what: str
    ours: str
    peer: str
    ratio: str
    target: str
    met: str
    ours_value: float | None = None
    peer_value: float | None = None
    headline: str | None = None


@dataclass(frozen=True)
class Measure:
    """How a row compares ours with the peer.

    :param target: the limit as text (``{limit}`` is replaced).
    :param higher_is_better: whether the value must reach the limit from below (else stay under it).
    """

    target: str
    higher_is_better: bool


SPEEDUP = Measure(">= {limit:g}x faster", True)  # peer time / our time
TIME_RATIO = Measure("<= {limit:g}x the time", False)  # our time / peer time
THROUGHPUT = Measure(">= {limit:g} MB/s", True)  # our MB/s
PEAK_RSS = Measure("<= {limit:g} MB", False)  # our highest peak RSS
RSS_GROWTH = Measure("within +-{limit:.0%}", False)  # |our RSS at the larger size / smaller - 1|
FETCHED = Measure("<= {limit:g}x the object per pass", False)  # bytes fetched / size / passes


@dataclass(frozen=True)
class Target:
    """One row of the table.

    :param what: the row's title; ``{size}`` is the scenario's input, ``{baseline_size}`` the
        baseline scenario's.
    :param scenario: the scenario whose runs it reads.
    :param ours: our contender.
    :param peer: the contender compared with.
    :param measure: how the value is computed and compared.
    :param limit: the figure to meet; ``None`` for a row without a target.
    :param no_limit: what the target column says without a limit.
    :param needs: ``scenario`` (a row whenever the scenario ran), ``ours`` (when ours has runs),
        ``both`` (when ours and the peer, or the baseline, have runs).
    :param baseline: for :data:`RSS_GROWTH`, the scenario with the smaller input.
    :param headline: the row's short title in the README's headline table (``None``: not there).
    """

    what: str
    scenario: str
    ours: str
    peer: str
    measure: Measure
    limit: float | None = None
    no_limit: str = "(no target)"
    needs: str = "scenario"
    baseline: str | None = None
    headline: str | None = None

    @property
    def target_text(self) -> str:
        return self.no_limit if self.limit is None else self.measure.target.format(limit=self.limit)


_SDK_CHUNKED = "openai SDK upload_file_chunked"
TARGETS: tuple[Target, ...] = (
    Target(
        "chunked upload, {size}, WAN (25 MB/s per connection, +40 ms) vs " + _SDK_CHUNKED,
        "chunked-wan", "ours-chunked", "sdk-chunked", SPEEDUP, 3.5,
        headline="chunked upload {size}, WAN (25 MB/s per connection, +40 ms) vs openai SDK `upload_file_chunked`",
    ),
    Target(
        "chunked upload, {size}, loopback vs " + _SDK_CHUNKED,
        "chunked-loopback", "ours-chunked", "sdk-chunked", SPEEDUP, 1.5,
        headline="chunked upload {size}, loopback, md5 sent (default) vs SDK",
    ),
    Target(
        "chunked upload, {size}, loopback vs openai SDK, ours without md5 (send_md5=False; the SDK sends none)",
        "chunked-loopback", "ours-chunked-no-md5", "sdk-chunked", SPEEDUP,
        no_limit="(informative)", needs="both",
        headline="same, `send_md5=False` (the SDK sends none)",
    ),
    Target(
        "chunked upload, {size}, loopback vs " + _SDK_CHUNKED,
        "chunked-large-loopback", "ours-chunked", "sdk-chunked", SPEEDUP,
    ),
    Target(
        "peak RSS of the uploading process, {size} chunked upload",
        "chunked-large-loopback", "ours-chunked", "sdk-chunked", PEAK_RSS, 150, needs="ours",
        headline="peak RSS, chunked upload of {size}",
    ),
    Target(
        "peak RSS, {baseline_size} vs {size}",
        "chunked-large-loopback", "ours-chunked", "sdk-chunked", RSS_GROWTH, 0.10,
        needs="both", baseline="chunked-loopback",
        headline="peak RSS growth, {baseline_size} to {size}",
    ),
    Target(
        "single-request upload, {size}, loopback: FilesHook.upload_file vs openai SDK files.create",
        "single-loopback", "ours-hook-single", "sdk-single", SPEEDUP,
    ),
    Target(
        "single-request upload, {size}, loopback: FilesHook.upload_file vs "
        "apache-airflow-providers-openai OpenAIHook.upload_file",
        "single-loopback", "ours-hook-single", "airflow-openai-hook-single", SPEEDUP,
    ),
    Target(
        "JSONL batch validation, {size}, all rules vs json.loads loop + set of ids",
        "validate", "ours-validate", "json-loads-loop", THROUGHPUT, 350,
        headline="JSONL validation, {size}, all rules vs `json.loads` loop",
    ),
    Target(
        "validate + upload, {size} JSONL, WAN vs upload alone",
        "validate-upload-wan", "ours-validate-upload", "ours-chunked", TIME_RATIO, 1.1,
        headline="validate + upload {size} JSONL, WAN vs upload alone",
    ),
    Target(
        "object-storage source, {size} from a local S3 server (s3fs, aws connection): bytes fetched per pass",
        "object-storage-loopback", "ours-s3", "ours-local", FETCHED, 1.05, needs="ours",
    ),
    Target(
        "peak RSS, chunked upload of {size} from a local S3 server vs from a local file",
        "object-storage-loopback", "ours-s3", "ours-local", PEAK_RSS, 150, needs="ours",
    ),
    Target(
        "chunked upload of {size} from a local S3 server vs from a local file (the ceiling)",
        "object-storage-loopback", "ours-s3", "ours-local", TIME_RATIO, no_limit="(ceiling)", needs="both",
    ),
    Target(
        "batch results, {size} output: download + custom_id check, collect_results through FilesHook "
        "vs openai SDK files.content() + json.loads per line",
        "batch-results-loopback", "ours-collect", "sdk-content", SPEEDUP, 1.0,
    ),
    Target(
        "batch results, {size} output: collect_results vs a raw httpx download to /dev/null (the ceiling)",
        "batch-results-loopback", "ours-collect", "raw-download", TIME_RATIO, no_limit="(ceiling)",
        needs="both",
    ),
    Target(
        "peak RSS collecting batch results, {baseline_size} vs {size} output",
        "batch-results-loopback", "ours-collect", "sdk-content", RSS_GROWTH, 0.10,
        needs="both", baseline="batch-results-small-loopback",
    ),
)  # fmt: skip


def _range(summary: Summary, unit: str = "MB/s") -> str:
    if unit == "MB/s":
        return f"{summary.median_mbps:.0f} MB/s ({summary.median_s:.1f} s; {summary.min_mbps:.0f}-{summary.max_mbps:.0f})"
    return f"{summary.median_s:.2f} s ({summary.min_s:.2f}-{summary.max_s:.2f})"


def _rss(summary: Summary) -> str:
    return f"{summary.median_rss_mb:.0f} MB (max {summary.max_rss_mb:.0f})"


def _growth(small: Summary, large: Summary, digits: int) -> str:
    change = large.median_rss_mb / small.median_rss_mb - 1
    return f"{small.median_rss_mb:.0f} -> {large.median_rss_mb:.0f} MB ({change * 100:+.{digits}f}%)"


@dataclass(frozen=True)
class _Cells:
    """What a measure puts in a row: the value compared with the limit and the row's texts."""

    value: float | None
    ours: str
    peer: str
    ratio: str
    valid: bool


def _cells(target: Target, ours: Summary | None, peer: Summary | None, baseline: tuple[Summary | None, Summary | None], failure: Callable[[str], str]) -> _Cells:  # fmt: skip
    """The value and texts of ``target`` from the summaries of its contenders."""
    valid = all(summary.md5_ok for summary in (ours, peer) if summary is not None)
    measure = target.measure
    if measure in (SPEEDUP, TIME_RATIO):
        unit = "MB/s" if measure is SPEEDUP else "s"
        value = None
        if ours and peer:
            value = peer.median_s / ours.median_s if measure is SPEEDUP else ours.median_s / peer.median_s
        ratio = "-" if value is None else f"{value:.2f}x " + ("faster" if measure is SPEEDUP else "the time")
        ours_text = _range(ours, unit) if ours else failure(target.ours)
        return _Cells(value, ours_text, _range(peer, unit) if peer else failure(target.peer), ratio, valid)
    if measure is THROUGHPUT:
        if ours is None:
            return _Cells(None, failure(target.ours), _range(peer) if peer else "failed", "-", True)
        ratio = f"{ours.median_mbps / peer.median_mbps:.2f}x faster" if peer else "-"
        return _Cells(ours.median_mbps, _range(ours), _range(peer) if peer else "failed", ratio, ours.md5_ok)
    assert ours is not None  # the other measures need ours (Target.needs)
    if measure is FETCHED:
        value = ours.max_fetched_ratio
        text = "not counted" if value is None else f"{value:.3f}x the object per pass (max of {ours.runs})"
        return _Cells(value, text, "-", "-", ours.md5_ok)
    if measure is PEAK_RSS:
        ratio = f"{peer.median_rss_mb / ours.median_rss_mb:.1f}x less" if peer else "-"
        return _Cells(ours.max_rss_mb, _rss(ours), _rss(peer) if peer else "-", ratio, ours.md5_ok)
    small_ours, small_peer = baseline
    assert small_ours is not None
    change = ours.median_rss_mb / small_ours.median_rss_mb - 1
    peer_text = _growth(small_peer, peer, 0) if small_peer and peer else "-"
    return _Cells(change, _growth(small_ours, ours, 1), peer_text, "-", True)


def _met(target: Target, value: float | None, valid: bool) -> str:
    if not valid:
        return "INVALID (md5 mismatch)"
    if target.limit is None:
        return "-"
    if value is None:
        return "not measured"
    if target.measure is RSS_GROWTH:
        value = abs(value)
    ok = value >= target.limit if target.measure.higher_is_better else value <= target.limit
    return "met" if ok else "not met"


def compute_figures(scenarios: dict[str, Scenario]) -> list[Figure]:
    """One figure per row of :data:`TARGETS` whose scenario ran (and whose sides it needs)."""
    figures: list[Figure] = []

    def summary(scenario_id: str | None, contender: str) -> Summary | None:
        scenario = scenarios.get(scenario_id or "")
        return summarise(scenario.runs.get(contender, []), scenario.size_bytes) if scenario else None

    for target in TARGETS:
        scenario = scenarios.get(target.scenario)
        if scenario is None:
            continue
        ours, peer = summary(target.scenario, target.ours), summary(target.scenario, target.peer)
        baseline = (summary(target.baseline, target.ours), summary(target.baseline, target.peer))
        if target.needs == "ours" and not ours:
            continue
        if target.needs == "both" and not (ours and (baseline[0] if target.baseline else peer)):
            continue

        def failure(contender: str, errors: dict[str, str] = scenario.errors) -> str:
            return (errors.get(contender) or "failed").splitlines()[0]

        cells = _cells(target, ours, peer, baseline, failure)
        sizes = {"size": size_label(scenario.size_bytes)}
        if target.baseline in scenarios:
            sizes["baseline_size"] = size_label(scenarios[target.baseline].size_bytes)
        figures.append(
            Figure(
                what=target.what.format(**sizes),
                ours=cells.ours,
                peer=cells.peer,
                ratio=cells.ratio,
                target=target.target_text,
                met=_met(target, cells.value, cells.valid),
                ours_value=cells.value,
                headline=target.headline.format(**sizes) if target.headline else None,
            )
        )
    return figures
