"""Fast subset of the batches scenario: three loops, one with a lost create answer, one killed and
run again (the full one is `make reliability`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.batches import run_batches_scenario

pytestmark = pytest.mark.timeout(120)


def test_batch_loops_create_one_batch_each_and_account_for_every_custom_id(tmp_path: Path) -> None:
    result = run_batches_scenario(tmp_path, loops=3, crash_every=3, lines=(20, 60), log=lambda _: None)

    assert not result.failures
    for metric in result.metrics:
        assert metric.ok is not False, f"{metric.name}: {metric.value} (target {metric.target})"
    assert result.metric("batch loops completed").value == 3
    assert result.metric("loops with exactly 1 batch").value == 3
    assert result.metric("duplicate batches").value == 0
    assert int(result.metric("lost create answers (batch created, answer dropped)").value) >= 1
    assert result.metric("custom_ids missing from the results").value == 0
    assert result.metric("custom_ids duplicated in the results").value == 0
    assert int(result.metric("requests (custom_ids) in all inputs").value) >= 60
