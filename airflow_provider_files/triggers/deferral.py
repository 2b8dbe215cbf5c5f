"""Handing a wait to the triggerer and taking it back: one helper for the operators and the sensors.

It lives next to the triggers so that ``operators/`` and ``sensors/`` can both use it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger

from airflow_provider_files._airflow_compat import conf
from airflow_provider_files.api.polling import MAX_CONSECUTIVE_ERRORS
from airflow_provider_files.api.readiness import NOT_FOUND_GRACE_S, FileTarget
from airflow_provider_files.triggers.batches import BatchCompleteTrigger
from airflow_provider_files.triggers.events import batch_from_event, files_from_event
from airflow_provider_files.triggers.files import UploadCompleteTrigger

# The trigger ends at its own deadline with a precise message; Airflow's deferral timeout is a backstop.
DEFER_TIMEOUT_SLACK_S = 60.0


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when a task is built (not when this module is imported)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def defer_wait(
    task: BaseOperator, trigger: BaseTrigger, *, timeout_s: float, method_name: str = "execute_complete"
) -> NoReturn:
    """Defer ``task`` to ``trigger``; Airflow gives up ``DEFER_TIMEOUT_SLACK_S`` after the trigger would.

    :param task: the operator or sensor that waits.
    :param trigger: the trigger that polls (it must end at its own deadline, ``timeout_s`` from now).
    :param timeout_s: the length of the wait.
    :param method_name: the task method that receives the trigger's event.
    """
    task.defer(
        trigger=trigger,
        method_name=method_name,
        timeout=timedelta(seconds=timeout_s + DEFER_TIMEOUT_SLACK_S),
    )


def defer_until_files_ready(
    task: BaseOperator,
    targets: Sequence[FileTarget],
    *,
    files_conn_id: str,
    deadline: float,
    timeout_s: float,
    poll_interval_s: float,
    max_poll_interval_s: float,
    not_found_grace_s: float = NOT_FOUND_GRACE_S,
    max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
    missing_since: Mapping[str, float] | None = None,
) -> NoReturn:
    """Defer ``task`` to an :class:`UploadCompleteTrigger` for ``targets``; see :func:`files_on_resume`.

    :param deadline: absolute end of the wait (unix seconds).
    :param timeout_s: the length of the wait, for Airflow's backstop timeout.
    :param missing_since: first-404 times already seen, by file id.
    """
    task.log.info("Deferring until file(s) %s are ready", ", ".join(t.file_id for t in targets))
    defer_wait(
        task,
        UploadCompleteTrigger(
            file_ids=[t.file_id for t in targets],
            files_conn_id=files_conn_id,
            deadline=deadline,
            poll_interval_s=poll_interval_s,
            max_poll_interval_s=max(max_poll_interval_s, poll_interval_s),
            expected_bytes={t.file_id: t.expected_bytes for t in targets if t.expected_bytes is not None},
            not_found_grace_s=not_found_grace_s,
            max_consecutive_errors=max_consecutive_errors,
            missing_since=missing_since,
        ),
        timeout_s=timeout_s,
    )


def files_on_resume(task: BaseOperator, event: Any) -> list[dict[str, Any]]:
    """The ready file dicts of the trigger's event, logged; or the exception the event stands for."""
    files = files_from_event(event, task_id=task.task_id)
    task.log.info("%d file(s) ready: %s", len(files), ", ".join(str(f["id"]) for f in files))
    return files


def defer_until_batch_done(
    task: BaseOperator,
    batch_id: str,
    *,
    files_conn_id: str,
    targets: Collection[str],
    deadline: float,
    timeout_s: float,
    poll_interval_s: float,
    max_poll_interval_s: float,
    method_name: str = "execute_complete",
    max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
) -> NoReturn:
    """Defer ``task`` to a :class:`BatchCompleteTrigger` for ``batch_id``; see :func:`batch_on_resume`.

    :param targets: statuses that end the wait successfully.
    :param deadline: absolute end of the wait (unix seconds).
    :param timeout_s: the length of the wait, for Airflow's backstop timeout.
    :param method_name: the task method that receives the trigger's event.
    """
    task.log.info("Deferring until batch %s is %s", batch_id, " or ".join(sorted(targets)))
    defer_wait(
        task,
        BatchCompleteTrigger(
            batch_id=batch_id,
            files_conn_id=files_conn_id,
            deadline=deadline,
            targets=targets,
            poll_interval_s=poll_interval_s,
            max_poll_interval_s=max(max_poll_interval_s, poll_interval_s),
            max_consecutive_errors=max_consecutive_errors,
        ),
        timeout_s=timeout_s,
        method_name=method_name,
    )


def batch_on_resume(task: BaseOperator, event: Any) -> dict[str, Any]:
    """The batch dict of the trigger's event, logged; or the exception the event stands for
    (:func:`~airflow_provider_files.triggers.events.batch_from_event`)."""
    batch = batch_from_event(event, task_id=task.task_id)
    task.log.info("Batch %s is %s", batch["id"], batch.get("status"))
    return batch
