"""The batch rules stay Airflow-free, like the upload rules: they can be used from any Python."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_batch_rules_loads_no_airflow() -> None:
    code = (
        "import sys, airflow_provider_files.batches as b; "
        "assert b.submit_batch; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
