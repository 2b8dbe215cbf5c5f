"""The results of a bench: ``latest.json`` (every run), ``latest.md`` (the figures against the
targets, every contender) and ``latest.png`` (the chart).

A run of only some scenarios (``--only``) into a folder that holds the results of a larger run
does not replace them: it is stored beside them as ``only-<scenario ids>.{json,md}``, and
``latest.md`` (and the chart) is written again from every stored run, each scenario taken from the
newest run that measured it (:func:`load_stored_runs`); ``latest.json`` keeps the larger run.

``python -m bench.perf.report [PATH]`` prints the README's headline rows, computed afresh by
:data:`~bench.perf.targets.TARGETS` from the runs stored in ``PATH`` (default: the committed
``bench/results/latest.json`` and the partial runs beside it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from bench import REPO_ROOT
from bench.perf.environment import log
from bench.perf.measure import Run, Scenario
from bench.perf.targets import Figure, compute_figures, summarise

LATEST_JSON = REPO_ROOT / "bench" / "results" / "latest.json"
PARTIAL_PREFIX = "only-"


def partial_name(scenario_ids: list[str] | set[str]) -> str:
    """File name (without suffix) of the results of a run of only ``scenario_ids``."""
    return PARTIAL_PREFIX + "+".join(sorted(scenario_ids))


def results_payload(
    machine: dict[str, Any], plan: dict[str, Any], scenarios: dict[str, Scenario], figures: list[Figure]
) -> dict[str, Any]:
    """What ``latest.json`` (or a partial run's file) holds: the machine, the plan, every run."""
    return {
        "machine": machine,
        "plan": plan,
        "figures": [dataclasses.asdict(figure) for figure in figures],
        "scenarios": {
            scenario_id: {
                "title": scenario.title,
                "profile": scenario.profile,
                "size_bytes": scenario.size_bytes,
                "load_avg_after": scenario.load_avg,
                "errors": scenario.errors,
                "contenders": {
                    name: {
                        "summary": dataclasses.asdict(summary) if summary else None,
                        "runs": [dataclasses.asdict(run) for run in runs],
                    }
                    for name, runs in scenario.runs.items()
                    for summary in [summarise(runs, scenario.size_bytes)]
                },
            }
            for scenario_id, scenario in scenarios.items()
        },
    }


def is_partial_run(output_dir: Path, scenarios: dict[str, Scenario]) -> bool:
    """Whether these results cover less than the ``latest.json`` already in ``output_dir``."""
    latest = output_dir / "latest.json"
    if not latest.exists():
        return False
    stored = set(json.loads(latest.read_text())["scenarios"])
    return not stored <= set(scenarios)


def load_stored_runs(directory: Path) -> tuple[dict[str, Any], dict[str, Scenario], dict[str, str]]:
    """The runs stored in ``directory``: ``latest.json`` and every partial run beside it.

    :return: ``latest.json``'s payload, the scenarios (each from the newest run that measured
        it, by the run's date), and for each scenario the file it came from.
    """
    stored = []
    for path in [directory / "latest.json", *sorted(directory.glob(f"{PARTIAL_PREFIX}*.json"))]:
        if path.exists():
            payload = json.loads(path.read_text())
            stored.append((payload["machine"]["date"], path.name, payload))
    scenarios: dict[str, Scenario] = {}
    origin: dict[str, str] = {}
    for _, name, payload in sorted(stored, key=lambda item: item[0]):
        for scenario_id, scenario in scenarios_from_json(payload).items():
            scenarios[scenario_id] = scenario
            origin[scenario_id] = name
    latest = next((payload for _, name, payload in stored if name == "latest.json"), stored[-1][2])
    return latest, scenarios, origin


def write_results(
    output_dir: Path,
    machine: dict[str, Any],
    plan: dict[str, Any],
    scenarios: dict[str, Scenario],
    figures: list[Figure],
    *,
    chart: bool = True,
) -> dict[str, Path]:
    """Write ``latest.{json,md}`` of this run, or, for a run of only some scenarios, its
    ``only-<ids>.{json,md}`` and ``latest.md`` again from every stored run; then the chart."""
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = is_partial_run(output_dir, scenarios)
    stem = partial_name(set(scenarios)) if partial else "latest"
    paths = {"json": output_dir / f"{stem}.json", "md": output_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(results_payload(machine, plan, scenarios, figures), indent=2) + "\n")
    paths["md"].write_text(render_markdown(machine, plan, scenarios, figures))
    charted = scenarios
    if partial:
        paths["latest-md"], charted = write_merged_markdown(output_dir)
    else:
        remove_superseded_partials(output_dir, set(scenarios))
    if chart and draw_chart(output_dir / "latest.png", charted):
        paths["png"] = output_dir / "latest.png"
    return paths


def remove_superseded_partials(output_dir: Path, measured: set[str]) -> list[Path]:
    """Remove the partial runs whose every scenario a newer full run has just measured again (their
    figures would never be shown), with their ``.md``; returns the files removed."""
    removed = []
    for path in sorted(output_dir.glob(f"{PARTIAL_PREFIX}*.json")):
        if set(json.loads(path.read_text())["scenarios"]) <= measured:
            for stale in (path, path.with_suffix(".md")):
                if stale.exists():
                    stale.unlink()
                    removed.append(stale)
    return removed


def write_merged_markdown(output_dir: Path) -> tuple[Path, dict[str, Scenario]]:
    """``latest.md`` from every run stored in ``output_dir``, each scenario from the newest run
    that measured it; returns its path and those scenarios."""
    latest, merged, origin = load_stored_runs(output_dir)
    notes = [
        f"- Rows of {', '.join(sorted(ids))} come from `{source}` "
        f"(`python -m bench.perf {payload['plan']['argv']}` on {payload['machine']['date']}, "
        f"{payload['plan']['runs']} runs per contender; see `{source.removesuffix('.json')}.md`)."
        for source in sorted(set(origin.values()) - {"latest.json"})
        for ids in [[sid for sid, src in origin.items() if src == source]]
        for payload in [json.loads((output_dir / source).read_text())]
    ]
    merged_plan = {**latest["plan"], "notes": [*latest["plan"]["notes"], *notes]}
    path = output_dir / "latest.md"
    path.write_text(render_markdown(latest["machine"], merged_plan, merged, compute_figures(merged)))
    return path, merged


def refigure_stored_runs(output_dir: Path) -> list[Path]:
    """Compute the figures of every run stored in ``output_dir`` again with the current
    :data:`~bench.perf.targets.TARGETS` (after a target changed) and write them back, each run's
    ``.md`` and ``latest.md`` included; the runs themselves are left as they are."""
    written = []
    for path in [output_dir / "latest.json", *sorted(output_dir.glob(f"{PARTIAL_PREFIX}*.json"))]:
        if not path.exists():
            continue
        payload = json.loads(path.read_text())
        scenarios = scenarios_from_json(payload)
        figures = compute_figures(scenarios)
        payload["figures"] = [dataclasses.asdict(figure) for figure in figures]
        path.write_text(json.dumps(payload, indent=2) + "\n")
        if path.name != "latest.json":
            markdown = path.with_suffix(".md")
            markdown.write_text(render_markdown(payload["machine"], payload["plan"], scenarios, figures))
            written.append(markdown)
        written.append(path)
    if len(written) > 1:
        written.append(write_merged_markdown(output_dir)[0])
    elif written:
        payload = json.loads(written[0].read_text())
        scenarios = scenarios_from_json(payload)
        md = output_dir / "latest.md"
        md.write_text(
            render_markdown(payload["machine"], payload["plan"], scenarios, compute_figures(scenarios))
        )
        written.append(md)
    return written


def render_markdown(
    machine: dict[str, Any], plan: dict[str, Any], scenarios: dict[str, Scenario], figures: list[Figure]
) -> str:
    out = ["# Benchmark results", ""]
    command = f"python -m bench.perf {plan['argv']}".strip()
    out.append(f"Written by `make bench` (`{command}`) on {machine['date']}.")
    out.append(
        f"Each figure is the median of {plan['runs']} runs per contender, contenders alternating run by "
        "run; min-max across runs in parentheses. MB = 10^6 bytes. Every upload's md5 as stored by the "
        "emulator was checked against the source file."
    )
    out += ["", "## Machine", "", "| | |", "|---|---|"]
    for key in (
        "cpu", "cores", "ram_gib", "os", "python", "airflow", "airflow-provider-files", "openai",
        "apache-airflow-providers-openai", "httpx", "orjson", "load_avg_start", "load_avg_end",
    ):  # fmt: skip
        if key in machine:
            value = machine[key]
            if isinstance(value, list):
                value = " / ".join(str(item) for item in value) + " (1/5/15 min)"
            out.append(f"| {key.replace('_', ' ')} | {value} |")
    out += ["", "## Figures against the targets of DESIGN.md", ""]
    out += ["| what | ours | peer | ratio | target | met? |", "|---|---|---|---|---|---|"]
    for figure in figures:
        out.append(
            f"| {figure.what} | {figure.ours} | {figure.peer} | {figure.ratio} | {figure.target} | **{figure.met}** |"
        )
    out += ["", "## Every contender", ""]
    out += [
        "| scenario | contender | runs | wall time s (min-max) | MB/s (min-max) | peak RSS MB (max) "
        "| client CPU s/GiB | md5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios.values():
        for name, runs in scenario.runs.items():
            summary = summarise(runs, scenario.size_bytes)
            if summary is None:
                continue
            rss = f"{summary.median_rss_mb:.0f} ({summary.max_rss_mb:.0f})" if summary.max_rss_mb else "-"
            cpu = f"{summary.cpu_s_per_gib:.2f}" if summary.cpu_s_per_gib is not None else "-"
            out.append(
                f"| {scenario.title} | {name} | {summary.runs} | {summary.median_s:.2f} "
                f"({summary.min_s:.2f}-{summary.max_s:.2f}) | {summary.median_mbps:.0f} "
                f"({summary.min_mbps:.0f}-{summary.max_mbps:.0f}) | {rss} | {cpu} | "
                f"{'ok' if summary.md5_ok else 'MISMATCH'} |"
            )
        for name, error in scenario.errors.items():
            out.append(f"| {scenario.title} | {name} | 0 | failed: {error.splitlines()[0][:120]} | | | | |")
    out += ["", "## What was run", ""]
    out += plan["notes"]
    loads = [f"{scenario.id} {scenario.load_avg[0]}" for scenario in scenarios.values() if scenario.load_avg]
    if loads:
        out.append("- Load average (1 min) after each scenario: " + ", ".join(loads) + ".")
    out.append("")
    return "\n".join(out)


#: Contender name prefix -> (bar colour, the legend's words for it); the first match wins.
CHART_COLOURS = {
    "ours-validate-upload": ("#9467bd", "ours: validate + upload"),
    "ours-chunked-no-md5": ("#aec7e8", "ours without md5"),
    "ours-validate-serial": ("#6baed6", "ours, serial validation"),
    "ours-validate-2-workers": ("#08519c", "ours, validation in 2 worker processes"),
    "engine-s3": ("#17becf", "ours, the upload engine alone (no Airflow)"),
    "ours": ("#1f77b4", "ours (airflow-provider-files)"),
    "sdk": ("#ff7f0e", "openai SDK / plain json.loads (peer)"),
    "json-loads": ("#ff7f0e", "openai SDK / plain json.loads (peer)"),
    "airflow-openai": ("#2ca02c", "apache-airflow-providers-openai (peer)"),
    "raw-": ("#444444", "raw client doing nothing else (ceiling)"),
    "md5-alone": ("#bcbd22", "md5 alone (cost of hashing)"),
}
_OTHER = ("#7f7f7f", "other")


def _colour(name: str) -> str:
    return _style(name)[0]


def _style(name: str) -> tuple[str, str]:
    return next((style for prefix, style in CHART_COLOURS.items() if name.startswith(prefix)), _OTHER)


def draw_chart(path: Path, scenarios: dict[str, Scenario]) -> bool:
    """MB/s per scenario and contender, and peak RSS of the uploads; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed; no chart")
        return False
    groups = []
    for scenario in scenarios.values():
        bars = [
            (name, summary)
            for name, runs in scenario.runs.items()
            for summary in [summarise(runs, scenario.size_bytes)]
            if summary is not None
        ]
        if bars:
            groups.append((scenario, bars))
    if not groups:
        return False
    width = max(9.0, 1.25 * sum(len(bars) for _, bars in groups) + 2)
    figure, (speed_axis, rss_axis) = plt.subplots(
        2, 1, figsize=(width, 9), dpi=110, gridspec_kw={"height_ratios": [3, 2]}
    )
    positions: list[float] = []
    names: list[str] = []
    centres: list[tuple[float, str]] = []
    x = 0.0
    for scenario, bars in groups:
        start = x
        for name, summary in bars:
            low, high = summary.median_mbps - summary.min_mbps, summary.max_mbps - summary.median_mbps
            speed_axis.bar(x, summary.median_mbps, 0.8, color=_colour(name), yerr=[[low], [high]], capsize=3)
            speed_axis.text(
                x, summary.max_mbps, f"{summary.median_mbps:.0f}", ha="center", va="bottom", fontsize=8
            )
            if summary.max_rss_mb:
                rss_axis.bar(x, summary.median_rss_mb, 0.8, color=_colour(name))
                rss_axis.text(
                    x,
                    summary.median_rss_mb,
                    f"{summary.median_rss_mb:.0f}",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
            positions.append(x)
            names.append(name)
            x += 1
        centres.append(((start + x - 1) / 2, scenario.title))
        x += 0.8
    speed_axis.set_ylabel("MB/s (median; bars: min-max)")
    speed_axis.set_title("airflow-provider-files vs peers and the ceiling: throughput, higher is better")
    from matplotlib.patches import Patch

    legend = dict(_style(name)[::-1] for name in names)  # words -> colour, in order of first bar
    speed_axis.legend(
        handles=[Patch(color=colour, label=words) for words, colour in legend.items()],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),  # beside the bars, never over them
    )
    speed_axis.set_xticks([centre for centre, _ in centres], [title for _, title in centres], fontsize=8)
    speed_axis.grid(axis="y", alpha=0.3)
    rss_axis.set_ylabel("peak RSS, MB (median)")
    rss_axis.set_title("peak RSS of the uploading process, lower is better (target for ours: <= 150 MB)")
    rss_axis.axhline(150, color="red", linestyle="--", linewidth=1)
    rss_axis.set_xticks(positions, names, rotation=35, ha="right", fontsize=8)
    rss_axis.grid(axis="y", alpha=0.3)
    rss_axis.set_xlim(speed_axis.get_xlim())
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def scenarios_from_json(payload: dict[str, Any]) -> dict[str, Scenario]:
    """The scenarios of a ``latest.json``, with every run, as :func:`write_results` stored them."""
    scenarios = {}
    for scenario_id, stored in payload["scenarios"].items():
        scenario = Scenario(scenario_id, stored["title"], stored["profile"], "", list(stored["contenders"]))
        scenario.size_bytes = stored["size_bytes"]
        scenario.errors = dict(stored["errors"])
        scenario.load_avg = list(stored["load_avg_after"])
        scenario.runs = {
            name: [Run(**run) for run in contender["runs"]]
            for name, contender in stored["contenders"].items()
        }
        scenarios[scenario_id] = scenario
    return scenarios


def headline_markdown(figures: list[Figure]) -> str:
    """The README's table: the figures whose target has a headline, in short form."""
    out = ["| what | ours | peer | ratio | target |", "|---|---|---|---|---|"]
    for figure in figures:
        if figure.headline:
            ours, peer = figure.ours.split(" (")[0], figure.peer.split(" (")[0]
            verdict = figure.target if figure.met == "-" else f"{figure.target}: {figure.met}"
            out.append(f"| {figure.headline} | {ours} | {peer} | {figure.ratio} | {verdict} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", type=Path, default=None, help="a latest.json")
    parser.add_argument(
        "--refigure",
        action="store_true",
        help="recompute the stored runs' figures with the current targets and write them back first",
    )
    args = parser.parse_args(argv)
    if args.refigure:
        for path in refigure_stored_runs(LATEST_JSON.parent if args.json is None else args.json.parent):
            log(f"wrote {path}")
    if args.json is None:
        scenarios = load_stored_runs(LATEST_JSON.parent)[1]
    else:
        scenarios = scenarios_from_json(json.loads(args.json.read_text()))
    sys.stdout.write(headline_markdown(compute_figures(scenarios)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
