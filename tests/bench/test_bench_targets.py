"""The targets table drives every figure: the committed results and the README's headline rows
are what it computes from the stored runs."""

from __future__ import annotations

import dataclasses
import json

from bench import REPO_ROOT
from bench.perf.measure import Run, Scenario
from bench.perf.report import (
    LATEST_JSON,
    PARTIAL_PREFIX,
    headline_markdown,
    load_stored_runs,
    scenarios_from_json,
)
from bench.perf.targets import TARGETS, compute_figures

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
    (limit,) = [target.limit for target in TARGETS if target.scenario == "chunked-wan"]
    assert limit is not None and limit > 3.0

    (slow,) = compute_figures({"chunked-wan": scenario})
    scenario.runs["sdk-chunked"] = [Run(limit + 0.5, 0, True)]
    (fast,) = compute_figures({"chunked-wan": scenario})
    scenario.runs["ours-chunked"] = [Run(1.0, 0, False)]
    (corrupt,) = compute_figures({"chunked-wan": scenario})

    assert (slow.ratio, slow.met) == ("3.00x faster", "not met")
    assert fast.met == "met"
    assert corrupt.met.startswith("INVALID")


def test_runs_of_some_rows_stored_beside_latest_json_keep_their_figures_and_reach_latest_md() -> None:
    partials = sorted(LATEST_JSON.parent.glob(f"{PARTIAL_PREFIX}*.json"))
    assert partials, "the batch-results row was measured as a run of its own"
    merged_table = (LATEST_JSON.parent / "latest.md").read_text()

    for path in partials:
        payload = json.loads(path.read_text())
        figures = [dataclasses.asdict(figure) for figure in compute_figures(scenarios_from_json(payload))]

        assert [{key: figure[key] for key in COLUMNS} for figure in figures] == [
            {key: figure[key] for key in COLUMNS} for figure in payload["figures"]
        ]
        for figure in figures:
            assert f"| {figure['what']} | {figure['ours']} |" in merged_table
    _, merged, _ = load_stored_runs(LATEST_JSON.parent)
    whats = [figure.what for figure in compute_figures(merged)]
    assert any(what.startswith("batch results, 200 MB output: download + custom_id check") for what in whats)
    assert any(what.startswith("JSONL batch validation") for what in whats)
