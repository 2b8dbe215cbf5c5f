"""Bad-input scenario: every case of ``tests/reliability/cases.py`` through the real operators.

Each case runs the operator's constructor and ``execute()`` with a minimal task context against
an emulator that only accepts one key. A case passes when it fails, its error text contains
the expected words (and ``line N`` for JSONL errors), and the emulator received zero bytes of
file content for it (no ``POST /files`` or part body bytes, no file or upload created).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bench.connections import connection_json, connection_variable
from bench.reliability.common import (
    Metric,
    ScenarioResult,
    env_vars,
    task_context,
)

# The corpus lives with the tests (tests/reliability/cases.py); it is imported by name at run time
# so that type checkers, which map tests/ as its own tree, see one module per file.
CASES_MODULE = "tests.reliability.cases"


def corpus() -> Any:
    """The module holding the bad-input corpus (``CASES``, ``BadInputCase`` ...)."""
    return importlib.import_module(CASES_MODULE)


BadInputCase = Any

GOOD_KEY = "sk-reliability-bad-input-good-key"
CONTENT_ROUTES = frozenset({"create_file", "add_part"})
CONN_IDS = {
    "good": "reliability_good",
    "missing": "reliability_no_such_conn",
    "wrong_key": "reliability_wrong_key",
    "http_remote": "reliability_http_remote",
    "unknown_gateway": "reliability_unknown_gateway",
    "bad_headers": "reliability_bad_headers",
    "credentials_in_url": "reliability_credentials_in_url",
    "respan": "reliability_respan",
    "azure_no_host": "reliability_azure_no_host",
}


@dataclass
class CaseOutcome:
    """What happened to one case."""

    case: BadInputCase
    failed_as_expected: bool
    message: str
    problems: list[str]
    content_bytes: int
    requests: int

    @property
    def passed(self) -> bool:
        return self.failed_as_expected and not self.problems


def connection_env(root_url: str, base_url: str) -> dict[str, str | None]:
    """``AIRFLOW_CONN_*`` variables for every connection kind of the corpus."""
    host_port = root_url.split("://", 1)[1]
    conns = {
        "good": connection_json(base_url, GOOD_KEY),
        "wrong_key": connection_json(base_url, "sk-reliability-wrong-key"),
        # never contacted: the client must refuse before connecting
        "http_remote": connection_json("http://files.example.com/v1", GOOD_KEY),
        "unknown_gateway": connection_json(base_url, GOOD_KEY, gateway="openia"),
        "bad_headers": connection_json(base_url, GOOD_KEY, headers="{not json"),
        "credentials_in_url": connection_json(f"http://user:pw@{host_port}/v1", GOOD_KEY),
        "respan": connection_json(root_url + "/api", GOOD_KEY, gateway="respan"),
        "azure_no_host": connection_json("", GOOD_KEY, gateway="azure"),
    }
    env: dict[str, str | None] = {connection_variable(CONN_IDS[k]): v for k, v in conns.items()}
    env[connection_variable(CONN_IDS["missing"])] = None
    return env


def _source_for(case: BadInputCase, workdir: Path) -> str:
    cases = corpus()
    if case.source == cases.MISSING:
        return str(workdir / "no-such-file.jsonl")
    if case.source == cases.DIRECTORY:
        folder = workdir / "a-folder.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
    if "://" in case.source:
        return case.source
    if case.generate is not None:
        path = workdir / case.source
        if not path.exists():
            case.generate(path)
        return str(path)
    return str(cases.BAD_INPUTS_DIR / case.source)


def _operator_kwargs(case: BadInputCase, workdir: Path) -> dict[str, Any]:
    from airflow_provider_files.jsonl import BatchLimits

    kwargs = dict(case.kwargs)
    if case.operator == "chunked":
        kwargs.setdefault("purpose", "batch")
    if isinstance(kwargs.get("limits"), dict):
        kwargs["limits"] = BatchLimits(**kwargs["limits"])
    kwargs.setdefault("checkpoint_folder", str(workdir / "checkpoints"))
    return kwargs


def _expected_line(case: BadInputCase, source: str) -> int | None:
    if case.line == -1:
        limits = case.kwargs.get("limits") or {}
        return int(corpus()._line_of_byte_limit(Path(source), int(limits.get("max_bytes", 200_000_000))))
    return case.line


def _exception_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_case(case: BadInputCase, emulator: Any, workdir: Path) -> CaseOutcome:
    """Run one case and judge it."""
    from airflow_provider_files.operators.files import ChunkedUploadOperator, UploadJsonlOperator

    operator_class = UploadJsonlOperator if case.operator == "jsonl" else ChunkedUploadOperator
    source = _source_for(case, workdir)
    kwargs = _operator_kwargs(case, workdir)
    task_id = f"bad_{case.name}"
    emulator.reset()
    stage = "init"
    message = ""
    problems: list[str] = []
    failed = False
    try:
        operator = operator_class(
            task_id=task_id, source=source, files_conn_id=CONN_IDS[case.connection], **kwargs
        )
        stage = "execute"
        operator.execute(cast(Any, task_context("reliability_bad_inputs", task_id, "bad-inputs")))
    except Exception as exc:
        failed = True
        message = _exception_text(exc)
    if not failed:
        problems.append("did not fail")
    elif case.stage != "any" and stage != case.stage:
        problems.append(f"failed in {stage}, expected in {case.stage}")
    lowered = message.lower()
    problems += [f"message lacks {fragment!r}" for fragment in case.expect if fragment.lower() not in lowered]
    line = _expected_line(case, source)
    if line is not None and f"line {line}" not in message:
        problems.append(f"message does not name line {line}")
    log = emulator.request_log()
    content_bytes = sum(int(e.get("bytes_received") or 0) for e in log if e.get("route") in CONTENT_ROUTES)
    stats = emulator.stats()
    if content_bytes:
        problems.append(f"server received {content_bytes} bytes of file content")
    if stats["file_count"] or stats["upload_count"]:
        problems.append(f"server holds {stats['file_count']} file(s), {stats['upload_count']} upload(s)")
    return CaseOutcome(case, failed, message, problems, content_bytes, len(log))


def run_cases(
    cases: Iterable[BadInputCase], emulator: Any, workdir: Path, log: Callable[[str], None] = print
) -> list[CaseOutcome]:
    workdir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with env_vars(**connection_env(emulator.root_url, emulator.base_url)):
        for case in cases:
            outcome = run_case(case, emulator, workdir)
            if not outcome.passed:
                log(f"  bad input {case.name}: {'; '.join(outcome.problems)} -- {outcome.message[:300]}")
            outcomes.append(outcome)
    return outcomes


def run_badinput_scenario(
    workdir: Path, *, quick_only: bool = False, log: Callable[[str], None] = print
) -> ScenarioResult:
    from airflow_provider_files.emulator.testing import run_emulator

    started = time.monotonic()
    cases = [case for case in corpus().CASES if case.quick or not quick_only]
    result = ScenarioResult("bad input", f"{len(cases)} bad-input cases through the operators")
    with run_emulator(api_key=GOOD_KEY) as emulator:
        outcomes = run_cases(cases, emulator, workdir, log)
    passed = sum(1 for outcome in outcomes if outcome.passed)
    result.metrics += [
        Metric.at_least("cases", len(outcomes), 40),
        Metric.equals("failed with a message naming the cause (and line)", passed, len(outcomes)),
        Metric.zero(
            "cases where the server received file bytes",
            sum(1 for outcome in outcomes if outcome.content_bytes),
        ),
        Metric.info("requests that reached the server (all cases)", sum(o.requests for o in outcomes)),
    ]
    result.failures += [
        f"bad input {o.case.name}: {'; '.join(o.problems)} -- {o.message[:400]}"
        for o in outcomes
        if not o.passed
    ]
    result.notes.append(
        "Cases (name: cause -> start of the error message):\n\n"
        + "\n".join(
            f"- `{o.case.name}`: {o.case.cause} -> `{_excerpt(o)}`" + ("" if o.passed else " **FAILED**")
            for o in outcomes
        )
    )
    result.elapsed_s = time.monotonic() - started
    os.environ.pop(connection_variable(CONN_IDS["good"]), None)
    return result


def _excerpt(outcome: CaseOutcome, limit: int = 170) -> str:
    """The start of the error, or for JSONL errors the part from the first ``line N:`` on."""
    text = _one_line(outcome.message)
    marker = text.find(" line ")
    if outcome.case.line is not None and marker > 0:
        text = f"{text.split(':', 1)[0]}: ...{text[marker:]}"
    return text[:limit]


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")
