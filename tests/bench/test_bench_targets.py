"""The targets table drives every figure: the committed results and the README's headline rows
are what it computes from the stored runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.perf.measure import Run, Scenario
from bench.perf.report import (
    LATEST_JSON,
    PARTIAL_PREFIX,
    headline_markdown,
    load_stored_runs,
    scenarios_from_json,
    write_results,
)
from bench.perf.targets import SPEEDUP, TARGETS, WAN_LINK_MBPS, Figure, compute_figures

COLUMNS = ("what", "ours", "peer", "ratio", "target", "met", "ours_value")


def test_figures_recomputed_from_the_stored_runs_equal_the_committed_ones() -> None:
    payload = json.loads(LATEST_JSON.read_text())

    figures = [dataclasses.asdict(figure) for figure in compute_figures(scenarios_from_json(payload))]

    assert [{key: figure[key] for key in COLUMNS} for figure in figures] == [
        {key: figure[key] for key in COLUMNS} for figure in payload["figures"]
    ]


def test_readme_headline_rows_are_the_tables_figures() -> None:
    figures = compute_figures(scenarios_from_json(json.loads(LATEST_JSON.read_text())))

    assert headline_markdown(figures) in (REPO_ROOT / "README.md").read_text()


def test_a_limit_decides_met_or_not_met() -> None:
    scenario = Scenario("chunked-wan", "chunked WAN", "wan", "chunked", ["ours-chunked", "sdk-chunked"])
    scenario.size_bytes = 100_000_000
    scenario.runs = {"ours-chunked": [Run(1.0, 0, True)], "sdk-chunked": [Run(3.0, 0, True)]}
    (limit,) = [
        target.limit for target in TARGETS if target.scenario == "chunked-wan" and target.measure is SPEEDUP
    ]
    assert limit is not None and limit > 3.0

    def speedup_figure() -> Figure:
        (figure,) = [f for f in compute_figures({"chunked-wan": scenario}) if f.ratio.endswith("faster")]
        return figure

    slow = speedup_figure()
    scenario.runs["sdk-chunked"] = [Run(limit + 0.5, 0, True)]
    fast = speedup_figure()
    scenario.runs["ours-chunked"] = [Run(1.0, 0, False)]
    corrupt = speedup_figure()

    assert (slow.ratio, slow.met) == ("3.00x faster", "not met")
    assert fast.met == "met"
    assert corrupt.met.startswith("INVALID")


def _store(directory: Path, payload: dict[str, Any], scenario_ids: set[str], date: str) -> None:
    """Write the runs of ``scenario_ids`` from ``payload`` into ``directory`` as a run made on ``date``."""
    scenarios = {sid: sc for sid, sc in scenarios_from_json(payload).items() if sid in scenario_ids}
    machine = {**payload["machine"], "date": date}
    write_results(directory, machine, payload["plan"], scenarios, compute_figures(scenarios), chart=False)


def test_runs_of_some_rows_stored_beside_latest_json_keep_their_figures_and_reach_latest_md(
    tmp_path: Path,
) -> None:
    payload = json.loads(LATEST_JSON.read_text())
    every = set(payload["scenarios"])
    assert "batch-results-loopback" in every and "validate" in every
    _store(tmp_path, payload, every, "2026-01-01 00:00 UTC")
    runs = json.loads((tmp_path / "latest.json").read_text())["scenarios"]["validate"]["contenders"]
    runs["ours-validate"]["runs"] = [
        {**run, "elapsed_s": run["elapsed_s"] * 2} for run in runs["ours-validate"]["runs"]
    ]
    slower = {**payload, "scenarios": {"validate": {**payload["scenarios"]["validate"], "contenders": runs}}}
    _store(tmp_path, slower, {"validate"}, "2026-01-02 00:00 UTC")

    partials = sorted(tmp_path.glob(f"{PARTIAL_PREFIX}*.json"))
    assert [path.name for path in partials] == [f"{PARTIAL_PREFIX}validate.json"]
    assert json.loads((tmp_path / "latest.json").read_text())["machine"]["date"] == "2026-01-01 00:00 UTC"
    merged_table = (tmp_path / "latest.md").read_text()
    partial_figures = json.loads(partials[0].read_text())["figures"]
    assert partial_figures
    for figure in partial_figures:
        assert f"| {figure['what']} | {figure['ours']} |" in merged_table
    _, merged, origin = load_stored_runs(tmp_path)
    assert origin["validate"] == partials[0].name and origin["batch-results-loopback"] == "latest.json"
    assert any(f.what.startswith("batch results, 200 MB output") for f in compute_figures(merged))


def test_a_full_run_removes_the_partial_runs_it_measured_again(tmp_path: Path) -> None:
    payload = json.loads(LATEST_JSON.read_text())
    every = set(payload["scenarios"])
    _store(tmp_path, payload, every, "2026-01-01 00:00 UTC")
    _store(tmp_path, payload, {"validate"}, "2026-01-02 00:00 UTC")
    assert (tmp_path / f"{PARTIAL_PREFIX}validate.md").exists()

    _store(tmp_path, payload, every, "2026-01-03 00:00 UTC")

    assert sorted(tmp_path.glob(f"{PARTIAL_PREFIX}*")) == []
    assert [path.name for path in LATEST_JSON.parent.glob(f"{PARTIAL_PREFIX}*")] == [], (
        "the committed results keep a partial run that the full run superseded"
    )


def _scenario(scenario_id: str, size_bytes: int, runs: dict[str, list[Run]]) -> Scenario:
    scenario = Scenario(scenario_id, scenario_id, "wan", "chunked", list(runs))
    scenario.size_bytes = size_bytes
    scenario.runs = runs
    return scenario


def test_the_link_row_is_our_rate_over_connections_times_the_cap() -> None:
    size = 1_000_000_000
    seconds_at_90_percent = size / (0.9 * WAN_LINK_MBPS * 1_000_000)
    scenario = _scenario("chunked-wan", size, {"ours-chunked": [Run(seconds_at_90_percent, 0, True)]})

    (link,) = [
        figure for figure in compute_figures({"chunked-wan": scenario}) if "of the link" in figure.ratio
    ]
    scenario.runs["ours-chunked"] = [Run(seconds_at_90_percent * 1.2, 0, True)]
    (short,) = [
        figure for figure in compute_figures({"chunked-wan": scenario}) if "of the link" in figure.ratio
    ]

    assert (link.ratio, link.met) == ("90% of the link", "met")
    assert short.met == "not met"


def test_the_cpu_row_compares_ours_with_the_sdk_plus_the_md5_alone() -> None:
    gib = 1024**3

    def runs(ours_cpu: float) -> dict[str, list[Run]]:
        return {
            "ours-chunked": [Run(2.0, 0, True, {"call_cpu_s": ours_cpu})],
            "sdk-chunked": [Run(2.0, 0, True, {"call_cpu_s": 2.0})],
            "md5-alone": [Run(1.6, 0, True, {"call_cpu_s": 1.5})],
        }

    def cpu_figure(ours_cpu: float) -> Figure:
        scenario = _scenario("chunked-loopback", gib, runs(ours_cpu))
        (figure,) = [f for f in compute_figures({"chunked-loopback": scenario}) if "CPU" in f.what]
        return figure

    within, over = cpu_figure(3.4), cpu_figure(3.6)

    assert within.peer == "2.00 + md5 alone 1.50 = 3.50 CPU s/GiB"
    assert (within.ours, within.met) == ("3.40 CPU s/GiB", "met")
    assert over.met == "not met"
    without_md5_alone = _scenario(
        "chunked-loopback", gib, {k: v for k, v in runs(3.0).items() if k != "md5-alone"}
    )
    assert not [f for f in compute_figures({"chunked-loopback": without_md5_alone}) if "CPU" in f.what]


def test_the_cli_rows_compare_whole_processes_on_both_profiles() -> None:
    targets = {target.scenario: target for target in TARGETS if target.ours == "ours-cli"}

    assert set(targets) == {"cli-wan", "cli-loopback"}
    assert (targets["cli-wan"].limit, targets["cli-loopback"].limit) == (4.5, 0.8)
    assert all(target.peer == "sdk-script" for target in targets.values())
