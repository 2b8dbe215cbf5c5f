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

from airflow_provider_files.uploads import DEFAULT_CONCURRENCY
from bench.datagen import GIB, MB, size_label

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
    #: client CPU seconds (user + system) per GiB of input, median; None when not measured
    cpu_s_per_gib: float | None = None
    #: the most bytes fetched over a whole run, as a multiple of the source's size (object storage)
    max_fetched_ratio: float | None = None
    #: peak RSS before the first byte was read (the process's imports and setup), median
    median_setup_rss_mb: float | None = None


def _cpu_s(run: Run) -> float | None:
    """The client CPU of a run: of the call (``call_cpu_s``), else of the whole child process."""
    value = run.detail.get("call_cpu_s", run.detail.get("client_cpu_s"))
    return float(value) if isinstance(value, (int, float)) else None


def summarise(runs: list[Run], size_bytes: int) -> Summary | None:
    if not runs:
        return None
    times = [run.elapsed_s for run in runs]
    rss = [run.peak_rss_bytes / MB for run in runs]
    cpu = [value for run in runs if (value := _cpu_s(run)) is not None]
    # from the bytes, not a stored ratio: runs recorded before the ratio covered the whole run
    # (it was per pass) are read the same way
    fetched = [run.detail["bytes_fetched"] / size_bytes for run in runs if "bytes_fetched" in run.detail]
    setup = [run.detail["setup_rss_bytes"] / MB for run in runs if "setup_rss_bytes" in run.detail]
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
        cpu_s_per_gib=statistics.median(cpu) / (size_bytes / GIB) if cpu and size_bytes else None,
        max_fetched_ratio=max(fetched) if fetched else None,
        median_setup_rss_mb=statistics.median(setup) if setup else None,
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
LINK_SHARE = Measure(">= {limit:.0%} of the link", True)  # our MB/s / (connections x per-connection cap)
CPU_BUDGET = Measure("<= {limit:g}x (SDK + md5 alone)", False)  # our CPU / (peer CPU + extra's CPU), per GiB
FLOOR = Measure("<= {limit:g}x the floor", False)  # our time / (peer's time + extra's time)

#: The WAN profile's link: the engine's default connections, each capped at this many MB/s.
WAN_CAP_MBPS = 25.0
WAN_LINK_MBPS = DEFAULT_CONCURRENCY * WAN_CAP_MBPS
FETCHED = Measure("<= {limit:g}x the object", False)  # bytes fetched over the whole run / size


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
    :param extra: for :data:`CPU_BUDGET`, the contender whose CPU is added to the peer's.
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
    extra: str | None = None
    headline: str | None = None

    @property
    def target_text(self) -> str:
        return self.no_limit if self.limit is None else self.measure.target.format(limit=self.limit)


_SDK_CHUNKED = "openai SDK upload_file_chunked"
_WAN = "WAN (25 MB/s per connection, +40 ms)"
TARGETS: tuple[Target, ...] = (
    Target(
        "chunked upload, {size}, " + _WAN + " vs " + _SDK_CHUNKED,
        "chunked-wan", "ours-chunked", "sdk-chunked", SPEEDUP, 7.0,
        headline="chunked upload {size}, " + _WAN + " vs openai SDK `upload_file_chunked`",
    ),
    Target(
        "chunked upload, {size}, " + _WAN + ", default settings vs the link (connections x per-connection cap)",
        "chunked-wan", "ours-chunked", "sdk-chunked", LINK_SHARE, 0.85, needs="ours",
        headline="same, vs the link (8 connections x 25 MB/s)",
    ),
    Target(
        "chunked upload, {size}, " + _WAN + " vs a raw socket client doing nothing else (the ceiling)",
        "chunked-wan", "ours-chunked", "raw-upload", TIME_RATIO, no_limit="(ceiling)", needs="both",
    ),
    Target(
        "chunked upload, {size}, loopback, md5 sent and verified vs " + _SDK_CHUNKED + " (sends none)",
        "chunked-loopback", "ours-chunked", "sdk-chunked", SPEEDUP, 0.8,
        headline="chunked upload {size}, loopback, md5 sent (default) vs SDK",
    ),
    Target(
        "chunked upload, {size}, loopback vs openai SDK, ours without md5 (send_md5=False; the SDK sends none)",
        "chunked-loopback", "ours-chunked-no-md5", "sdk-chunked", SPEEDUP, 1.5, needs="both",
        headline="same, `send_md5=False` (the SDK sends none)",
    ),
    Target(
        "chunked upload, {size}, loopback vs a raw socket client doing nothing else (the ceiling)",
        "chunked-loopback", "ours-chunked", "raw-upload", TIME_RATIO, no_limit="(ceiling)", needs="both",
    ),
    Target(
        "client CPU per GiB, chunked upload {size}, loopback, md5 on vs the SDK's + md5 alone",
        "chunked-loopback", "ours-chunked", "sdk-chunked", CPU_BUDGET, 1.0, needs="both", extra="md5-alone",
        headline="client CPU per GiB, md5 on, vs SDK + md5 alone",
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
        "`airflow-files upload` end to end (process start to JSON printed), {size}, " + _WAN
        + ", through an AIRFLOW_CONN_* connection vs an SDK script",
        "cli-wan", "ours-cli", "sdk-script", SPEEDUP, 4.5,
        headline="`airflow-files upload` {size} end to end, WAN, vs an SDK script",
    ),
    Target(
        "`airflow-files upload` end to end (process start to JSON printed), {size}, loopback, "
        "through an AIRFLOW_CONN_* connection vs an SDK script",
        "cli-loopback", "ours-cli", "sdk-script", SPEEDUP, 0.8,
        headline="`airflow-files upload` {size} end to end, loopback, vs an SDK script",
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
        "JSONL batch validation, {size}, all rules, default settings vs json.loads loop + set of ids",
        "validate", "ours-validate", "json-loads-loop", THROUGHPUT, 350,
        headline="JSONL validation, {size}, all rules vs `json.loads` loop",
    ),
    Target(
        "JSONL batch validation, {size}, all rules, serial: one parsing core, md5 on a thread (workers=1) "
        "vs json.loads loop + set of ids",
        "validate", "ours-validate-serial", "json-loads-loop", THROUGHPUT, no_limit="(informative)",
        needs="ours", headline="same, serial (`workers=1`: parsing on one core, md5 on a thread)",
    ),
    Target(
        "JSONL batch validation, {size}, all rules, two worker processes parsing (workers=2) "
        "vs json.loads loop + set of ids",
        "validate", "ours-validate-2-workers", "json-loads-loop", THROUGHPUT, no_limit="(informative)",
        needs="ours", headline="same, two parsing processes (`workers=2`)",
    ),
    Target(
        "validate + upload, {size} JSONL, " + _WAN + " vs upload alone",
        "validate-upload-wan", "ours-validate-upload", "ours-chunked", TIME_RATIO, 1.1,
        headline="validate + upload {size} JSONL, WAN vs upload alone",
    ),
    Target(
        "validate + upload, {size} JSONL, " + _WAN + " vs the floor: upload alone + md5 alone of the same "
        "file (nothing is sent before the file is valid, and its md5 is taken in that read)",
        "validate-upload-wan", "ours-validate-upload", "ours-chunked", FLOOR, no_limit="(floor)",
        needs="both", extra="md5-alone",
    ),
    Target(
        "object-storage source, {size} from a local S3 server: bytes fetched over the whole run, "
        "ChunkedUploadOperator (s3fs, aws connection)",
        "object-storage-loopback", "ours-s3", "ours-local", FETCHED, 1.05, needs="ours",
    ),
    Target(
        "object-storage source, {size} from a local S3 server: bytes fetched over the whole run, "
        "the upload engine alone (s3fs, no Airflow)",
        "object-storage-loopback", "engine-s3", "ours-local", FETCHED, 1.05, needs="ours",
    ),
    Target(
        "peak RSS of the client, upload engine alone, {size} from a local S3 server (s3fs, no Airflow) "
        "vs ChunkedUploadOperator in Airflow, same object",
        "object-storage-loopback", "engine-s3", "ours-s3", PEAK_RSS, 150, needs="ours",
    ),
    Target(
        "peak RSS of the Airflow task, ChunkedUploadOperator, {size} from a local S3 server vs from a local file",
        "object-storage-loopback", "ours-s3", "ours-local", PEAK_RSS, no_limit="(informative)", needs="ours",
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
    setup = summary.median_setup_rss_mb
    before = f"; {setup:.0f} before the first byte" if setup is not None else ""
    return f"{summary.median_rss_mb:.0f} MB (max {summary.max_rss_mb:.0f}{before})"


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


def _cells(target: Target, ours: Summary | None, peer: Summary | None, baseline: tuple[Summary | None, Summary | None], failure: Callable[[str], str], extra: Summary | None = None) -> _Cells:  # fmt: skip
    """The value and texts of ``target`` from the summaries of its contenders."""
    valid = all(summary.md5_ok for summary in (ours, peer) if summary is not None)
    measure = target.measure
    if measure is LINK_SHARE:
        link = f"link {DEFAULT_CONCURRENCY} x {WAN_CAP_MBPS:g} = {WAN_LINK_MBPS:g} MB/s"
        if ours is None:
            return _Cells(None, failure(target.ours), link, "-", True)
        share = ours.median_mbps / WAN_LINK_MBPS
        return _Cells(share, _range(ours), link, f"{share:.0%} of the link", ours.md5_ok)
    if measure is CPU_BUDGET:
        return _cpu_cells(target, ours, peer, extra, failure)
    if measure is FLOOR:
        return _floor_cells(target, ours, peer, extra, failure)
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
        text = "not counted" if value is None else f"{value:.3f}x the object (max of {ours.runs})"
        return _Cells(value, text, "-", "-", ours.md5_ok)
    if measure is PEAK_RSS:
        ratio = f"{peer.median_rss_mb / ours.median_rss_mb:.1f}x less" if peer else "-"
        return _Cells(ours.max_rss_mb, _rss(ours), _rss(peer) if peer else "-", ratio, ours.md5_ok)
    small_ours, small_peer = baseline
    assert small_ours is not None
    change = ours.median_rss_mb / small_ours.median_rss_mb - 1
    peer_text = _growth(small_peer, peer, 0) if small_peer and peer else "-"
    return _Cells(change, _growth(small_ours, ours, 1), peer_text, "-", True)


def _cpu_cells(target: Target, ours: Summary | None, peer: Summary | None, extra: Summary | None, failure: Callable[[str], str]) -> _Cells:  # fmt: skip
    """Our client CPU per GiB against the peer's plus the extra contender's (the md5 alone)."""
    mine = ours.cpu_s_per_gib if ours else None
    budget_parts = [peer.cpu_s_per_gib if peer else None, extra.cpu_s_per_gib if extra else None]
    ours_text = f"{mine:.2f} CPU s/GiB" if mine is not None else failure(target.ours)
    if mine is None or None in budget_parts:
        return _Cells(None, ours_text, "not measured", "-", True)
    peer_cpu, extra_cpu = (float(part or 0.0) for part in budget_parts)
    budget = peer_cpu + extra_cpu
    peer_text = f"{peer_cpu:.2f} + md5 alone {extra_cpu:.2f} = {budget:.2f} CPU s/GiB"
    valid = all(summary.md5_ok for summary in (ours, peer, extra) if summary is not None)
    return _Cells(mine / budget, ours_text, peer_text, f"{mine / budget:.2f}x the budget", valid)


def _floor_cells(target: Target, ours: Summary | None, peer: Summary | None, extra: Summary | None, failure: Callable[[str], str]) -> _Cells:  # fmt: skip
    """Our time against the sum of two contenders' times (the upload alone, then the md5 alone)."""
    if ours is None or peer is None or extra is None:
        return _Cells(None, _range(ours, "s") if ours else failure(target.ours), "not measured", "-", True)
    floor = peer.median_s + extra.median_s
    peer_text = f"{peer.median_s:.2f} s + md5 alone {extra.median_s:.2f} s = {floor:.2f} s"
    valid = all(summary.md5_ok for summary in (ours, peer, extra))
    return _Cells(
        ours.median_s / floor, _range(ours, "s"), peer_text, f"{ours.median_s / floor:.2f}x the floor", valid
    )


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

        extra = summary(target.scenario, target.extra) if target.extra else None
        if target.extra and extra is None:
            continue
        cells = _cells(target, ours, peer, baseline, failure, extra)
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
