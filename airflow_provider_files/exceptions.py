"""The Airflow-facing exceptions of the provider: what a task fails with, and whether a retry may help.

Errors of the layers below (``api``, ``uploads``, ``jsonl``) are plain Python exceptions; the
operators, sensors, triggers' events and the hook's blocking waits turn them into these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_files._airflow_compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)
from airflow_provider_files.jsonl import InvalidBatchFileError as _JsonlInvalidBatchFileError
from airflow_provider_files.jsonl import ValidationReport


class FileProcessingFailedError(AirflowFailException):
    """The server says a file will never be ready (``error``, deleted, expired); retrying will not help."""


class FileWaitError(AirflowException):
    """The API could not be asked about the files (bad key, outage that outlasted the tolerance ...)."""


class FileWaitTimeoutError(AirflowSensorTimeout):
    """The files were not ready before the deadline."""


class BatchEndedError(AirflowFailException):
    """The batch reached a final status that is not the one waited for; retrying the wait cannot help.

    The subclasses say which: :class:`BatchFailedError`, :class:`BatchExpiredError`,
    :class:`BatchCancelledError`; this class itself is raised for any other final status (e.g. a
    ``completed`` batch when only ``cancelled`` was awaited).

    :param message: what the task log shows (the batch's errors and request counts included).
    :param batch: the batch as a dict (``Batch.to_dict()``), for its ids, counts and result files.
    """

    def __init__(self, message: str, batch: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.batch: dict[str, Any] | None = dict(batch) if batch is not None else None

    @staticmethod
    def for_batch(message: str, batch: Mapping[str, Any]) -> BatchEndedError:
        """The exception that fits the batch's ``status``."""
        error_type = _BATCH_ENDED_ERRORS.get(str(batch.get("status")), BatchEndedError)
        return error_type(message, batch)


class BatchFailedError(BatchEndedError):
    """The batch ended ``failed`` (e.g. a bad input file); the message names its ``errors`` (line, code)."""


class BatchExpiredError(BatchEndedError):
    """The batch ended ``expired``: its completion window passed; finished requests have results."""


class BatchCancelledError(BatchEndedError):
    """The batch ended ``cancelled``; requests finished before the cancel have results."""


_BATCH_ENDED_ERRORS: dict[str, type[BatchEndedError]] = {
    "failed": BatchFailedError,
    "expired": BatchExpiredError,
    "cancelled": BatchCancelledError,
}


class BatchWaitError(AirflowException):
    """The API could not be asked about the batch (bad key, unknown id, outage that outlasted the tolerance)."""


class BatchWaitTimeoutError(AirflowSensorTimeout):
    """The batch did not reach the awaited status before the deadline (it may still be running)."""


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


__all__ = [
    "BatchCancelledError",
    "BatchEndedError",
    "BatchExpiredError",
    "BatchFailedError",
    "BatchWaitError",
    "BatchWaitTimeoutError",
    "FileProcessingFailedError",
    "FileWaitError",
    "FileWaitTimeoutError",
    "InvalidBatchFileError",
]
