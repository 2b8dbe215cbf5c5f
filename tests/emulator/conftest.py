from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "heavy: moves a lot of data (about 1 GiB); still well under 30 s")
