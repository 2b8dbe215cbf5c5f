"""DownloadBatchResultsOperator: a finished batch's results into object storage, every request accounted for.

The rules (what is downloaded, named, merged, resubmitted and checked) live in
:mod:`airflow_provider_files.batches.collect`; this module reads the task's arguments and context,
opens the destination, and turns outcomes into task results and failures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ObjectStoragePath, XComArg

from airflow_provider_files._airflow_compat import AirflowException, AirflowFailException
from airflow_provider_files.api import Batch
from airflow_provider_files.api.batch_models import TERMINAL_BATCH_STATUSES
from airflow_provider_files.batches.collect import (
    CollectedResults,
    ResultsNotCollectableError,
    WritableHandle,
    collect_results,
    delete_files,
)
from airflow_provider_files.batches.follow_up import run_follow_up
from airflow_provider_files.batches.submit import run_key
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.jsonl import ResultLineError
from airflow_provider_files.jsonl.line_scanner import LineTooLongError
from airflow_provider_files.jsonl.result_files import ResultOrder
from airflow_provider_files.operators._checkpoint import as_storage_path, is_local

if TYPE_CHECKING:
    from airflow.sdk import Context

#: How long a follow-up batch is waited for (the API's completion window, and some slack).
FOLLOW_UP_TIMEOUT_S = 25 * 3600.0
#: How long the upload of a follow-up round's requests is waited for until ``processed``.
FILE_READY_TIMEOUT_S = 3600.0
FOLLOW_UP_POLL_INTERVAL_S = 30.0
ORDERS = ("results", "input")


def batch_id_of(batch: Any) -> str:
    """The id of a batch given as an id, a batch dict (``Batch.to_dict()``) or a :class:`Batch`."""
    if isinstance(batch, Batch):
        return batch.id
    if isinstance(batch, Mapping):
        batch = batch.get("id")
    if isinstance(batch, str) and batch.strip():
        return batch.strip()
    raise AirflowFailException(f"batch must be a batch id, a batch dict or a Batch, got {batch!r}")


def _is_template(value: Any) -> bool:
    return isinstance(value, XComArg) or (isinstance(value, str) and "{{" in value)


def _checked_options(
    order: Any,
    max_failed_fraction: Any,
    resubmit_failed: Any,
    cleanup_files: Any,
    *,
    skip_templates: bool = False,
) -> tuple[ResultOrder, float | None, int, bool]:
    """The options as their types (rendered templates may be strings); a bad one is a ValueError."""
    if not (skip_templates and _is_template(order)) and order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    fraction = max_failed_fraction
    if not (skip_templates and _is_template(fraction)):
        if isinstance(fraction, str):
            fraction = (
                None if fraction.strip() in ("", "None", "null") else _number(fraction, "max_failed_fraction")
            )
        if fraction is not None and (
            isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0
        ):
            raise ValueError(f"max_failed_fraction must be between 0.0 and 1.0, got {max_failed_fraction!r}")
    rounds = resubmit_failed
    if not (skip_templates and _is_template(rounds)):
        if isinstance(rounds, str) and rounds.strip().isdigit():
            rounds = int(rounds)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ValueError(f"resubmit_failed must be an int >= 0, got {resubmit_failed!r}")
    cleanup = cleanup_files
    if not (skip_templates and _is_template(cleanup)):
        if isinstance(cleanup, str) and cleanup.strip().lower() in ("true", "false"):
            cleanup = cleanup.strip().lower() == "true"
        if not isinstance(cleanup, bool):
            raise ValueError(f"cleanup_files must be true or false, got {cleanup_files!r}")
    return order, fraction, rounds, cleanup


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


class DownloadBatchResultsOperator(BaseOperator):
    """Download a finished batch's output and error files into a folder and account for every request.

    Works on any batch id, including batches this provider did not create. Files written in
    ``destination`` (see :mod:`airflow_provider_files.batches.collect`):

    * ``<batch_id>_output.jsonl`` and ``<batch_id>_errors.jsonl``, as the API serves them (empty
      when the batch has no such file), each downloaded once and streamed (bounded memory);
    * or, with ``order="input"`` or ``resubmit_failed``, one ``<batch_id>_results.jsonl`` with
      exactly one line per ``custom_id``.

    Every ``custom_id`` of the input must appear exactly once across the results: a duplicated or
    unknown id fails the task, and so does a missing one unless the batch ended ``expired`` or
    ``cancelled`` (the requests it did not run count as failed). Checks run after the files are
    written. Returns the summary (XCom): ``batch_id``, ``status``, counts by outcome
    (``succeeded``, ``failed``, ``missing_count`` ...), ``error_codes`` with counts, ``usage`` (tokens
    of the result lines), ``batch_usage`` (tokens the API reports, summed over the rounds),
    ``files`` (URLs of the files written) and ``rounds``.

    :param batch: the batch: an id, a batch dict (``BatchOperator(...).output``) or an XComArg.
        Templated. It must have ended (``completed``, ``expired`` or ``cancelled``).
    :param destination: the folder: a local path, ``file://``, ``s3://``, ``gs://``, ``memory://`` ...
        URL or an ``ObjectStoragePath``. Templated.
    :param files_conn_id: the ``openai_files`` connection.

    ``order``, ``max_failed_fraction``, ``resubmit_failed`` and ``cleanup_files`` are templated too
    (e.g. from DAG params), and checked again once rendered.

    :param order: ``"results"`` (as served) or ``"input"`` (the input's order, one results file).
    :param max_failed_fraction: fail the task (after writing the files) when the share of failed
        and missing requests is above this (0.0 to 1.0); ``None``: no limit.
    :param resubmit_failed: follow-up rounds at most: requests that failed with a retryable error
        (``batch_expired``, 429, 5xx) and the missing ones go into a new batch (their input lines,
        uploaded with purpose ``batch``), which the task waits for, **blocking** its worker slot.
        A task retry reuses the follow-up batches its earlier try created (one per round).
    :param cleanup_files: delete the input, output and error files of the batch (and of its
        follow-ups) once the results are written and checked.
    :param input_source: the batch's input file (local path, URL or ``ObjectStoragePath``) when the
        API's copy is gone or should not be downloaded. Templated.
    :param follow_up_timeout_s: how long each follow-up batch is waited for.
    :param poll_interval_s: first wait between checks of a follow-up batch (it grows from there).
    """

    template_fields: Sequence[str] = (
        "batch",
        "destination",
        "files_conn_id",
        "input_source",
        "order",
        "max_failed_fraction",
        "resubmit_failed",
        "cleanup_files",
    )
    ui_color = "#e4e8f7"

    def __init__(
        self,
        *,
        batch: str | Mapping[str, Any] | XComArg,
        destination: str | ObjectStoragePath,
        files_conn_id: str = FilesHook.default_conn_name,
        order: str = "results",
        max_failed_fraction: float | str | None = None,
        resubmit_failed: int | str = 0,
        cleanup_files: bool | str = False,
        input_source: str | ObjectStoragePath | None = None,
        follow_up_timeout_s: float = FOLLOW_UP_TIMEOUT_S,
        poll_interval_s: float = FOLLOW_UP_POLL_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if follow_up_timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError(
                f"follow_up_timeout_s and poll_interval_s must be positive, got "
                f"{follow_up_timeout_s!r} and {poll_interval_s!r}"
            )
        # A template or an XComArg is checked once rendered, in execute.
        _checked_options(order, max_failed_fraction, resubmit_failed, cleanup_files, skip_templates=True)
        self.batch = batch
        self.destination = destination
        self.files_conn_id = files_conn_id
        self.order = order
        self.max_failed_fraction = max_failed_fraction
        self.resubmit_failed = resubmit_failed
        self.cleanup_files = cleanup_files
        self.input_source = input_source
        self.follow_up_timeout_s = follow_up_timeout_s
        self.poll_interval_s = poll_interval_s

    @cached_property
    def hook(self) -> FilesHook:
        return FilesHook(self.files_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        try:
            order, max_failed_fraction, resubmit_failed, cleanup_files = _checked_options(
                self.order, self.max_failed_fraction, self.resubmit_failed, self.cleanup_files
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        batch = self.hook.get_batch(batch_id_of(self.batch))
        folder = as_storage_path(self.destination)
        if is_local(folder):
            folder.mkdir(parents=True, exist_ok=True)

        def open_dest(name: str) -> WritableHandle:
            return (folder / name).open("wb")

        input_source = as_storage_path(self.input_source) if self.input_source else None
        ti = context["ti"]
        keys = (ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))

        def run_round(number: int, path: Path, original: Batch) -> Batch:
            return run_follow_up(
                self.hook.client,
                number=number,
                input_path=path,
                original=original,
                run_key=run_key(*keys, extra=f"{original.id}:round{number}"),
                wait_file=self._wait_file,
                wait_batch=self._wait_batch,
            )

        self.log.info("Collecting the results of batch %s (%s) into %s", batch.id, batch.status, folder)
        try:
            with tempfile.TemporaryDirectory(prefix="airflow-batch-results-") as work_dir:
                collected = collect_results(
                    self.hook.client,
                    batch,
                    open_dest,
                    work_dir=Path(work_dir),
                    input_source=input_source,
                    order=order,
                    resubmit_rounds=resubmit_failed,
                    run_round=run_round,
                )
        except ResultsNotCollectableError as exc:
            if batch.status in TERMINAL_BATCH_STATUSES:
                raise AirflowFailException(str(exc)) from exc
            raise AirflowException(str(exc)) from exc  # still running: a later retry may find it done
        except (ResultLineError, LineTooLongError) as exc:
            raise AirflowFailException(f"batch {batch.id}: a result line cannot be read: {exc}") from exc
        return self._finish(collected, folder, max_failed_fraction, cleanup_files)

    def _finish(
        self,
        collected: CollectedResults,
        folder: ObjectStoragePath,
        max_failed_fraction: float | None,
        cleanup_files: bool,
    ) -> dict[str, Any]:
        summary = collected.to_dict()
        summary["files"] = {role: str(folder / name) for role, name in collected.files.items()}
        self.log.info(
            "Batch %s (%s): %d succeeded, %d failed, %d missing of %s; files: %s",
            collected.batch.id,
            collected.batch.status,
            summary["succeeded"],
            summary["failed"],
            summary["missing_count"],
            summary["total_input"],
            ", ".join(summary["files"].values()),
        )
        if summary["error_codes"]:
            self.log.info("Error codes: %s", summary["error_codes"])
        problems = collected.problems(max_failed_fraction)
        if problems:
            raise AirflowFailException(
                f"batch {collected.batch.id}: "
                + "; ".join(problems)
                + f" (files written: {summary['files']})"
            )
        if cleanup_files:
            summary["deleted_files"] = delete_files(self.hook.client, collected.file_ids())
            self.log.info("Deleted the batch's files: %s", ", ".join(summary["deleted_files"]))
        return summary

    def _wait_file(self, file_id: str) -> object:
        return self.hook.wait_for_files(
            file_id, timeout_s=FILE_READY_TIMEOUT_S, poll_interval_s=min(5.0, self.poll_interval_s)
        )

    def _wait_batch(self, batch: Batch) -> Batch:
        return self.hook.wait_for_batch(
            batch.id,
            targets=TERMINAL_BATCH_STATUSES,
            timeout_s=self.follow_up_timeout_s,
            poll_interval_s=self.poll_interval_s,
        )
