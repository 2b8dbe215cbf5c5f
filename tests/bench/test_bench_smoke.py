"""The benchmark driver runs end to end at toy sizes (the real figures come from ``make bench``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.perf import driver

TOY_SIZES = "chunked=3MiB,large=5MiB,single=2MB,validate=1MB,jsonl=2MiB"


@pytest.mark.timeout(120)
def test_driver_writes_every_figure_with_verified_uploads(tmp_path: Path) -> None:
    output = tmp_path / "results"
    exit_code = driver.main(
        [
            "--no-install",
            "--runs", "1",
            "--profiles", "loopback",
            "--sizes", TOY_SIZES,
            "--only", "validate,chunked-loopback,chunked-large-loopback",
            "--no-chart",
            "--output", str(output),
            "--workdir", str(tmp_path / "work"),
        ]
    )  # fmt: skip

    assert exit_code == 0
    results = json.loads((output / "latest.json").read_text())
    scenarios = results["scenarios"]
    for scenario_id, contenders in (
        ("chunked-loopback", ["ours-chunked", "sdk-chunked", "raw-upload", "md5-alone"]),
        ("chunked-large-loopback", ["ours-chunked", "sdk-chunked"]),
        ("validate", ["ours-validate", "ours-validate-serial", "ours-validate-2-workers", "json-loads-loop"]),
    ):
        for contender in contenders:
            summary = scenarios[scenario_id]["contenders"][contender]["summary"]
            assert summary is not None, scenarios[scenario_id]["errors"]
            assert summary["md5_ok"], (scenario_id, contender)
            assert summary["median_mbps"] > 0
    large_rss = scenarios["chunked-large-loopback"]["contenders"]["ours-chunked"]["runs"][0]["peak_rss_bytes"]
    assert 10_000_000 < large_rss < 2_000_000_000

    table = (output / "latest.md").read_text()
    for row in (
        "| cpu |",
        "chunked upload, 3 MiB, loopback",
        "peak RSS of the uploading process",
        "<= 150 MB",
        "vs a raw socket client doing nothing else (the ceiling)",
        "client CPU per GiB, chunked upload 3 MiB, loopback, md5 on vs the SDK's + md5 alone",
        "| client CPU s/GiB |",
    ):
        assert row in table
    whats = [figure["what"] for figure in results["figures"]]
    assert any(what.startswith("JSONL batch validation") for what in whats)
    assert not any(what.startswith("validate + upload") for what in whats)  # WAN was not asked for


def test_sizes_option_reads_binary_and_decimal_units() -> None:
    assert driver.parse_sizes("large=4GiB,single=400MB") == {"large": 4 * 1024**3, "single": 400_000_000}
    with pytest.raises(Exception, match="KEY=SIZE"):
        driver.parse_sizes("huge=1GiB")


@pytest.mark.timeout(240)
def test_cli_rows_time_whole_processes_and_verify_the_uploads(tmp_path: Path) -> None:
    output = tmp_path / "results"
    exit_code = driver.main(
        [
            "--no-install", "--runs", "1", "--profiles", "loopback", "--sizes", "cli=2MiB",
            "--only", "cli-loopback", "--no-chart",
            "--output", str(output), "--workdir", str(tmp_path / "work"),
        ]
    )  # fmt: skip

    assert exit_code == 0
    results = json.loads((output / "latest.json").read_text())
    scenario = results["scenarios"]["cli-loopback"]
    for contender in ("ours-cli", "sdk-script"):
        summary = scenario["contenders"][contender]["summary"]
        assert summary is not None, scenario["errors"]
        assert summary["md5_ok"], contender
        (run,) = scenario["contenders"][contender]["runs"]
        assert run["elapsed_s"] == run["detail"]["process_wall_s"] > 0
        assert run["detail"]["call_cpu_s"] == run["detail"]["client_cpu_s"] > 0
    (figure,) = [f for f in results["figures"] if f["what"].startswith("`airflow-files upload` end to end")]
    assert figure["target"] == ">= 0.8x faster" and figure["met"] in ("met", "not met")
