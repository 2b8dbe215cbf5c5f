"""What both upload operators share: arguments, source, checkpoint store, the uploads/ engine, waiting and XCom."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ObjectStoragePath, XComArg

from airflow_provider_files.api import FileObject
from airflow_provider_files.api.polling import MAX_POLL_INTERVAL_S
from airflow_provider_files.exceptions import FileWaitTimeoutError
from airflow_provider_files.hooks.files import FilesHook, file_targets
from airflow_provider_files.operators._checkpoint import (
    ObjectStorageCheckpointStore,
    add_success_callback,
    checkpoint_name_from_context,
    default_checkpoint_folder,
    prepare_checkpoint_folder,
    remove_task_checkpoints,
)
from airflow_provider_files.operators._source import (
    SourceLike,
    spooled_upload_source,
)
from airflow_provider_files.triggers.deferral import (
    default_deferrable,
    defer_until_files_ready,
    files_on_resume,
)
from airflow_provider_files.uploads import (
    DEFAULT_CONCURRENCY,
    SpooledObject,
    UploadProgress,
    UploadSource,
    validate_part_size,
)
from airflow_provider_files.uploads.limits import validate_concurrency, validate_expires_after_s
from airflow_provider_files.uploads.resumable import ResumableUploader

if TYPE_CHECKING:
    from airflow.sdk import Context


PROGRESS_LOG_INTERVAL_S = 5.0
POLL_INTERVAL_S = 10.0
WAIT_TIMEOUT_S = 3600.0


def _require_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class FilesUploadOperatorBase(BaseOperator):
    """What both upload operators share: source, checkpoints, the engine, waiting, XCom."""

    template_fields: Sequence[str] = (
        "source",
        "purpose",
        "filename",
        "files_conn_id",
        "checkpoint_folder",
    )
    ui_color = "#d8f3e4"

    def __init__(
        self,
        *,
        source: SourceLike | XComArg,
        purpose: str,
        files_conn_id: str = FilesHook.default_conn_name,
        filename: str | None = None,
        mime_type: str | None = None,
        part_size_bytes: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        expires_after_s: int | None = None,
        resume: bool = True,
        checkpoint_folder: str | ObjectStoragePath | None = None,
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        timeout_s: float = WAIT_TIMEOUT_S,
        send_md5: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # An XComArg or a template is checked again once rendered (in execute).
        if (
            source is None
            or isinstance(source, (bytes, int, float))
            or (isinstance(source, str) and not source.strip())
        ):
            raise TypeError(f"source must be a local path, a URL or an ObjectStoragePath, got {source!r}")
        if purpose is None or (isinstance(purpose, str) and not purpose.strip()):
            raise ValueError(f"purpose must be a non-empty string (e.g. 'batch'), got {purpose!r}")
        if part_size_bytes is not None:
            validate_part_size(part_size_bytes)
        validate_concurrency(concurrency)
        validate_expires_after_s(expires_after_s)
        _require_positive("poll_interval_s", poll_interval_s)
        _require_positive("timeout_s", timeout_s)
        if not isinstance(send_md5, bool):
            raise TypeError(f"send_md5 must be True or False, got {send_md5!r}")
        self.source = source
        self.purpose = purpose
        self.files_conn_id = files_conn_id
        self.filename = filename
        self.mime_type = mime_type
        self.part_size_bytes = part_size_bytes
        self.concurrency = concurrency
        self.expires_after_s = expires_after_s
        self.resume = resume
        self.checkpoint_folder = checkpoint_folder
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.send_md5 = send_md5
        self._uploader: ResumableUploader | None = None
        self._spool: SpooledObject | None = None
        self._final_try = False
        # once the task instance has succeeded, no retry needs its checkpoints
        self.on_success_callback = add_success_callback(self.on_success_callback, self._remove_checkpoints)

    @property
    def source_path(self) -> SourceLike:
        """``source`` once rendered: a local path, a URL or an ObjectStoragePath."""
        source = self.source
        if not isinstance(source, (str, os.PathLike, ObjectStoragePath)) or (
            isinstance(source, str) and not source.strip()
        ):
            raise TypeError(
                f"source must be a local path, a URL or an ObjectStoragePath, got "
                f"{type(source).__name__} {source!r}"
            )
        return source

    def _start(self, context: Context) -> None:
        """Checks that must wait for templates and XComArgs to be resolved; notes whether a retry
        may follow this try (if not, a failed upload is cancelled rather than left to resume)."""
        try_number = getattr(context["ti"], "try_number", None)
        self._final_try = isinstance(try_number, int) and try_number > (self.retries or 0)
        _ = self.source_path
        if not isinstance(self.purpose, str) or not self.purpose.strip():
            raise ValueError(f"purpose must be a non-empty string (e.g. 'batch'), got {self.purpose!r}")
        if self.filename is not None and (not isinstance(self.filename, str) or not self.filename.strip()):
            raise ValueError(f"filename must be a non-empty string or None, got {self.filename!r}")

    @cached_property
    def hook(self) -> FilesHook:
        return FilesHook(files_conn_id=self.files_conn_id, max_connections=max(16, self.concurrency + 2))

    @contextmanager
    def _upload_source(self, source: SourceLike | None = None) -> Iterator[UploadSource]:
        """The engine source of ``source`` (default: the operator's): an object is fetched once into
        a spool that every pass reads, removed when the block ends (``on_kill`` stops its fetch)."""
        with spooled_upload_source(self.source_path if source is None else source) as opened:
            self._spool = opened if isinstance(opened, SpooledObject) else None
            try:
                yield opened
            finally:
                self._spool = None

    @staticmethod
    def _begin_fetch(source: UploadSource) -> None:
        """Start fetching a spooled object (its free-space check fails before any request is sent)."""
        if isinstance(source, SpooledObject):
            source.start()

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint_store(self, context: Context) -> ObjectStorageCheckpointStore:
        """The store of this task instance (keyed by dag, task, run and map index)."""
        folder = prepare_checkpoint_folder(self.checkpoint_folder, self.log, getattr(self, "executor", None))
        return ObjectStorageCheckpointStore.for_task(folder, checkpoint_name_from_context(context))

    def _remove_checkpoints(self, context: Context) -> None:
        folder = self.checkpoint_folder or default_checkpoint_folder()
        remove_task_checkpoints(folder, checkpoint_name_from_context(context), self.log)

    # -- uploading -----------------------------------------------------------------------------

    def _resumable(self) -> ResumableUploader:
        """The uploads/ side of this try: reuse, resume or upload (kept for ``on_kill``)."""
        self._uploader = ResumableUploader(
            self.hook.client,
            purpose=self.purpose,
            mime_type=self.mime_type,
            part_size_bytes=self.part_size_bytes,
            concurrency=self.concurrency,
            expires_after_s=self.expires_after_s,
            resume=self.resume,
            progress=self._log_progress,
            progress_interval_s=PROGRESS_LOG_INTERVAL_S,
            send_md5=self.send_md5,
        )
        return self._uploader

    def _log_progress(self, filename: str, progress: UploadProgress) -> None:
        self.log.info("%s: %s", filename, progress.describe())

    # -- waiting and results -------------------------------------------------------------------

    def _finish(
        self, files: list[FileObject], sizes: list[int], *, many: bool
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """The XCom value; with ``wait_for_completion``, only once the API has processed the files.

        :param sizes: the bytes of each file's source: the wait checks them, not the server's figures.
        """
        if not self.wait_for_completion:
            return self._as_xcom([f.to_dict() for f in files], many=many)
        ids = [f.id for f in files]
        expected = {f.id: size for f, size in zip(files, sizes, strict=True)}
        deadline = time.time() + self.timeout_s
        if self.deferrable:
            try:
                # One check first: a file that is ready already needs no trip through the triggerer.
                ready = self.hook.wait_for_files(ids, timeout_s=0, expected_bytes=expected)
            except FileWaitTimeoutError:
                pass
            else:
                return self._as_xcom([f.to_dict() for f in ready], many=many)
            defer_until_files_ready(
                self,
                file_targets(ids, expected),
                files_conn_id=self.files_conn_id,
                deadline=deadline,
                timeout_s=self.timeout_s,
                poll_interval_s=self.poll_interval_s,
                max_poll_interval_s=MAX_POLL_INTERVAL_S,
            )
        self.log.info("Waiting until file(s) %s are processed", ", ".join(ids))
        ready = self.hook.wait_for_files(
            ids,
            timeout_s=max(0.0, deadline - time.time()),
            poll_interval_s=self.poll_interval_s,
            expected_bytes=expected,
        )
        return self._as_xcom([f.to_dict() for f in ready], many=many)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Resume after the trigger: return the ready file(s), or fail with the trigger's reason."""
        return self._as_xcom(files_on_resume(self, event), many=self._returns_list)

    @property
    def _returns_list(self) -> bool:
        return False

    @staticmethod
    def _as_xcom(files: list[dict[str, Any]], *, many: bool) -> dict[str, Any] | list[dict[str, Any]]:
        return files if many else files[0]

    def on_kill(self) -> None:
        uploader = self._uploader
        cancelled = uploader is not None and uploader.request_cancel()
        spool = self._spool
        if spool is not None:  # after the cancel request: the parts it fails are then not errors
            spool.close()
        if not cancelled:
            return
        if self.resume:
            self.log.info("Upload stopped; it is left pending so that a retry of this task resumes it")
        else:
            self.log.info("Upload stopped and cancelled (resume=False)")

    def _filename_for(self, source: UploadSource) -> str:
        return self.filename or source.name
