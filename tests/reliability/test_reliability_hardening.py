"""The hardening scenario's cases name tests that exist (it runs them in `make reliability`; they
run in `make test` anyway), and its report is read as pytest writes it."""

from __future__ import annotations

from pathlib import Path

from bench.reliability.hardening import CASES, KINDS, HardeningCase, defined, run_hardening_scenario


def test_every_case_names_tests_that_exist() -> None:
    for case in CASES:
        assert case.kind in KINDS, case
        assert case.tests, case
        for test in case.tests:
            assert defined(test), test
    assert not defined("tests/api/test_downloads.py::test_not_there")


def test_the_counts_come_from_the_tests_run(tmp_path: Path) -> None:
    cases = (
        HardeningCase(
            "3",
            "data",
            "two downloads",
            ("tests/api/test_downloads.py::test_two_downloads_to_one_path_each_leave_a_whole_file",),
        ),
        HardeningCase(
            "x", "secret", "a test that is not there", ("tests/api/test_downloads.py::test_not_there",)
        ),
    )
    result = run_hardening_scenario(tmp_path, cases)
    assert result.metric("issue 12 cases tried (their tests ran)").value == 1
    assert result.metric("cases survived (every test of the case passed)").value == 1
    assert result.metric("lost or wrong data (data cases failed)").value == 0
    assert not result.passed and "test_not_there not run" in result.failures[0]
