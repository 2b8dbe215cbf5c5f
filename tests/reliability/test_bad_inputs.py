"""Every quick case of the bad-input corpus fails with a message naming the cause (and the line),
and the server receives no file bytes for it. The full corpus runs in `make reliability`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle, run_emulator
from bench.reliability.badinput import GOOD_KEY, connection_env, run_case

from .cases import CASES, BadInputCase

pytestmark = pytest.mark.timeout(60)

# Defects found by the suite and not fixed yet; strict, so a fix makes the test fail until the
# entry is removed.
KNOWN_DEFECTS: dict[str, str] = {}


def _param(case: BadInputCase) -> Any:
    marks = (
        [pytest.mark.xfail(reason=KNOWN_DEFECTS[case.name], strict=True)]
        if case.name in KNOWN_DEFECTS
        else []
    )
    return pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module")
def strict_emulator() -> Iterator[EmulatorHandle]:
    with run_emulator(api_key=GOOD_KEY) as handle:
        yield handle


def test_corpus_is_large_and_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", [_param(case) for case in CASES if case.quick])
def test_bad_input_fails_clearly_and_sends_nothing(
    case: BadInputCase, strict_emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in connection_env(strict_emulator.root_url, strict_emulator.base_url).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    outcome = run_case(case, strict_emulator, tmp_path)

    assert outcome.passed, f"{'; '.join(outcome.problems)} -- {outcome.message}"
