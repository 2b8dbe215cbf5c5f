"""Completing a chunked upload: the complete call, what its answer or error means, the file checked.

A complete can fail in ways that each call for something else: its answer was lost (find the
file it made), the upload is gone (start over when resuming), the md5 differs (the source
changed), the md5 field itself is refused (a gateway: say so), the checkpoint lists parts that
are not this upload's (say which checkpoint to delete). A complete that succeeds is checked too:
the file's size must be the source's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_files.api.errors import (
    ApiStatusError,
    BadRequestError,
    FilesApiError,
    UnexpectedResponseError,
)
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.recovery import FileMatch
from airflow_provider_files.api.retry import is_gone, is_md5_mismatch, may_have_completed
from airflow_provider_files.uploads.checkpoint import CheckpointState
from airflow_provider_files.uploads.errors import SourceChangedError, UploadError
from airflow_provider_files.uploads.reuse import file_record
from airflow_provider_files.uploads.sources import md5_of
from airflow_provider_files.uploads.verify import (
    MD5_REFUSED_HINT,
    delete_quietly,
    is_md5_refused,
    reported_size_problem,
)

if TYPE_CHECKING:
    from airflow_provider_files.uploads.engine import _UploadRun

log = logging.getLogger(__name__)


class RestartNeeded(Exception):
    """The resumed upload cannot be finished (gone on the server, or its parts do not match the source)."""

    def __init__(self, reason: str, cause: FilesApiError, *, cancel: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.cancel = cancel


def complete_upload(
    run: _UploadRun, state: CheckpointState, part_ids: list[str], md5: str | None
) -> FileObject:
    """Complete ``state``'s upload with ``part_ids`` (and ``md5`` when sent); record and return its file."""
    try:
        upload = run.client.complete_upload(state.upload_id, part_ids, md5)
    except FilesApiError as exc:
        file = _after_failed_complete(run, state, md5, exc)
    else:
        if upload.file is None and upload.status in ("cancelled", "expired"):
            raise UnexpectedResponseError(
                f"upload {state.upload_id} was answered with status {upload.status!r} and no file: "
                f"the server did not complete it"
            )
        named = upload.file or find_completed(run, state, md5)
        if named is None:
            raise UnexpectedResponseError(
                f"upload {state.upload_id} was completed but the response names no file"
            )
        file = named
    problem = reported_size_problem(f"file {file.id}", file.bytes, run.size)
    if problem is not None:
        deleted = delete_quietly(run.client, file.id)
        run.forget_checkpoint()
        raise UploadError(
            f"{problem} (upload {state.upload_id} of {run.filename}); "
            f"{'the file was deleted' if deleted else 'deleting the file failed'}"
        )
    with run.lock:
        state.file = file_record(file, md5)  # md5: the one the server checked the parts against
        state.md5 = run.md5 or None
        run.save()
    log.info("upload %s of %s complete: file %s", state.upload_id, run.filename, file.id)
    return file


def _after_failed_complete(
    run: _UploadRun, state: CheckpointState, md5: str | None, exc: FilesApiError
) -> FileObject:
    """The file of a complete that failed with ``exc``, if it was made anyway; else raise what fits."""
    if is_md5_refused(exc):
        raise UploadError(f"{MD5_REFUSED_HINT} (upload {state.upload_id}; server said: {exc})") from exc
    _refuse_foreign_parts(run, exc)
    found = find_completed(run, state, md5) if may_have_completed(exc) else None
    if found is not None:
        log.warning(
            "completing upload %s failed (%s) but file %s with the same name and size exists since "
            "it began; taking it as the result",
            state.upload_id,
            exc,
            found.id,
        )
        return found
    if run.resumed and is_gone(exc):
        raise RestartNeeded(
            f"the resumed upload {state.upload_id} is gone on the server ({exc})", exc, cancel=False
        ) from exc
    if is_md5_mismatch(exc):
        _md5_mismatch(run, state, exc)
    if isinstance(exc, ApiStatusError) and exc.status_code in (400, 409) and may_have_completed(exc):
        raise UploadError(
            f"upload {state.upload_id} of {run.filename} was completed by an attempt whose answer "
            f"was lost, and its file cannot be told apart from other files of the same name and "
            f"size (or its content could not be read back to compare md5s); a retry uploads "
            f"the file again. Server said: {exc}"
        ) from exc
    raise exc


def _md5_mismatch(run: _UploadRun, state: CheckpointState, error: FilesApiError) -> None:
    """The server's md5 of the parts is not the source's: some parts hold other content."""
    if run.resumed:
        raise RestartNeeded(
            f"the parts of upload {state.upload_id} acknowledged before do not match the source "
            f"(the server's md5 differs), so the source changed without changing its fingerprint",
            error,
            cancel=True,
        ) from error
    # This run sent every part: the source changed while it was read (or since it was
    # validated). Nothing here is worth resuming, so a retry must start over.
    run.drop_upload(state)
    raise SourceChangedError(
        f"{run.filename} changed while it was being uploaded: the server's md5 of the parts differs "
        f"from the file's ({error}); upload {state.upload_id} was cancelled"
    ) from error


def _refuse_foreign_parts(run: _UploadRun, error: FilesApiError) -> None:
    """A resumed checkpoint lists parts the server does not take as this upload's (edited, or
    copied from another upload): every rerun would fail the same way, so say what to do."""
    if not (run.resumed and isinstance(error, BadRequestError) and error.param == "part_ids"):
        return
    where = getattr(run.store, "path", None) or run.store
    raise UploadError(
        f"the checkpoint lists parts the server does not accept for this upload ({error}); "
        f"delete the checkpoint {where} and run again to upload anew"
    ) from error


def find_completed(run: _UploadRun, state: CheckpointState, md5: str | None) -> FileObject | None:
    """The file of this upload when its completion's answer was lost (see ``find_stored_file``)."""
    match = FileMatch(run.filename, run.size, run.purpose, state.created_at)
    known = md5 or run.md5
    return run.client.find_stored_file(match, lambda: known or md5_of(run.source))
