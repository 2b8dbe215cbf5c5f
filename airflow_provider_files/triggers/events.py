"""The events the triggers yield: built here, and read back here when the task resumes.

A wait ends with exactly one event, a plain dict (it is stored in the metadata DB):

``{"status": "success", "files": [file dict, ...]}``
    every file is ready; the dicts are ``FileObject.to_dict()``, in the order asked for.
``{"status": "error", "message": str, "file_id": str | None, "reason": "file_failed" | "api_error"}``
    ``file_failed``: the server says the file is ``error``, deleted or expired (retrying cannot help);
    ``api_error``: the API could not be asked (a task retry may help).
``{"status": "timeout", "message": str, "pending": [file id, ...]}``
    the deadline passed first.

A :class:`~airflow_provider_files.triggers.batches.BatchCompleteTrigger` ends with one of:

``{"status": "success", "batch": batch dict}``
    the batch reached an awaited status; the dict is ``Batch.to_dict()``.
``{"status": "error", "message": str, "batch_id": str, "reason": "batch_ended", "batch": batch dict}``
    the batch reached another final status (``failed``, ``expired``, ``cancelled`` ...).
``{"status": "error", "message": str, "batch_id": str, "reason": "api_error", "batch": None}``
    the API could not be asked (a task retry may help).
``{"status": "timeout", "message": str, "batch_id": str, "batch": last batch dict seen or None}``
    the deadline passed first (the batch may still be running).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_files import exceptions

# Values of the event's "reason" key on error events.
REASON_FILE_FAILED = "file_failed"
REASON_BATCH_ENDED = "batch_ended"
REASON_API_ERROR = "api_error"


def success_event(files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"status": "success", "files": [dict(f) for f in files]}


def file_failed_event(message: str, file_id: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "file_id": file_id, "reason": REASON_FILE_FAILED}


def api_error_event(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "file_id": None, "reason": REASON_API_ERROR}


def timeout_event(message: str, pending: Sequence[str]) -> dict[str, Any]:
    return {"status": "timeout", "message": message, "pending": list(pending)}


def batch_success_event(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "success", "batch": dict(batch)}


def batch_ended_event(message: str, batch: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "batch_id": batch.get("id"),
        "reason": REASON_BATCH_ENDED,
        "batch": dict(batch),
    }


def batch_api_error_event(message: str, batch_id: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "batch_id": batch_id,
        "reason": REASON_API_ERROR,
        "batch": None,
    }


def batch_timeout_event(message: str, batch_id: str, batch: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "status": "timeout",
        "message": message,
        "batch_id": batch_id,
        "batch": dict(batch) if batch is not None else None,
    }


def _event_status(event: Any, task_id: str, error_type: type[Exception]) -> tuple[str, str]:
    """The event's status and message; a missing or malformed event is ``error_type``."""
    if not isinstance(event, Mapping) or "status" not in event:
        raise error_type(f"{task_id} resumed without a valid trigger event: {event!r}")
    return event["status"], str(event.get("message") or "no message")


def files_from_event(event: Any, *, task_id: str) -> list[dict[str, Any]]:
    """The ready file dicts of an :class:`UploadCompleteTrigger` event, or the matching exception.

    :param event: what the task resumed with (may be ``None`` or malformed after a DB round trip).
    :param task_id: named in the error messages.
    :raises FileProcessingFailedError: the server said a file is ``error``, deleted or expired.
    :raises FileWaitError: an API failure, or an event that is not a valid trigger event.
    :raises FileWaitTimeoutError: the trigger reached its deadline.
    """
    status, message = _event_status(event, task_id, exceptions.FileWaitError)
    if status == "timeout":
        raise exceptions.FileWaitTimeoutError(message)
    if status == "error":
        if event.get("reason") == REASON_FILE_FAILED:
            raise exceptions.FileProcessingFailedError(message)
        raise exceptions.FileWaitError(message)
    if status != "success":
        raise exceptions.FileWaitError(f"{task_id}: unknown trigger event status {status!r}: {message}")
    files = event.get("files")
    if (
        not isinstance(files, list)
        or not files
        or not all(isinstance(f, Mapping) and "id" in f for f in files)
    ):
        raise exceptions.FileWaitError(f"{task_id}: success event without a list of files: {event!r}")
    return [dict(f) for f in files]


def batch_from_event(event: Any, *, task_id: str) -> dict[str, Any]:
    """The batch dict of a :class:`BatchCompleteTrigger` success event, or the matching exception.

    :param event: what the task resumed with (may be ``None`` or malformed after a DB round trip).
    :param task_id: named in the error messages.
    :raises BatchEndedError: the batch ended in another final status; the subclass says which
        (``BatchFailedError``, ``BatchExpiredError``, ``BatchCancelledError``), ``.batch`` holds it.
    :raises BatchWaitError: an API failure, or an event that is not a valid trigger event.
    :raises BatchWaitTimeoutError: the trigger reached its deadline.
    """
    status, message = _event_status(event, task_id, exceptions.BatchWaitError)
    batch = event.get("batch")
    if status == "timeout":
        raise exceptions.BatchWaitTimeoutError(message)
    if status == "error":
        if event.get("reason") == REASON_BATCH_ENDED and isinstance(batch, Mapping):
            raise exceptions.BatchEndedError.for_batch(message, batch)
        raise exceptions.BatchWaitError(message)
    if status != "success":
        raise exceptions.BatchWaitError(f"{task_id}: unknown trigger event status {status!r}: {message}")
    if not isinstance(batch, Mapping) or not isinstance(batch.get("id"), str):
        raise exceptions.BatchWaitError(f"{task_id}: success event without a batch: {event!r}")
    return dict(batch)
