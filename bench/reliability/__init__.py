"""``make reliability`` (``python -m bench.reliability``): the scenarios, one module each.

:mod:`~bench.reliability.faults`, :mod:`~bench.reliability.crash` (with the process it kills,
:mod:`~bench.reliability.crash_runner`), :mod:`~bench.reliability.badinput`,
:mod:`~bench.reliability.secrets` (with :mod:`~bench.reliability.secrets_runner`) and
:mod:`~bench.reliability.sensor`; :mod:`~bench.reliability.common` holds the result rows and
clients they share. ``__main__`` runs them and writes RELIABILITY.md.
"""
