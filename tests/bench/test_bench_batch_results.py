"""The batch-results row at a toy size: a run of only that row is stored beside the larger run's
results, whose ``latest.json`` it leaves alone, and ``latest.md`` shows both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.datagen import md5_of
from bench.perf import driver
from bench.perf.batch_results import _valid, result_lines, write_results_input
from bench.perf.report import LATEST_JSON, load_stored_runs, partial_name


@pytest.mark.timeout(240)
def test_a_run_of_the_batch_results_row_is_stored_beside_the_full_results(tmp_path: Path) -> None:
    output = tmp_path / "results"
    output.mkdir()
    shutil.copy(LATEST_JSON, output / "latest.json")
    full_before = (output / "latest.json").read_text()

    exit_code = driver.main(
        [
            "--no-install", "--runs", "1", "--profiles", "loopback", "--sizes", "results=2MB",
            "--only", "batch-results-loopback", "--no-chart",
            "--output", str(output), "--workdir", str(tmp_path / "work"),
        ]
    )  # fmt: skip

    assert exit_code == 0
    assert (output / "latest.json").read_text() == full_before
    partial = json.loads((output / f"{partial_name({'batch-results-loopback'})}.json").read_text())
    contenders = partial["scenarios"]["batch-results-loopback"]["contenders"]
    for name in ("ours-collect", "sdk-content", "raw-download"):
        summary = contenders[name]["summary"]
        assert summary is not None, partial["scenarios"]["batch-results-loopback"]["errors"]
        assert summary["md5_ok"], name
    ours = contenders["ours-collect"]["runs"][0]["detail"]
    assert (ours["lines"], ours["duplicates"], ours["missing"]) == (result_lines(2_000_000), 0, 0)
    _, merged, origin = load_stored_runs(output)
    assert origin["batch-results-loopback"].startswith("only-")
    assert origin["validate"] == "latest.json" and "chunked-loopback" in merged
    table = (output / "latest.md").read_text()
    assert "batch results, 2 MB output: download + custom_id check" in table
    assert "JSONL batch validation" in table


def test_a_run_is_valid_only_with_the_servers_bytes_and_one_line_per_request(tmp_path: Path) -> None:
    data = write_results_input(tmp_path / "input.jsonl", 100_000)
    written = tmp_path / "copy.jsonl"
    written.write_bytes(data.path.read_bytes())
    good = {"bytes": data.size, "lines": data.lines, "duplicates": 0}

    assert _valid({**good, "written_path": str(written)}, data.lines, data.size, md5_of(data.path))
    assert not _valid({**good, "written_path": str(written)}, data.lines, data.size, "0" * 32)
    assert not _valid(
        {**good, "duplicates": 1, "written_path": str(written)}, data.lines, data.size, data.md5
    )
    assert not _valid({**good, "written_path": str(written)}, data.lines + 1, data.size, data.md5)
    assert not _valid({"bytes": data.size - 1}, data.lines, data.size, data.md5)
    assert _valid({"bytes": data.size}, data.lines, data.size, data.md5)  # the raw download keeps nothing
