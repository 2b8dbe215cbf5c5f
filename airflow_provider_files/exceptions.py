"""The Airflow-facing exceptions of the provider: what a task fails with, and whether a retry may help.

Errors of the layers below (``api``, ``uploads``, ``jsonl``) are plain Python exceptions; the
operators, sensors, triggers' events and the hook's blocking waits turn them into these.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_provider_files.jsonl import InvalidBatchFileError as _JsonlInvalidBatchFileError
from airflow_provider_files.jsonl import ValidationReport


class FileProcessingFailedError(AirflowFailException):
    """The server says a file will never be ready (``error``, deleted, expired); retrying will not help."""


class FileWaitError(AirflowException):
    """The API could not be asked about the files (bad key, outage that outlasted the tolerance ...)."""


class FileWaitTimeoutError(AirflowSensorTimeout):
    """The files were not ready before the deadline."""


class InvalidBatchFileError(AirflowFailException, _JsonlInvalidBatchFileError):
    """The Batch JSONL file broke the rules; nothing was uploaded. Retrying cannot help.

    Also an :class:`airflow_provider_files.jsonl.InvalidBatchFileError`, so one ``except`` catches
    the validator's error and the task's.

    :param message: what the task log shows.
    :param report: the validation report (line numbers and causes of the first errors).
    """

    def __init__(self, message: str, report: ValidationReport) -> None:
        AirflowFailException.__init__(self, message)
        self.report = report


__all__ = ["FileProcessingFailedError", "FileWaitError", "FileWaitTimeoutError", "InvalidBatchFileError"]
