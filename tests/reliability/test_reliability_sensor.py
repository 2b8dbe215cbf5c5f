"""Fast subset of the sensor-under-faults scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.reliability.sensor import run_sensor_scenario

pytestmark = pytest.mark.timeout(120)


def test_trigger_rides_out_faults_and_ends_at_the_deadline_for_a_missing_file(tmp_path: Path) -> None:
    result = run_sensor_scenario(tmp_path, files=2, deadline_s=2.0, log=lambda _: None)

    assert not result.failures, result.failures
    assert all(metric.ok for metric in result.metrics)
