"""BatchOperator: run a Batch job on an uploaded file, once per task run, and wait for it.

The rules (the run key, looking before creating, lost answers, pacing, the enqueued-token limit)
live in :mod:`airflow_provider_files.batches`; this module holds arguments, templating, XCom and
deferral.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator, ObjectStoragePath, XComArg

from airflow_provider_files.api import Batch, FilesApiError
from airflow_provider_files.api.limits import validate_completion_window, validate_expires_after_s
from airflow_provider_files.api.polling import MAX_POLL_INTERVAL_S
from airflow_provider_files.api.readiness import describe_batch_outcome
from airflow_provider_files.batches import (
    DEFAULT_OUTPUT_EXPIRES_AFTER_S,
    BatchInput,
    TokenLimitRetry,
    resolve_batch_input,
    run_batch,
    run_key,
    submit_batch,
    token_limit_delay_s,
)
from airflow_provider_files.batches.submit import batch_metadata
from airflow_provider_files.batches.token_limit import (
    TOKEN_LIMIT_MAX_WAIT_S,
    TOKEN_LIMIT_WAIT_S,
    log_token_limit_wait,
)
from airflow_provider_files.exceptions import BatchEndedError, BatchFailedError, BatchWaitTimeoutError
from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.operators._checkpoint import (
    ObjectStorageCheckpointStore,
    add_success_callback,
    checkpoint_name_from_context,
    default_checkpoint_folder,
    prepare_checkpoint_folder,
    remove_task_checkpoints,
)
from airflow_provider_files.triggers.deferral import (
    batch_on_resume,
    default_deferrable,
    defer_until_batch_done,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

POLL_INTERVAL_S = 30.0
#: The completion window is 24 h; a batch still running an hour after it is given up on.
WAIT_TIMEOUT_S = 25 * 3600.0
TARGET_STATUSES = ("completed",)


def _require_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class BatchOperator(BaseOperator):
    """Create a Batch job for an uploaded file of requests and (by default) wait until it ends.

    A task retry, or a create whose answer was lost, never makes a second batch: the batch carries
    a key of the task run (dag, task, run, map index) in its ``metadata``, and the operator looks
    for it before creating one. A batch refused for the enqueued-token limit
    (``token_limit_exceeded``) is created again after a wait instead of failing the task.

    Chains from the upload operators: ``BatchOperator(input_file_id=upload.output)``, and for
    ``split=True`` uploads ``BatchOperator.partial(...).expand(input_file_id=upload.output)``.

    :param input_file_id: a file id, or a file dict as ``UploadJsonlOperator`` returns (templated;
        an XComArg of either).
    :param endpoint: the endpoint of every request of the file, e.g. ``/v1/chat/completions``
        (templated). Default: the endpoint the upload operator validated the file for.
    :param completion_window: ``24h``, the only window the API offers (templated).
    :param metadata: up to 15 string pairs stored with the batch (templated; one more pair,
        ``airflow_run_key``, is the operator's).
    :param output_expires_after_s: the output and error files expire this long after they are
        written; default 30 days (2592000 s, the API's maximum), ``None`` for the server's default.
    :param wait_for_completion: wait until the batch ends (default); otherwise return it as created.
    :param deferrable: wait in the triggerer instead of a worker slot (default:
        ``[operators] default_deferrable``).
    :param poll_interval_s: first wait between checks of the batch; it grows up to a minute.
    :param timeout_s: give up waiting this long after the batch was created (default 25 h).
    :param cancel_on_kill: cancel the batch when the task is killed.
    :param cancel_on_timeout: cancel the batch when the wait times out.
    :param token_limit_wait_s: wait before creating a batch again after a token-limit refusal.
    :param token_limit_max_wait_s: fail once such waits for this task run would exceed this.
    :param checkpoint_folder: where the batch id of each task run is remembered, so that a retry
        finds its batch directly (local path or ObjectStoragePath; default
        ``[openai_files] checkpoint_folder``, else ``$AIRFLOW_HOME/upload_checkpoints``). Should it be
        lost, the batch is still found by listing the newest batches. Removed once the task
        instance succeeds. Templated.
    :param files_conn_id: id of an ``openai_files`` connection (templated).
    :return: the batch as a dict (``Batch.to_dict()``: id, status, request_counts, output_file_id,
        error_file_id, usage ...).
    """

    template_fields: Sequence[str] = (
        "input_file_id",
        "endpoint",
        "completion_window",
        "metadata",
        "files_conn_id",
        "checkpoint_folder",
    )
    template_fields_renderers = {"metadata": "json"}
    ui_color = "#e4e0f7"

    def __init__(
        self,
        *,
        input_file_id: str | Mapping[str, Any] | XComArg,
        endpoint: str | None = None,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        output_expires_after_s: int | None = DEFAULT_OUTPUT_EXPIRES_AFTER_S,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        timeout_s: float = WAIT_TIMEOUT_S,
        cancel_on_kill: bool = True,
        cancel_on_timeout: bool = True,
        token_limit_wait_s: float = TOKEN_LIMIT_WAIT_S,
        token_limit_max_wait_s: float = TOKEN_LIMIT_MAX_WAIT_S,
        files_conn_id: str = FilesHook.default_conn_name,
        checkpoint_folder: str | ObjectStoragePath | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if input_file_id is None:
            raise TypeError("input_file_id is required: a file id, a file dict or an upload task's output")
        validate_expires_after_s(output_expires_after_s, "output_expires_after_s")
        _require_positive("poll_interval_s", poll_interval_s)
        _require_positive("timeout_s", timeout_s)
        self.input_file_id = input_file_id
        self.endpoint = endpoint
        self.completion_window = completion_window
        self.metadata = metadata
        self.output_expires_after_s = output_expires_after_s
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.cancel_on_kill = cancel_on_kill
        self.cancel_on_timeout = cancel_on_timeout
        self.token_limit = TokenLimitRetry(wait_s=token_limit_wait_s, max_wait_s=token_limit_max_wait_s)
        self.files_conn_id = files_conn_id
        self.checkpoint_folder = checkpoint_folder
        self._batch_id: str | None = None
        # once the task instance has succeeded, no retry needs the batch id it remembered
        self.on_success_callback = add_success_callback(self.on_success_callback, self._remove_checkpoints)

    @cached_property
    def hook(self) -> FilesHook:
        return FilesHook(files_conn_id=self.files_conn_id)

    # -- creating ------------------------------------------------------------------------------

    def _run_key(self, context: Context) -> str:
        ti = context["ti"]
        return run_key(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))

    def _request(self, context: Context) -> dict[str, Any]:
        """The keyword arguments of ``submit_batch``, checked once templates and XComArgs are resolved."""
        chosen: BatchInput = resolve_batch_input(self.input_file_id, self.endpoint)
        validate_completion_window(self.completion_window)
        key = self._run_key(context)
        batch_metadata(self.metadata, key)  # checked before anything is sent
        return {
            "input_file_id": chosen.file_id,
            "endpoint": chosen.endpoint,
            "run_key": key,
            "completion_window": self.completion_window,
            "metadata": self.metadata,
            "output_expires_after_s": self.output_expires_after_s,
            "log": self.log,
            "checkpoint": ObjectStorageCheckpointStore.for_task(
                prepare_checkpoint_folder(self.checkpoint_folder, self.log, getattr(self, "executor", None)),
                checkpoint_name_from_context(context),
                suffix=".batch",
            ),
        }

    def _remove_checkpoints(self, context: Context) -> None:
        folder = self.checkpoint_folder or default_checkpoint_folder()
        remove_task_checkpoints(folder, checkpoint_name_from_context(context), self.log)

    def _submit(self, request: Mapping[str, Any]) -> Batch:
        result = submit_batch(self.hook.client, **request)
        self._batch_id = result.batch.id
        return result.batch

    def _deadline(self, batch: Batch) -> float:
        """``timeout_s`` after the batch was created: a retry that finds it keeps the same end."""
        start = batch.created_at if batch.created_at is not None else time.time()
        return min(float(start), time.time()) + self.timeout_s

    def execute(self, context: Context) -> dict[str, Any]:
        request = self._request(context)
        try:
            if not self.wait_for_completion:
                return self._submit(request).to_dict()
            if self.deferrable:
                return self._defer(self._submit(request))
            batch = run_batch(self.hook.client, wait=self._wait, token_limit=self.token_limit, **request)
            return self._finish(batch)
        finally:
            self.hook.close()

    # -- waiting -------------------------------------------------------------------------------

    def _wait(self, batch: Batch) -> Batch:
        """Blocking wait; a token-limit refusal is returned (to be created again), other ends raise."""
        self._batch_id = batch.id
        try:
            return self.hook.wait_for_batch(
                batch.id,
                targets=TARGET_STATUSES,
                timeout_s=max(0.0, self._deadline(batch) - time.time()),
                poll_interval_s=self.poll_interval_s,
                max_poll_interval_s=max(MAX_POLL_INTERVAL_S, self.poll_interval_s),
                cancel_on_timeout=self.cancel_on_timeout,
            )
        except BatchFailedError as exc:
            if exc.batch is not None:
                return Batch.from_dict(exc.batch)
            raise

    def _defer(self, batch: Batch) -> dict[str, Any]:
        """Hand the wait to the triggerer; a batch that has ended already needs no trip there."""
        if batch.is_terminal:
            return self._finish(batch)
        defer_until_batch_done(
            self,
            batch.id,
            files_conn_id=self.files_conn_id,
            targets=TARGET_STATUSES,
            deadline=self._deadline(batch),
            timeout_s=self.timeout_s,
            poll_interval_s=self.poll_interval_s,
            max_poll_interval_s=max(MAX_POLL_INTERVAL_S, self.poll_interval_s),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: the completed batch, a new batch after a token-limit refusal,
        or the failure the event stands for."""
        try:
            return self._resume(context, event)
        finally:
            self.hook.close()

    def _resume(self, context: Context, event: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return batch_on_resume(self, event)
        except BatchFailedError as exc:
            if exc.batch is None:
                raise
            failed = Batch.from_dict(exc.batch)
            delay = token_limit_delay_s(
                self.hook.client, failed, run_key=self._run_key(context), retry=self.token_limit
            )
            if delay is None:
                raise
            log_token_limit_wait(self.log, failed, delay)
            self._defer_resubmit(delay)
        except BatchWaitTimeoutError:
            if isinstance(event, Mapping):
                self._cancel_after_timeout(str(event.get("batch_id") or ""))
            raise

    def _defer_resubmit(self, delay_s: float) -> NoReturn:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=delay_s), end_from_trigger=False),
            method_name="execute_resubmit",
        )

    def execute_resubmit(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after a token-limit wait: create the batch again and wait for it in the triggerer."""
        try:
            return self._defer(self._submit(self._request(context)))
        finally:
            self.hook.close()

    def _finish(self, batch: Batch) -> dict[str, Any]:
        """The batch as XCom when it completed; the fitting exception otherwise."""
        if batch.status in TARGET_STATUSES:
            self.log.info("Batch %s completed: %s", batch.id, batch.request_counts)
            return batch.to_dict()
        raise BatchEndedError.for_batch(_ended_message(batch), batch.to_dict())

    # -- stopping ------------------------------------------------------------------------------

    def _cancel(self, batch_id: str, why: str) -> None:
        if not batch_id:
            return
        try:
            self.hook.cancel_batch(batch_id)
        except FilesApiError as exc:
            self.log.warning("Could not cancel batch %s (%s): %s", batch_id, why, exc)
        else:
            self.log.info("Cancelled batch %s (%s)", batch_id, why)

    def _cancel_after_timeout(self, batch_id: str) -> None:
        if self.cancel_on_timeout:
            self._cancel(batch_id, "the wait timed out")
        else:
            self.log.info("Batch %s left running (cancel_on_timeout=False)", batch_id)

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._batch_id:
            self._cancel(self._batch_id, "the task was killed")


def _ended_message(batch: Batch) -> str:
    details = describe_batch_outcome(batch)
    return f"batch {batch.id} ended {batch.status!r}" + (f": {details}" if details else "")
