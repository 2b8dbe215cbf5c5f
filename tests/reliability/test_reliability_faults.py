"""Fast subset of the faults scenario (the full one is `make reliability`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.faults import run_faults_scenario

pytestmark = pytest.mark.timeout(120)

MUST_BE_MET = (
    "completed",
    "md5 mismatches",
    "duplicate files",
    "orphaned uploads (id known to the client, left pending)",
)


def test_uploads_under_faults_and_lost_responses_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    result = run_faults_scenario(
        tmp_path,
        uploads=12,
        lost_response_uploads=10,
        operator_runs=6,
        collision_uploads=0,
        failing_uploads=3,
        part_size=64 * 1024,
        log=lambda _: None,
    )

    assert not result.failures
    for row in ("faults", "lost responses", "operators"):
        for name in MUST_BE_MET:
            metric = result.metric(f"{row}: {name}")
            assert metric.ok, f"{metric.name}: {metric.value} (target {metric.target})"
    assert result.metric("giving up: cancelled-but-orphaned (left pending)").ok


def test_lost_response_recovery_never_returns_another_uploads_file(tmp_path: Path) -> None:
    result = run_faults_scenario(
        tmp_path,
        uploads=0,
        lost_response_uploads=0,
        operator_runs=0,
        collision_uploads=12,
        log=lambda _: None,
    )

    assert result.metric("same-name collisions: results holding another upload's content").value == 0
    assert result.metric("same-name collisions: results sharing one file id").value == 0
