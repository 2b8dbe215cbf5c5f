"""Fixtures of the documentation tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs whole Airflow processes (tens of seconds)")
