"""Hardening scenario: the cases of issue 12 (data loss, secrets, hangs, a server that must not
fall over), each run for real through the regression tests that reproduce it.

Every case names the tests that try it (a bad input, a hostile or broken server, a concurrent
writer ...) and assert the outcome over real HTTP or real files. The scenario runs those tests
in a child ``pytest`` and reads their results from its JUnit report, so the counts below are
measured, not written down:

* *cases tried*: the cases whose tests ran (a test that is missing or skipped counts as not run);
* *survived*: the cases whose tests all passed (a clear error, bounded time and memory, or the
  right data);
* *lost or wrong data*: data-loss cases (kind ``data``) whose tests failed: 0 is the target;
* *leaked*: secret cases (kind ``secret``) whose tests failed: 0 is the target.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from bench import REPO_ROOT
from bench.reliability.common import Metric, ScenarioResult

KINDS = {
    "data": "data loss and silent wrong data",
    "bad input": "bad inputs (refused with a clear error, nothing sent)",
    "fault": "hostile or broken servers, hangs and memory",
    "secret": "secrets",
    "server": "the emulator, a server others point at",
}
RUN_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class HardeningCase:
    """One case of issue 12 and the tests that try it (``path::name``, every parametrization)."""

    item: str
    kind: str
    what: str
    tests: tuple[str, ...]


def _t(path: str, *names: str) -> tuple[str, ...]:
    return tuple(f"tests/{path}::{name}" for name in names)


CASES: tuple[HardeningCase, ...] = (
    HardeningCase(
        "1",
        "data",
        "shard: re-sharding a shard into its own folder, old shards in the destination, invalid input",
        _t(
            "jsonl/test_jsonl_shard_safety.py",
            "test_resharding_a_shard_into_its_own_folder_is_refused",
            "test_a_link_to_a_shard_is_recognised_as_the_source",
            "test_cli_reshard_into_own_folder_exits_2_and_keeps_the_source",
            "test_destination_with_shards_of_an_earlier_run_is_refused",
            "test_invalid_input_leaves_the_destination_as_it_was",
            "test_invalid_input_creates_no_folder",
            "test_shards_get_their_names_only_at_the_end",
        ),
    ),
    HardeningCase(
        "2",
        "data",
        "a source rewritten in place (same size) after validation, single request and chunked",
        _t(
            "operators/test_upload_operator_checks.py",
            "test_a_source_rewritten_after_validation_is_not_left_uploaded",
        ),
    ),
    HardeningCase(
        "3",
        "data",
        "two downloads to one destination",
        _t("api/test_downloads.py", "test_two_downloads_to_one_path_each_leave_a_whole_file"),
    ),
    HardeningCase(
        "4",
        "data",
        "a server reporting a size other than the one sent (single, chunked, with a wait)",
        _t(
            "uploads/test_upload_verification.py",
            "test_single_request_refuses_a_size_other_than_the_one_sent",
            "test_chunked_upload_refuses_a_size_other_than_the_one_sent",
        )
        + _t(
            "operators/test_upload_operator_checks.py",
            "test_a_size_the_server_misreports_fails_the_task_even_with_a_wait",
        ),
    ),
    HardeningCase(
        "5",
        "fault",
        "a gateway refusing the md5 field",
        _t(
            "uploads/test_upload_verification.py",
            "test_a_refused_md5_field_is_named_and_send_md5_false_completes",
        )
        + _t(
            "operators/test_upload_operator_checks.py",
            "test_a_gateway_refusing_md5_is_named_and_send_md5_false_uploads",
        )
        + _t("test_upload_cli.py", "test_no_md5_completes_through_a_gateway_that_refuses_the_field"),
    ),
    HardeningCase(
        "6",
        "secret",
        "a 200 answer that is not an object, echoing the request headers",
        _t(
            "api/test_hostile_servers.py",
            "test_a_success_answer_echoing_the_key_is_quoted_redacted",
            "test_a_file_or_batch_whose_messages_echo_the_key_is_read_with_them_masked",
        )
        + _t("api/test_secrets.py", "test_non_json_error_echoing_the_key_leaks_nothing"),
    ),
    HardeningCase(
        "7",
        "secret",
        "a key or secret header with CR/LF",
        _t(
            "api/test_refused_inputs.py",
            "test_header_text_with_line_breaks_is_refused_when_settings_are_built",
            "test_a_request_httpx_cannot_write_is_not_retried",
        )
        + _t("api/test_secrets.py", "test_key_pasted_with_a_newline_is_sent_trimmed_and_masked"),
    ),
    HardeningCase(
        "8",
        "secret",
        "Ocp-Apim-Subscription-Key and listed headers echoed by a server",
        _t(
            "hooks/test_gateway_connections.py",
            "test_every_portkey_secret_and_listed_header_is_masked_in_logs",
            "test_an_echoing_server_gets_no_listed_header_into_errors",
        ),
    ),
    HardeningCase(
        "9",
        "secret",
        "a very short key",
        _t(
            "api/test_secrets.py",
            "test_a_short_key_is_masked_only_as_a_whole_token",
            "test_a_key_of_eight_characters_or_more_is_masked_anywhere",
        ),
    ),
    HardeningCase(
        "10",
        "fault",
        "a server trickling the answer's body or head, sync and async",
        _t(
            "api/test_hostile_servers.py",
            "test_a_trickling_answer_ends_at_the_deadline_not_when_the_server_is_done",
            "test_a_trickling_download_ends_at_the_deadline",
            "test_a_trickling_answer_ends_at_the_deadline_async",
            "test_a_trickling_head_ends_at_the_deadline",
            "test_a_trickling_head_after_a_stream_of_unknown_length_ends_at_the_deadline",
            "test_a_trickling_head_after_a_stream_of_unknown_length_ends_at_the_deadline_async",
            "test_a_trickling_stream_of_unknown_length_meets_the_deadline",
        ),
    ),
    HardeningCase(
        "11",
        "fault",
        "a JSON answer of hundreds of MB",
        _t(
            "api/test_hostile_servers.py",
            "test_a_json_answer_larger_than_the_cap_is_refused_without_reading_it_whole",
            "test_a_json_answer_larger_than_the_cap_is_refused_async",
        ),
    ),
    HardeningCase(
        "12",
        "bad input",
        "validate /dev/zero, an endless stdin, a line longer than any request",
        _t(
            "jsonl/test_jsonl_bounded_reading.py",
            "test_cli_validate_dev_zero_ends_with_a_clear_error",
            "test_a_long_line_under_the_cap_is_still_checked",
        )
        + _t(
            "jsonl/test_jsonl_validation.py",
            "test_overlong_line_is_not_held_in_memory_and_is_reported",
            "test_overlong_last_line_without_newline",
        ),
    ),
    HardeningCase(
        "13",
        "server",
        "complete racing cancel; filename* with an unknown charset",
        _t(
            "emulator/test_emulator_hardening.py",
            "test_complete_racing_cancel_is_a_clean_4xx",
            "test_filename_star_with_unknown_charset_has_a_contract_test",
        ),
    ),
    HardeningCase(
        "14",
        "server",
        "reset of foreign files, admin routes without the key, /config of wrong types, a 100 MB header",
        _t(
            "emulator/test_emulator_hardening.py",
            "test_reset_deletes_only_the_files_it_created",
            "test_admin_routes_need_the_api_key_when_one_is_set",
            "test_config_refuses_wrong_types_and_ranges",
            "test_huge_request_header_is_refused_without_holding_it",
        ),
    ),
    HardeningCase(
        "smaller",
        "bad input",
        "CR/LF in a MIME type; file ids '.' and '..'",
        _t(
            "api/test_refused_inputs.py",
            "test_content_types_with_line_breaks_are_refused",
            "test_ids_that_would_change_the_url_are_refused",
            "test_delete_of_dot_no_longer_becomes_delete_of_the_collection",
        ),
    ),
    HardeningCase(
        "smaller",
        "fault",
        "Ctrl-C on airflow-files upload",
        _t("test_upload_cli.py", "test_ctrl_c_exits_130_with_one_line_and_keeps_the_checkpoint"),
    ),
    HardeningCase(
        "smaller",
        "data",
        "a checkpoint naming another file of the same size, or parts of another upload",
        _t(
            "uploads/test_upload_verification.py",
            "test_a_checkpoint_naming_another_file_of_the_same_size_is_not_reused",
            "test_a_single_request_checkpoint_naming_another_file_of_the_same_size_is_not_reused",
            "test_a_checkpoint_whose_verified_file_is_another_file_is_refused_without_reading_it",
            "test_a_checkpoint_listing_parts_of_another_upload_says_which_checkpoint_to_delete",
        ),
    ),
)


def defined(test: str) -> bool:
    """Whether ``path::name`` names a test function that exists (pytest refuses a run naming one that does not)."""
    path, _, name = test.partition("::")
    source = REPO_ROOT / path
    if not source.is_file():
        return False
    tree = ast.parse(source.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in ast.walk(tree)
    )


def _outcomes(report: Path) -> dict[str, str]:
    """``path::name`` (parametrizations folded) -> ``passed``, or the worst outcome of its runs."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        path = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
        name = (case.get("name") or "").split("[")[0]
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        key = f"{path}::{name}"
        if outcomes.get(key, "passed") == "passed":
            outcomes[key] = outcome
    return outcomes


def run_hardening_scenario(workdir: Path, cases: tuple[HardeningCase, ...] = CASES) -> ScenarioResult:
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    result = ScenarioResult(
        "hardening", f"{len(cases)} cases of issue 12, each run through its regression tests"
    )
    report = workdir / "hardening-junit.xml"
    node_ids = sorted({test for case in cases for test in case.tests if defined(test)})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-o"]
    command += ["junit_family=xunit1", f"--junitxml={report}", *node_ids]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    outcomes = _outcomes(report) if report.exists() else {}
    if not outcomes:
        result.failures.append(
            f"pytest ran no test (exit {run.returncode}): {run.stdout[-1500:]}{run.stderr[-1500:]}"
        )
    ran: dict[str, list[HardeningCase]] = {kind: [] for kind in KINDS}
    survived: dict[str, list[HardeningCase]] = {kind: [] for kind in KINDS}
    for case in cases:
        states = [outcomes.get(test, "not run") for test in case.tests]
        if all(state in ("passed", "failed") for state in states):
            ran[case.kind].append(case)
        if all(state == "passed" for state in states):
            survived[case.kind].append(case)
        else:
            bad = [
                f"{test} {state}" for test, state in zip(case.tests, states, strict=True) if state != "passed"
            ]
            result.failures.append(f"item {case.item} ({case.what}): {'; '.join(bad)}")
    tried = sum(len(v) for v in ran.values())
    result.metrics += [
        Metric.equals("issue 12 cases tried (their tests ran)", tried, len(cases)),
        Metric.equals(
            "cases survived (every test of the case passed)",
            sum(len(v) for v in survived.values()),
            len(cases),
        ),
    ]
    for kind, label in KINDS.items():
        total = sum(1 for case in cases if case.kind == kind)
        result.metrics.append(Metric.equals(f"{label}: survived", len(survived[kind]), total))
    result.metrics += [
        Metric.zero("lost or wrong data (data cases failed)", len(ran["data"]) - len(survived["data"])),
        Metric.zero("leaked (secret cases failed)", len(ran["secret"]) - len(survived["secret"])),
        Metric.info(
            "regression tests run / passed",
            f"{len(outcomes)} / {sum(1 for o in outcomes.values() if o == 'passed')}",
        ),
    ]
    result.notes.append("Cases (issue 12 item, kind: what is tried -> tests):")
    result.notes += [
        f"- item {case.item}, {case.kind}: {case.what} -> {len(case.tests)} test(s)" for case in cases
    ]
    result.elapsed_s = time.monotonic() - started
    return result
