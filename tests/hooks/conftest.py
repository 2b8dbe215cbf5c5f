"""Fixtures of the hook tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle, run_emulator


@pytest.fixture(scope="session")
def strict_emulator() -> Iterator[EmulatorHandle]:
    """An emulator process that accepts one key only (the shared ``emulator`` takes any key)."""
    with run_emulator(api_key="sk-the-right-key-000111") as handle:
        yield handle
