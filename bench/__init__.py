"""The project's two measuring suites, run outside ``make test``.

* :mod:`bench.perf` (``make bench``): speed and memory against the peers and the targets of DESIGN.md;
* :mod:`bench.reliability` (``make reliability``): faults, crashes, bad input, secrets, sensor.

Both write their inputs with :mod:`bench.datagen`.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
