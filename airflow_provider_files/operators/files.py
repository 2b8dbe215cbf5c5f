"""Operators that upload files to an OpenAI-compatible Files API.

* :class:`UploadJsonlOperator` validates a Batch JSONL file (nothing is sent when a line is
  bad), then uploads it with ``POST /files`` or, above a size threshold, the Uploads API in
  parallel parts; ``split=True`` shards it first and uploads every shard.
* :class:`ChunkedUploadOperator` uploads any file through the Uploads API, logging progress.

Both read from a local path or any ``ObjectStoragePath`` as a stream, resume across task
retries from a checkpoint kept outside XCom, reuse the file a successful earlier try uploaded,
and can wait (blocking or deferred) until the API has processed what they uploaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator, ObjectStoragePath, XComArg

from airflow_provider_files.api import FileObject
from airflow_provider_files.api.polling import MAX_POLL_INTERVAL_S
from airflow_provider_files.exceptions import FileWaitTimeoutError
from airflow_provider_files.exceptions import InvalidBatchFileError as _TaskInvalidBatchFileError
from airflow_provider_files.hooks.files import FilesHook, file_targets
from airflow_provider_files.jsonl import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_LINES,
    BatchLimits,
    InvalidBatchFileError,
    ValidationReport,
    shard_batch_file,
    validate_batch_file,
)
from airflow_provider_files.operators._checkpoint import (
    ObjectStorageCheckpointStore,
    as_storage_path,
    checkpoint_name_from_context,
    default_checkpoint_folder,
    is_local,
)
from airflow_provider_files.operators._source import (
    SourceLike,
    describe,
    open_upload_source,
    readable,
)
from airflow_provider_files.triggers.deferral import (
    default_deferrable,
    defer_until_files_ready,
    files_on_resume,
)
from airflow_provider_files.uploads import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE_BYTES,
    UploadProgress,
    UploadSource,
    validate_part_size,
)
from airflow_provider_files.uploads.limits import validate_concurrency, validate_expires_after_s
from airflow_provider_files.uploads.manifest import split_fingerprint
from airflow_provider_files.uploads.resumable import ResumableUploader

if TYPE_CHECKING:
    from airflow.sdk import Context

    InvalidBatchFileException = _TaskInvalidBatchFileError  # deprecated: see __getattr__

PROGRESS_LOG_INTERVAL_S = 5.0
# OpenAI takes up to 512 MB in one POST /files, but Azure users report failures from about
# 100-150 MB; above this threshold the Uploads API is used instead.
SINGLE_REQUEST_MAX_BYTES = 100 * 1024 * 1024
SINGLE_REQUEST_LIMIT_BYTES = 512 * 1024 * 1024
POLL_INTERVAL_S = 10.0
WAIT_TIMEOUT_S = 3600.0


def __getattr__(name: str) -> Any:
    if name == "InvalidBatchFileException":  # the old name, kept so user code does not break
        warnings.warn(
            "InvalidBatchFileException is deprecated; use "
            "airflow_provider_files.exceptions.InvalidBatchFileError",
            DeprecationWarning,
            stacklevel=2,
        )
        return _TaskInvalidBatchFileError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _require_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class _FilesUploadOperator(BaseOperator):
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
        part_size_bytes: int = DEFAULT_PART_SIZE_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        expires_after_s: int | None = None,
        resume: bool = True,
        checkpoint_folder: str | ObjectStoragePath | None = None,
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        timeout_s: float = WAIT_TIMEOUT_S,
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
        validate_part_size(part_size_bytes)
        validate_concurrency(concurrency)
        validate_expires_after_s(expires_after_s)
        _require_positive("poll_interval_s", poll_interval_s)
        _require_positive("timeout_s", timeout_s)
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
        self._uploader: ResumableUploader | None = None
        self._final_try = False

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

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint_store(self, context: Context) -> ObjectStorageCheckpointStore:
        """The store of this task instance (keyed by dag, task, run and map index)."""
        folder = self.checkpoint_folder or default_checkpoint_folder()
        return ObjectStorageCheckpointStore.for_task(folder, checkpoint_name_from_context(context))

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
        )
        return self._uploader

    def _log_progress(self, filename: str, progress: UploadProgress) -> None:
        self.log.info("%s: %s", filename, progress.describe())

    # -- waiting and results -------------------------------------------------------------------

    def _finish(self, files: list[FileObject], *, many: bool) -> dict[str, Any] | list[dict[str, Any]]:
        """The XCom value; with ``wait_for_completion``, only once the API has processed the files."""
        if not self.wait_for_completion:
            return self._as_xcom([f.to_dict() for f in files], many=many)
        ids = [f.id for f in files]
        expected = {f.id: f.bytes for f in files if f.bytes is not None}
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
        if uploader is None or not uploader.request_cancel():
            return
        if self.resume:
            self.log.info("Upload stopped; it is left pending so that a retry of this task resumes it")
        else:
            self.log.info("Upload stopped and cancelled (resume=False)")

    def _filename_for(self, source: UploadSource) -> str:
        return self.filename or source.name


class ChunkedUploadOperator(_FilesUploadOperator):
    """Upload any file through the Uploads API in parallel parts, with progress in the task log.

    Parts are read from the source as byte ranges (never the whole file in memory), sent
    ``concurrency`` at a time, and the upload is completed with the md5 of the whole file.
    With ``resume`` (the default) the upload's state is checkpointed after every part, so a
    retry of the task sends only the parts that are missing, and a retry after success reuses
    the file. Without it, a failed or killed upload is cancelled.

    Returns (XCom) the file object as a dict: ``id``, ``bytes``, ``filename``, ``purpose``,
    ``status`` ...

    :param source: a local path, a URL (``file://``, ``s3://conn@bucket/key``, ``gs://`` ...) or an
        ``ObjectStoragePath``. Templated.
    :param purpose: ``batch``, ``fine-tune``, ``assistants``, ``vision``, ``user_data``, ``evals`` ...
        Templated.
    :param files_conn_id: an ``openai_files`` connection. Templated.
    :param filename: name given to the API (default: the source's name). Templated.
    :param mime_type: MIME type announced to the API (default: guessed from the file name).
    :param part_size_bytes: bytes per part (at most 64 MiB).
    :param concurrency: parts in flight at once.
    :param expires_after_s: the file expires this long after creation (3600 to 2592000).
    :param resume: checkpoint the upload so a retry resumes it (a failure on the last try cancels
        it, as no retry will come); if False, cancel it on any failure.
    :param checkpoint_folder: where checkpoints live (any ObjectStoragePath; default
        ``[openai_files] checkpoint_folder`` or ``$AIRFLOW_HOME/upload_checkpoints``). Use shared
        storage when retries may run on another worker. Templated.
    :param wait_for_completion: after uploading, wait until the API has processed the file.
    :param deferrable: wait in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``).
    :param poll_interval_s: seconds between two status checks while waiting.
    :param timeout_s: how long to wait for processing before failing.
    """

    def __init__(self, *, source: SourceLike | XComArg, purpose: str, **kwargs: Any) -> None:
        super().__init__(source=source, purpose=purpose, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        self._start(context)
        source = open_upload_source(self.source_path)
        filename = self._filename_for(source)
        self.log.info(
            "Uploading %s (%d bytes) as %s, purpose %s, in parts of %d bytes, %d at a time",
            describe(self.source_path),
            source.size,
            filename,
            self.purpose,
            self.part_size_bytes,
            self.concurrency,
        )
        try:
            file = self._resumable().reuse_or_upload(
                source,
                self.checkpoint_store(context),
                filename,
                single_request=False,
                last_try=self._final_try,
            )
            return cast(dict[str, Any], self._finish([file], many=False))
        finally:
            self.hook.close()


class UploadJsonlOperator(_FilesUploadOperator):
    """Validate a Batch JSONL file, then upload it; optionally split it into shards first.

    Every line is checked (JSON object, ``custom_id`` unique, ``method`` POST, a known ``url``,
    one endpoint and one model per file, size and line limits) before the first byte is sent;
    an invalid file fails the task with the line numbers of the first errors and nothing is
    uploaded. Files up to ``single_request_max_bytes`` go through ``POST /files``, larger ones
    through the Uploads API in parallel parts. Both paths are retry-safe (see
    :class:`ChunkedUploadOperator`).

    Returns (XCom) the file object as a dict, or with ``split=True`` a list of them in shard
    order, ready for ``.expand()``.

    :param source: a local path, a URL (``file://``, ``s3://conn@bucket/key`` ...) or an
        ``ObjectStoragePath``. Templated.
    :param files_conn_id: an ``openai_files`` connection. Templated.
    :param purpose: file purpose (default ``batch``). Templated.
    :param filename: name given to the API (default: the source's name; with ``split``, each
        shard's name). Templated.
    :param max_errors: stop validating after this many errors (all are reported in the log).
    :param limits: validation limits (default: the Batch API's, 50,000 lines and 200 MB).
    :param split: shard the file into pieces within ``max_lines``/``max_bytes`` and upload each.
    :param max_lines: most lines per shard (default: the limits' line limit).
    :param max_bytes: most bytes per shard (default: the limits' byte limit).
    :param shard_destination: folder for the shards (local path or ObjectStoragePath); default a
        temporary folder removed after the task.
    :param single_request_max_bytes: above this size use the Uploads API (default 100 MiB).
    :param part_size_bytes: bytes per part of a chunked upload (at most 64 MiB).
    :param concurrency: parts in flight at once.
    :param expires_after_s: files expire this long after creation (3600 to 2592000).
    :param resume: checkpoint uploads so a retry resumes them or reuses finished files.
    :param checkpoint_folder: where checkpoints live (see :class:`ChunkedUploadOperator`). Templated.
    :param wait_for_completion: after uploading, wait until the API has processed the file(s).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval_s: seconds between two status checks while waiting.
    :param timeout_s: how long to wait for processing before failing.
    """

    template_fields: Sequence[str] = (*_FilesUploadOperator.template_fields, "shard_destination")

    def __init__(
        self,
        *,
        source: SourceLike | XComArg,
        purpose: str = "batch",
        max_errors: int = 20,
        limits: BatchLimits | None = None,
        split: bool = False,
        max_lines: int | None = None,
        max_bytes: int | None = None,
        shard_destination: str | ObjectStoragePath | None = None,
        single_request_max_bytes: int = SINGLE_REQUEST_MAX_BYTES,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mime_type", "application/jsonl")
        super().__init__(source=source, purpose=purpose, **kwargs)
        if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 1:
            raise ValueError(f"max_errors must be an int >= 1, got {max_errors!r}")
        if limits is not None and not isinstance(limits, BatchLimits):
            raise TypeError(f"limits must be a BatchLimits, got {type(limits).__name__}")
        for name, value in (("max_lines", max_lines), ("max_bytes", max_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if (max_lines is not None or max_bytes is not None or shard_destination is not None) and not split:
            raise ValueError("max_lines, max_bytes and shard_destination only apply with split=True")
        if (
            isinstance(single_request_max_bytes, bool)
            or not isinstance(single_request_max_bytes, int)
            or not 0 <= single_request_max_bytes <= SINGLE_REQUEST_LIMIT_BYTES
        ):
            raise ValueError(
                f"single_request_max_bytes must be an int between 0 and {SINGLE_REQUEST_LIMIT_BYTES} "
                f"(512 MB, the POST /files limit), got {single_request_max_bytes!r}"
            )
        self.max_errors = max_errors
        self.limits = limits
        self.split = split
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.shard_destination = shard_destination
        self.single_request_max_bytes = single_request_max_bytes

    @property
    def _returns_list(self) -> bool:
        return self.split

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        self._start(context)
        try:
            if self.split:
                return self._finish(self._upload_split(context), many=True)
            return self._finish([self._upload_whole(context)], many=False)
        finally:
            self.hook.close()

    def _invalid(self, report: ValidationReport) -> _TaskInvalidBatchFileError:
        for error in report.errors:
            self.log.error("%s", error)
        return _TaskInvalidBatchFileError(
            f"nothing was uploaded: {report.summary()}",
            report,
        )

    def _upload_whole(self, context: Context) -> FileObject:
        source = open_upload_source(self.source_path)
        filename = self._filename_for(source)
        store = self.checkpoint_store(context)
        single_request = source.size <= self.single_request_max_bytes
        reused = self._resumable().reuse(source, store, filename, single_request=single_request)
        if reused is not None:
            return reused
        started = time.monotonic()
        report = validate_batch_file(
            readable(self.source_path), limits=self.limits or DEFAULT_LIMITS, max_errors=self.max_errors
        )
        if not report.valid:
            raise self._invalid(report)
        self.log.info(
            "Validated %s: %d requests to %s, model %s, %d bytes (%.2f s)",
            describe(self.source_path),
            report.lines,
            report.endpoint,
            report.model,
            report.bytes,
            time.monotonic() - started,
        )
        for warning in report.warnings:
            self.log.warning("%s", warning)
        return self._resumable().upload(
            source, store, filename, single_request=single_request, last_try=self._final_try
        )

    def _upload_split(self, context: Context) -> list[FileObject]:
        source = open_upload_source(self.source_path)
        store = self.checkpoint_store(context)
        limits = self.limits or DEFAULT_LIMITS
        max_lines = self.max_lines or limits.max_lines or DEFAULT_MAX_LINES
        max_bytes = self.max_bytes or limits.max_bytes or DEFAULT_MAX_BYTES
        split = split_fingerprint(source.fingerprint(), max_lines, max_bytes)
        reused = self._resumable().reuse_split(store, split)
        if reused is not None:
            return reused
        destination, temporary = self._shard_folder()
        try:
            started = time.monotonic()
            # Validates every line (endpoint, model and custom_id across the whole source) while
            # writing; an invalid source leaves no shard behind and nothing is uploaded.
            try:
                shards = shard_batch_file(
                    readable(self.source_path),
                    destination,
                    max_lines=max_lines,
                    max_bytes=max_bytes,
                    prefix=Path(self._filename_for(source)).stem,
                    endpoints=limits.endpoints,
                    max_errors=self.max_errors,
                    # every try writes the shards again into the same folder
                    replace=True,
                )
            except InvalidBatchFileError as exc:
                raise self._invalid(exc.report) from None
            self.log.info(
                "Validated and split %s into %d shard(s) of at most %d requests and %d bytes (%.2f s)",
                describe(self.source_path),
                len(shards),
                max_lines,
                max_bytes,
                time.monotonic() - started,
            )
            return self._resumable().upload_shards(
                [open_upload_source(shard.path) for shard in shards],
                store,
                split,
                single_request_max_bytes=self.single_request_max_bytes,
                last_try=self._final_try,
            )
        finally:
            if temporary:
                shutil.rmtree(temporary, ignore_errors=True)

    def _shard_folder(self) -> tuple[ObjectStoragePath | str, str | None]:
        """Where shards go, and the temporary folder to remove afterwards (if one was made)."""
        if self.shard_destination:
            path = as_storage_path(self.shard_destination)
            return (path.path if is_local(path) else path), None
        temporary = tempfile.mkdtemp(prefix="airflow-files-shards-")
        return temporary, temporary
