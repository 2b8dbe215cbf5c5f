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

import contextlib
import json
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import ObjectStoragePath, XComArg

from airflow_provider_files.api import FileObject
from airflow_provider_files.exceptions import InvalidBatchFileError as _TaskInvalidBatchFileError
from airflow_provider_files.hooks.files import FilesHook
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
    as_storage_path,
    is_local,
)
from airflow_provider_files.operators._source import (
    ObjectFile,
    SourceLike,
    describe,
    open_upload_source,
    readable,
    spooled_upload_source,
)
from airflow_provider_files.operators._upload_base import (
    POLL_INTERVAL_S,
    WAIT_TIMEOUT_S,
    FilesUploadOperatorBase,
)
from airflow_provider_files.uploads import (
    DEFAULT_CONCURRENCY,
    SourceChangedError,
    format_bytes,
)
from airflow_provider_files.uploads.limits import (
    SINGLE_REQUEST_LIMIT_BYTES,
    SINGLE_REQUEST_MAX_BYTES,
    even_part_size,
    uses_single_request,
)
from airflow_provider_files.uploads.manifest import split_fingerprint

if TYPE_CHECKING:
    from airflow.sdk import Context

    InvalidBatchFileException = _TaskInvalidBatchFileError  # deprecated: see __getattr__


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


class ChunkedUploadOperator(FilesUploadOperatorBase):
    """Upload any file through the Uploads API in parallel parts, with progress in the task log.

    Parts are read from the source as byte ranges (never the whole file in memory), sent
    ``concurrency`` at a time, and the upload is completed with the md5 of the whole file.
    With ``resume`` (the default) the upload's state is checkpointed after every part, so a
    retry of the task sends only the parts that are missing, and a retry after the upload
    finished (the wait failed, say) reuses the file. Without it, a failed or killed upload is
    cancelled.

    Returns (XCom) the file object as a dict: ``id``, ``bytes``, ``filename``, ``purpose``,
    ``status`` ...

    :param source: a local path, a URL (``file://``, ``s3://conn@bucket/key``, ``gs://`` ...) or an
        ``ObjectStoragePath``; an object is fetched once into a local spool file (``[openai_files]
        spool_folder``) that the md5 and the parts read. Templated.
    :param purpose: ``batch``, ``fine-tune``, ``assistants``, ``vision``, ``user_data``, ``evals`` ...
        Templated.
    :param files_conn_id: an ``openai_files`` connection. Templated.
    :param filename: name given to the API (default: the source's name). Templated.
    :param mime_type: MIME type announced to the API (default: guessed from the file name).
    :param part_size_bytes: bytes per part, 64 KiB to 64 MiB; ``None`` (the default): about
        16 MiB, evened out so that the part count is a multiple of ``concurrency`` (no connection
        idles through a last, partial wave). A resumed upload keeps the part size it began with.
    :param concurrency: parts in flight at once.
    :param expires_after_s: the file expires this long after creation (3600 to 2592000).
    :param resume: checkpoint the upload so a retry resumes it (a failure on the last try cancels
        it, as no retry will come); if False, cancel it on any failure.
    :param checkpoint_folder: where checkpoints live (any ObjectStoragePath; default
        ``[openai_files] checkpoint_folder`` or ``$AIRFLOW_HOME/upload_checkpoints``). Use shared
        storage when retries may run on another worker. A task instance's checkpoints are removed
        once it succeeds. Templated.
    :param wait_for_completion: after uploading, wait until the API has processed the file.
    :param deferrable: wait in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``).
    :param poll_interval_s: seconds between two status checks while waiting.
    :param timeout_s: how long to wait for processing before failing.
    :param send_md5: send the md5 of the whole file on complete, so the server proves the parts
        are the file; set False for a gateway that refuses the field ("Unrecognized request
        argument supplied: md5").
    :param kwargs: the arguments of ``BaseOperator`` (``task_id``, ``retries`` ...).
    """

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
        super().__init__(
            source=source,
            purpose=purpose,
            files_conn_id=files_conn_id,
            filename=filename,
            mime_type=mime_type,
            part_size_bytes=part_size_bytes,
            concurrency=concurrency,
            expires_after_s=expires_after_s,
            resume=resume,
            checkpoint_folder=checkpoint_folder,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval_s=poll_interval_s,
            timeout_s=timeout_s,
            send_md5=send_md5,
            **kwargs,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        self._start(context)
        try:
            with self._upload_source() as source:
                filename = self._filename_for(source)
                self.log.info(
                    "Uploading %s (%s) as %s, purpose %s, in parts of %s, %d at a time",
                    describe(self.source_path),
                    format_bytes(source.size),
                    filename,
                    self.purpose,
                    format_bytes(self.part_size_bytes or even_part_size(source.size, self.concurrency)),
                    self.concurrency,
                )
                store = self.checkpoint_store(context)
                uploader = self._resumable()
                file = uploader.reuse(source, store, filename, single_request=False)
                if file is None:
                    self._begin_fetch(source)
                    file = uploader.upload(
                        source, store, filename, single_request=False, last_try=self._final_try
                    )
                size = source.size
            return cast(dict[str, Any], self._finish([file], [size], many=False))
        finally:
            self.hook.close()


class UploadJsonlOperator(FilesUploadOperatorBase):
    """Validate a Batch JSONL file, then upload it; optionally split it into shards first.

    Every line is checked (JSON object, ``custom_id`` unique, ``method`` POST, a known ``url``,
    one endpoint and one model per file, size and line limits) before the first byte is sent;
    an invalid file fails the task with the line numbers of the first errors and nothing is
    uploaded. Files up to ``single_request_max_bytes`` go through ``POST /files``, larger ones
    through the Uploads API in parallel parts. Both paths are retry-safe (see
    :class:`ChunkedUploadOperator`).

    Returns (XCom) the file object as a dict, or with ``split=True`` a list of them in shard
    order, ready for ``.expand()``; each dict also holds the ``endpoint`` and ``model`` the file
    was validated for, so ``BatchOperator(input_file_id=upload.output)`` needs no endpoint.

    :param source: a local path, a URL (``file://``, ``s3://conn@bucket/key`` ...) or an
        ``ObjectStoragePath``; an object is fetched once into a local spool file (``[openai_files]
        spool_folder``) that validation and the upload read (with ``split``, the shards are
        written while it is read once). Templated.
    :param purpose: file purpose (default ``batch``). Templated.
    :param files_conn_id: an ``openai_files`` connection. Templated.
    :param filename: name given to the API (default: the source's name; with ``split``, each
        shard's name). Templated.
    :param mime_type: MIME type announced to the API (default ``application/jsonl``; ``None``:
        guessed from the file name).
    :param max_errors: stop validating after this many errors (all are reported in the log).
    :param limits: validation limits (default: the Batch API's, 50,000 lines and 200 MB).
    :param split: shard the file into pieces within ``max_lines``/``max_bytes`` and upload each.
    :param max_lines: most lines per shard (default: the limits' line limit).
    :param max_bytes: most bytes per shard (default: the limits' byte limit).
    :param shard_destination: folder for the shards (local path or ObjectStoragePath); default a
        temporary folder removed after the task.
    :param single_request_max_bytes: above this size use the Uploads API (default 100 MiB).
    :param part_size_bytes: bytes per part of a chunked upload, 64 KiB to 64 MiB; ``None`` (the
        default): about 16 MiB, evened out so that the part count is a multiple of ``concurrency``.
    :param concurrency: parts in flight at once.
    :param expires_after_s: files expire this long after creation (3600 to 2592000).
    :param resume: checkpoint uploads so a retry resumes them or reuses finished files.
    :param checkpoint_folder: where checkpoints live (see :class:`ChunkedUploadOperator`). Templated.
    :param wait_for_completion: after uploading, wait until the API has processed the file(s).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval_s: seconds between two status checks while waiting.
    :param timeout_s: how long to wait for processing before failing.
    :param send_md5: send the md5 on completing a chunked upload so the server checks the parts
        against the validated file; set False for a gateway that refuses the field (the md5 taken
        while validating is then compared with the source read again).
    :param kwargs: the arguments of ``BaseOperator`` (``task_id``, ``retries`` ...).
    """

    template_fields: Sequence[str] = (*FilesUploadOperatorBase.template_fields, "shard_destination")

    def __init__(
        self,
        *,
        source: SourceLike | XComArg,
        purpose: str = "batch",
        files_conn_id: str = FilesHook.default_conn_name,
        filename: str | None = None,
        mime_type: str | None = "application/jsonl",
        max_errors: int = 20,
        limits: BatchLimits | None = None,
        split: bool = False,
        max_lines: int | None = None,
        max_bytes: int | None = None,
        shard_destination: str | ObjectStoragePath | None = None,
        single_request_max_bytes: int = SINGLE_REQUEST_MAX_BYTES,
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
        super().__init__(
            source=source,
            purpose=purpose,
            files_conn_id=files_conn_id,
            filename=filename,
            mime_type=mime_type,
            part_size_bytes=part_size_bytes,
            concurrency=concurrency,
            expires_after_s=expires_after_s,
            resume=resume,
            checkpoint_folder=checkpoint_folder,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval_s=poll_interval_s,
            timeout_s=timeout_s,
            send_md5=send_md5,
            **kwargs,
        )
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
        self._target: dict[str, str | None] | None = None  # endpoint and model, once read

    @property
    def _returns_list(self) -> bool:
        return self.split

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        self._start(context)
        self._target = None
        try:
            if self.split:
                files, sizes = self._upload_split(context)
                return self._with_target(self._finish(files, sizes, many=True))
            file, size = self._upload_whole(context)
            return self._with_target(self._finish([file], [size], many=False))
        finally:
            self.hook.close()

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        return self._with_target(super().execute_complete(context, event))

    def _with_target(
        self, value: dict[str, Any] | list[dict[str, Any]]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """The file dict(s) with the endpoint and model of the (validated) source's requests."""
        target = self._target or _request_target(readable(self.source_path))
        if isinstance(value, list):
            return [{**item, **target} for item in value]
        return {**value, **target}

    def _invalid(self, report: ValidationReport) -> _TaskInvalidBatchFileError:
        for error in report.errors:
            self.log.error("%s", error)
        return _TaskInvalidBatchFileError(
            f"nothing was uploaded: {report.summary()}",
            report,
        )

    def _upload_whole(self, context: Context) -> tuple[FileObject, int]:
        """The file the source became, and the source's size."""
        with self._upload_source() as source:
            filename = self._filename_for(source)
            store = self.checkpoint_store(context)
            single_request = uses_single_request(source.size, self.single_request_max_bytes)
            reused = self._resumable().reuse(source, store, filename, single_request=single_request)
            if reused is not None:
                return reused, source.size
            self._begin_fetch(source)
            started = time.monotonic()
            # an object is validated from its spool, which the upload then reads: one fetch in all
            report = validate_batch_file(
                readable(source), limits=self.limits or DEFAULT_LIMITS, max_errors=self.max_errors
            )
            if not report.valid:
                raise self._invalid(report)
            self.log.info(
                "Validated %s: %d requests to %s, model %s, %d bytes, md5 %s (%.2f s)",
                describe(self.source_path),
                report.lines,
                report.endpoint,
                report.model,
                report.bytes,
                report.md5,
                time.monotonic() - started,
            )
            for warning in report.warnings:
                self.log.warning("%s", warning)
            if report.bytes != source.size:
                raise SourceChangedError(
                    f"{describe(self.source_path)} changed while it was validated: {report.bytes} bytes "
                    f"were validated, the file had {source.size}; nothing was uploaded"
                )
            self._target = {"endpoint": report.endpoint, "model": report.model}
            # the md5 taken while validating: the bytes uploaded must have it (else the task fails
            # with "changed since it was validated"), and the file is not read again to hash it
            file = self._resumable().upload(
                source,
                store,
                filename,
                single_request=single_request,
                last_try=self._final_try,
                expected_md5=report.md5,
            )
            return file, source.size

    def _upload_split(self, context: Context) -> tuple[list[FileObject], list[int]]:
        """The files the shards became, and the shards' sizes."""
        source = open_upload_source(self.source_path)
        store = self.checkpoint_store(context)
        limits = self.limits or DEFAULT_LIMITS
        max_lines = self.max_lines or limits.max_lines or DEFAULT_MAX_LINES
        max_bytes = self.max_bytes or limits.max_bytes or DEFAULT_MAX_BYTES
        split = split_fingerprint(source.fingerprint(), max_lines, max_bytes)
        reused = self._resumable().reuse_split(store, split)
        if reused is not None:  # each reported size was checked against the manifest's
            return reused, [file.bytes or 0 for file in reused]
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
            with contextlib.ExitStack() as spools:  # shards in object storage: each fetched once
                shard_sources = [spools.enter_context(spooled_upload_source(shard.path)) for shard in shards]
                files = self._resumable().upload_shards(
                    shard_sources,
                    store,
                    split,
                    single_request_max_bytes=self.single_request_max_bytes,
                    last_try=self._final_try,
                )
                if shard_sources:  # the endpoint and model, from the first shard rather than the source
                    self._target = _request_target(readable(shard_sources[0]))
                return files, [shard.size for shard in shard_sources]
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


def _request_target(source: Path | ObjectFile) -> dict[str, str | None]:
    """``endpoint`` and ``model`` of the first request of a validated file (all share them)."""
    with source.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                line = json.loads(raw)
                body = line.get("body")
                model = body.get("model") if isinstance(body, dict) else None
                return {"endpoint": line.get("url"), "model": model if isinstance(model, str) else None}
    return {"endpoint": None, "model": None}
