"""The Airflow-facing exceptions live in one module and stay importable from their old homes; the
operators do not import the sensors; ``[operators] default_deferrable`` is read when a task is built."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_files import exceptions
from airflow_provider_files.jsonl import InvalidBatchFileError as JsonlInvalidBatchFileError
from airflow_provider_files.operators.files import UploadJsonlOperator
from airflow_provider_files.sensors import files as sensor_module
from airflow_provider_files.sensors.files import UploadCompleteSensor

PACKAGE = Path(exceptions.__file__).parent


@pytest.mark.parametrize("name", ["FileProcessingFailedError", "FileWaitError", "FileWaitTimeoutError"])
def test_wait_exceptions_still_importable_from_the_sensor_module(name: str) -> None:
    assert getattr(sensor_module, name) is getattr(exceptions, name)


def test_old_invalid_batch_file_name_is_a_deprecated_alias() -> None:
    from airflow_provider_files.operators import files as operator_module

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = operator_module.InvalidBatchFileException
    assert old is exceptions.InvalidBatchFileError
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "airflow_provider_files.exceptions.InvalidBatchFileError" in str(caught[0].message)


def test_invalid_batch_file_error_is_final_and_catchable_as_the_validators_error() -> None:
    assert issubclass(exceptions.InvalidBatchFileError, AirflowFailException)
    assert issubclass(exceptions.InvalidBatchFileError, JsonlInvalidBatchFileError)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [("operators", "airflow_provider_files.sensors"), ("sensors", "airflow_provider_files.operators")],
)
def test_operators_and_sensors_do_not_import_each_other(folder: str, forbidden: str) -> None:
    modules = sorted((PACKAGE / folder).glob("*.py"))
    assert modules
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith(forbidden))
        for path in modules
        if any(m.startswith(forbidden) for m in imported_modules(path))
    }
    assert offenders == {}


def test_default_deferrable_is_read_when_the_task_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert UploadCompleteSensor(task_id="wait", file_id="file-1").deferrable is True
    assert UploadJsonlOperator(task_id="up", source="x.jsonl", purpose="batch").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert UploadCompleteSensor(task_id="wait", file_id="file-1").deferrable is False
    assert UploadJsonlOperator(task_id="up", source="x.jsonl", purpose="batch").deferrable is False


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", exceptions.BatchFailedError),
        ("expired", exceptions.BatchExpiredError),
        ("cancelled", exceptions.BatchCancelledError),
        ("completed", exceptions.BatchEndedError),
    ],
)
def test_a_batch_that_ended_elsewhere_is_final_and_carries_the_batch(
    status: str, error: type[exceptions.BatchEndedError]
) -> None:
    raised = exceptions.BatchEndedError.for_batch("why", {"id": "batch_1", "status": status})
    assert type(raised) is error and isinstance(raised, AirflowFailException)
    assert raised.batch == {"id": "batch_1", "status": status} and str(raised) == "why"


def test_batch_wait_errors_may_be_retried_and_a_timeout_is_a_sensor_timeout() -> None:
    from airflow.sdk.exceptions import AirflowSensorTimeout

    assert not issubclass(exceptions.BatchWaitError, AirflowFailException)
    assert issubclass(exceptions.BatchWaitTimeoutError, AirflowSensorTimeout)
