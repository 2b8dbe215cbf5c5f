"""Fast subset of the crash scenario: two kill-and-resume cycles (the full one is `make reliability`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.crash import run_crash_scenario

pytestmark = pytest.mark.timeout(120)


def test_killed_uploads_resume_without_resending_checkpointed_parts(tmp_path: Path) -> None:
    result = run_crash_scenario(
        tmp_path,
        runs=2,
        part_size=256 * 1024,
        bandwidth_mbps=1.0,
        parts_per_file=(4, 6),
        single_request_runs=0,
        log=lambda _: None,
    )

    assert not result.failures
    for metric in result.metrics:
        assert metric.ok is not False, f"{metric.name}: {metric.value} (target {metric.target})"
    assert result.metric("bytes re-sent beyond the parts in flight").value == 0
    assert result.metric("md5 mismatches").value == 0
