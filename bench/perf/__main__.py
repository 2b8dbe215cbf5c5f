"""``python -m bench.perf`` (``make bench``): see :mod:`bench.perf.driver`."""

from __future__ import annotations

import sys

from bench.perf.driver import main

sys.exit(main())
