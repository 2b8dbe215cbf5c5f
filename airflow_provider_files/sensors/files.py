"""UploadCompleteSensor: waits until uploaded files are ready to feed a Batch job, and fails fast when
the server says they never will be. The same wait as a blocking call is ``FilesHook.wait_for_files``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import PokeReturnValue

from airflow_provider_files._airflow_compat import AirflowFailException
from airflow_provider_files.api.readiness import (
    NOT_FOUND_GRACE_S,
    FileTarget,
    ReadinessTracker,
    parse_file_targets,
)
from airflow_provider_files.exceptions import (
    FileProcessingFailedError,
    FileWaitError,
    FileWaitTimeoutError,
)
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.sensors._polling import PollingSensor
from airflow_provider_files.triggers.deferral import (
    DEFER_TIMEOUT_SLACK_S,
    defer_until_files_ready,
    files_on_resume,
)
from airflow_provider_files.triggers.events import files_from_event as files_from_trigger_event

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DEFER_TIMEOUT_SLACK_S",
    "FileProcessingFailedError",
    "FileWaitError",
    "FileWaitTimeoutError",
    "UploadCompleteSensor",
    "files_from_trigger_event",
    "wait_for_files",
]


#: Block until every file is ready: :meth:`FilesHook.wait_for_files` (called with the hook first),
#: kept here for existing callers.
wait_for_files = FilesHook.wait_for_files


class UploadCompleteSensor(PollingSensor):
    """Waits until uploaded files are ready to feed a Batch job, and returns their file objects.

    A file is ready when its status is ``processed``, or, on a gateway that reports no status,
    when it can be retrieved with the expected size. The sensor fails at once, with the server's
    ``status_details``, when a file is ``error``, deleted or expired; a 404 just after an upload
    is tolerated for ``not_found_grace_s``. Transient API errors (connection, 429, 5xx) are
    ridden out up to ``max_consecutive_errors`` checks in a row, and the next check waits at
    least as long as the server's Retry-After asks.

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
        not_found_grace_s: float = NOT_FOUND_GRACE_S,
        **kwargs: Any,
    ) -> None:
        # files_conn_id, deferrable, max_poll_interval_s, max_consecutive_errors, poke_interval and
        # timeout are PollingSensor's, with its defaults.
        super().__init__(**kwargs)
        self.file_id = file_id
        self.not_found_grace_s = not_found_grace_s
        self._tracker: ReadinessTracker | None = None

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

        def check() -> Any:
            failed = self.hook.check_files(tracker)
            if failed is not None:
                raise FileProcessingFailedError(failed.reason)
            if tracker.done:
                verdicts = [tracker.last_verdicts[t.file_id].reason for t in tracker.targets]
                self.log.info("%d file(s) ready: %s", len(verdicts), "; ".join(verdicts))
                return self._xcom_value([f.to_dict() for f in tracker.ready_files()])
            self.log.info("%s", tracker.pending_summary())
            return None

        return self._poke_once(
            check, give_up=lambda reason: FileWaitError(f"could not check files: {reason}")
        )

    def _check_input(self) -> None:
        self._parse_file_id()  # bad input fails before any request

    def _defer(self, context: Context, deadline: float) -> NoReturn:
        tracker = self._get_tracker(context)
        defer_until_files_ready(
            self,
            tracker.targets,
            files_conn_id=self.files_conn_id,
            deadline=deadline,
            timeout_s=self.timeout,
            poll_interval_s=self.poke_interval or 1.0,
            max_poll_interval_s=self.max_poll_interval_s,
            not_found_grace_s=self.not_found_grace_s,
            max_consecutive_errors=self.max_consecutive_errors,
            missing_since=tracker.missing_since,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the XCom value, or into the matching exception."""
        return self._xcom_value(files_on_resume(self, event))
