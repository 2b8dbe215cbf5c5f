"""UploadCompleteSensor: waits until uploaded files are ready to feed a Batch job, and fails fast when
the server says they never will be. Also :func:`wait_for_files`, the same wait as a blocking call."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from airflow_provider_files.api import FileObject, FilesApiError, NotFoundError
from airflow_provider_files.api.readiness import (
    NOT_FOUND_GRACE_S,
    FileTarget,
    ReadinessTracker,
    parse_file_targets,
)
from airflow_provider_files.api.retry import is_transient
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.triggers.files import (
    MAX_CONSECUTIVE_ERRORS,
    MAX_POLL_INTERVAL_S,
    POLL_BACKOFF_FACTOR,
    REASON_FILE_FAILED,
    UploadCompleteTrigger,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

POKE_INTERVAL_S = 10.0
TIMEOUT_S = 3600.0
# The trigger ends at its own deadline with a precise message; Airflow's deferral timeout is a backstop.
DEFER_TIMEOUT_SLACK_S = 60.0


class FileProcessingFailedError(AirflowFailException):
    """The server says a file will never be ready (``error``, deleted, expired); retrying will not help."""


class FileWaitError(AirflowException):
    """The API could not be asked about the files (bad key, outage that outlasted the tolerance ...)."""


class FileWaitTimeoutError(AirflowSensorTimeout):
    """The files were not ready before the deadline."""


def _check_files(hook: FilesHook, tracker: ReadinessTracker, *, now: Callable[[], float]) -> None:
    """Fetch every unresolved file once and record it; raises on the first failed file.

    API errors other than 404 propagate as :class:`~airflow_provider_files.api.FilesApiError`.
    """
    for target in tracker.unresolved():
        try:
            file: FileObject | None = hook.get_file(target.file_id)
        except NotFoundError:
            file = None
        verdict = tracker.record(target, file, now=now())
        if verdict.is_failed:
            raise FileProcessingFailedError(verdict.reason)


def _targets_with_sizes(file_ids: Any, expected_bytes: Mapping[str, int] | None) -> list[FileTarget]:
    try:
        targets, _ = parse_file_targets(file_ids, what="file_ids")
    except TypeError as exc:
        raise AirflowFailException(str(exc)) from exc
    sizes = dict(expected_bytes or {})
    return [FileTarget(t.file_id, sizes.get(t.file_id, t.expected_bytes)) for t in targets]


def wait_for_files(
    hook: FilesHook,
    file_ids: Any,
    *,
    timeout_s: float,
    poll_interval_s: float = POKE_INTERVAL_S,
    expected_bytes: Mapping[str, int] | None = None,
    not_found_grace_s: float = NOT_FOUND_GRACE_S,
    max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
    max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> list[FileObject]:
    """Block until every file is ready to feed a batch (same rule as :class:`UploadCompleteSensor`).

    :param hook: the hook whose connection the files live behind.
    :param file_ids: a file id, a file dict (``FileObject.to_dict()``), or a list of those.
    :param timeout_s: give up after this long.
    :param poll_interval_s: first wait between checks; grows by half each check.
    :param expected_bytes: sizes the uploader sent, by file id (file dicts bring their own).
    :param not_found_grace_s: how long a 404 is tolerated after the first one for a file.
    :param max_poll_interval_s: cap on the wait between checks.
    :param max_consecutive_errors: transient API errors in a row that are ridden out.
    :return: the ready file objects, in the order given.
    :raises FileProcessingFailedError: a file is ``error`` (with ``status_details``), deleted or expired.
    :raises FileWaitError: a non-transient API error, or too many transient ones in a row.
    :raises FileWaitTimeoutError: not ready within ``timeout_s``.
    """
    tracker = ReadinessTracker(
        _targets_with_sizes(file_ids, expected_bytes), not_found_grace_s=not_found_grace_s
    )
    deadline = clock() + timeout_s
    interval_s = min(poll_interval_s, max_poll_interval_s)
    consecutive_errors = 0
    while True:
        delay_s = interval_s
        try:
            _check_files(hook, tracker, now=clock)
        except FilesApiError as exc:
            consecutive_errors += 1
            if not is_transient(exc) or consecutive_errors > max_consecutive_errors:
                raise FileWaitError(f"could not check files: {exc}") from exc
            hook.log.warning("API error %d tolerated while waiting for files: %s", consecutive_errors, exc)
        else:
            consecutive_errors = 0
            if tracker.done:
                return tracker.ready_files()
            hook.log.info("%s", tracker.pending_summary())
        remaining_s = deadline - clock()
        if remaining_s <= 0:
            raise FileWaitTimeoutError(f"files not ready after {timeout_s:g}s; {tracker.pending_summary()}")
        sleep(min(delay_s, remaining_s))
        interval_s = min(interval_s * POLL_BACKOFF_FACTOR, max_poll_interval_s)


def files_from_trigger_event(event: Any, *, task_id: str) -> list[dict[str, Any]]:
    """The ready file dicts of an :class:`UploadCompleteTrigger` event, or the matching exception.

    :param event: what the task resumed with (may be ``None`` or malformed after a DB round trip).
    :param task_id: named in the error messages.
    :raises FileProcessingFailedError: the server said a file is ``error``, deleted or expired.
    :raises FileWaitError: an API failure, or an event that is not a valid trigger event.
    :raises FileWaitTimeoutError: the trigger reached its deadline.
    """
    if not isinstance(event, Mapping) or "status" not in event:
        raise FileWaitError(f"{task_id} resumed without a valid trigger event: {event!r}")
    status = event["status"]
    message = str(event.get("message") or "no message")
    if status == "timeout":
        raise FileWaitTimeoutError(message)
    if status == "error":
        if event.get("reason") == REASON_FILE_FAILED:
            raise FileProcessingFailedError(message)
        raise FileWaitError(message)
    if status != "success":
        raise FileWaitError(f"{task_id}: unknown trigger event status {status!r}: {message}")
    files = event.get("files")
    if (
        not isinstance(files, list)
        or not files
        or not all(isinstance(f, Mapping) and "id" in f for f in files)
    ):
        raise FileWaitError(f"{task_id}: success event without a list of files: {event!r}")
    return [dict(f) for f in files]


class UploadCompleteSensor(BaseSensorOperator):
    """Waits until uploaded files are ready to feed a Batch job, and returns their file objects.

    A file is ready when its status is ``processed``, or, on a gateway that reports no status,
    when it can be retrieved with the expected size. The sensor fails at once, with the server's
    ``status_details``, when a file is ``error``, deleted or expired; a 404 just after an upload
    is tolerated for ``not_found_grace_s``. Transient API errors (connection, 429, 5xx) are
    ridden out up to ``max_consecutive_errors`` checks in a row.

    In deferrable mode the sensor checks once, then hands the wait to
    :class:`~airflow_provider_files.triggers.files.UploadCompleteTrigger`, freeing the worker slot.

    XCom: the file dict (``FileObject.to_dict()``), or a list of them when ``file_id`` is a list.

    :param file_id: a file id, a file dict from the upload operators (its ``bytes`` is the expected
        size), or a list of those; an XComArg is accepted. Templated.
    :param files_conn_id: id of an ``openai_files`` connection. Templated.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param not_found_grace_s: how long a 404 is tolerated after the first one for a file.
    :param max_poll_interval_s: deferrable mode: cap on the growing wait between checks.
    :param max_consecutive_errors: transient API errors in a row that are ridden out.
    """

    template_fields = ("file_id", "files_conn_id")
    ui_color = "#dff2e1"

    def __init__(
        self,
        *,
        file_id: Any,
        files_conn_id: str = FilesHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        not_found_grace_s: float = NOT_FOUND_GRACE_S,
        max_poll_interval_s: float = MAX_POLL_INTERVAL_S,
        max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
        poke_interval: timedelta | float = POKE_INTERVAL_S,
        timeout: timedelta | float = TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.file_id = file_id
        self.files_conn_id = files_conn_id
        self.deferrable = deferrable
        self.not_found_grace_s = not_found_grace_s
        self.max_poll_interval_s = max(max_poll_interval_s, self.poke_interval)
        self.max_consecutive_errors = max_consecutive_errors
        self._tracker: ReadinessTracker | None = None
        self._consecutive_errors = 0

    @cached_property
    def hook(self) -> FilesHook:
        return FilesHook(files_conn_id=self.files_conn_id)

    def _parse_file_id(self) -> tuple[list[FileTarget], bool]:
        try:
            return parse_file_targets(self.file_id, what=f"{self.task_id}.file_id")
        except TypeError as exc:
            raise AirflowFailException(str(exc)) from exc

    def _xcom_value(self, files: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
        _, single = self._parse_file_id()
        return files[0] if single else files

    def _get_tracker(self, context: Context) -> ReadinessTracker:
        if self._tracker is None:
            targets, _ = self._parse_file_id()
            missing_anchor: float | None = None
            if self.reschedule and not self.deferrable:
                # A rescheduled sensor is a new object on each poke: count 404s from its first poke.
                first_poke = context["ti"].get_first_reschedule_date(context)
                missing_anchor = first_poke.timestamp() if first_poke is not None else None
            self._tracker = ReadinessTracker(
                targets, not_found_grace_s=self.not_found_grace_s, default_missing_since=missing_anchor
            )
        return self._tracker

    def poke(self, context: Context) -> PokeReturnValue:
        tracker = self._get_tracker(context)
        try:
            _check_files(self.hook, tracker, now=time.time)
        except FilesApiError as exc:
            self._consecutive_errors += 1
            if not is_transient(exc) or self._consecutive_errors > self.max_consecutive_errors:
                raise FileWaitError(f"could not check files: {exc}") from exc
            self.log.warning(
                "API error %d of %d tolerated: %s", self._consecutive_errors, self.max_consecutive_errors, exc
            )
            return PokeReturnValue(is_done=False)
        self._consecutive_errors = 0
        if tracker.done:
            return PokeReturnValue(
                is_done=True, xcom_value=self._xcom_value([f.to_dict() for f in tracker.ready_files()])
            )
        self.log.info("%s", tracker.pending_summary())
        return PokeReturnValue(is_done=False)

    def execute(self, context: Context) -> Any:
        self._parse_file_id()  # bad input fails before any request
        if not self.deferrable:
            return super().execute(context)
        deadline = time.time() + self.timeout
        try:
            result = self.poke(context)
        except AirflowException as exc:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(
                    f"Skipping ({'soft_fail' if self.soft_fail else 'never_fail'}): {exc}"
                ) from exc
            raise
        if result.is_done:
            return result.xcom_value
        tracker = self._get_tracker(context)
        poll_interval_s = self.poke_interval or 1.0
        self.defer(
            trigger=UploadCompleteTrigger(
                file_ids=[t.file_id for t in tracker.targets],
                files_conn_id=self.files_conn_id,
                deadline=deadline,
                poll_interval_s=poll_interval_s,
                max_poll_interval_s=max(self.max_poll_interval_s, poll_interval_s),
                expected_bytes={
                    t.file_id: t.expected_bytes for t in tracker.targets if t.expected_bytes is not None
                },
                not_found_grace_s=self.not_found_grace_s,
                max_consecutive_errors=self.max_consecutive_errors,
                missing_since=tracker.missing_since,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFER_TIMEOUT_SLACK_S),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the XCom value, or into the matching exception."""
        files = files_from_trigger_event(event, task_id=self.task_id)
        self.log.info("%d file(s) ready: %s", len(files), ", ".join(str(f["id"]) for f in files))
        return self._xcom_value(files)
