"""The chunked upload engine: one Upload, its parts sent in parallel, md5 on complete, resumable.

Memory stays bounded whatever the file size: each part streams its byte range from the source
in 1 MiB chunks (no part is ever held whole), and the md5 of the file is computed by one
background thread reading the source sequentially while the parts go out.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from airflow_provider_files.api.bodies import BodySource
from airflow_provider_files.api.errors import (
    ApiStatusError,
    FilesApiError,
    NotFoundError,
    UnexpectedResponseError,
)
from airflow_provider_files.api.limits import (
    MAX_PART_SIZE_BYTES,
    MIB,
    validate_expires_after_s,
    validate_part_size,
)
from airflow_provider_files.api.models import FileObject, Upload
from airflow_provider_files.api.recovery import FileMatch
from airflow_provider_files.api.retry import is_ambiguous as _is_ambiguous
from airflow_provider_files.api.retry import is_gone as _is_gone
from airflow_provider_files.api.retry import is_md5_mismatch as _is_md5_mismatch
from airflow_provider_files.api.retry import may_have_completed as _may_have_completed
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.checkpoint import CheckpointError, CheckpointState, CheckpointStore
from airflow_provider_files.uploads.errors import SourceChangedError, UploadCancelledError, UploadError
from airflow_provider_files.uploads.progress import UploadProgress, format_bytes
from airflow_provider_files.uploads.sources import UploadSource, as_upload_source, md5_of

log = logging.getLogger(__name__)

GIB = 1024 * MIB

DEFAULT_PART_SIZE_BYTES = 16 * MIB
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
MAX_UPLOAD_BYTES = 8 * GIB
# Keeps the checkpoint small and the request count sane; 10,000 parts of 64 MiB exceed 8 GiB.
MAX_PARTS = 10_000
# A pending upload that expires sooner than this is not worth resuming.
RESUME_EXPIRY_MARGIN_S = 120.0
# OpenAI's lifetime of a pending upload, used when the server does not say.
UPLOAD_LIFETIME_S = 3600.0
PROGRESS_INTERVAL_S = 2.0
# How often the driving thread looks for a cancel request while parts are in flight.
CANCEL_POLL_S = 0.1

ProgressCallback = Callable[[UploadProgress], None]


@dataclass(frozen=True)
class UploadResult:
    """What an upload produced.

    :param file: the file created (or found again) on the server.
    :param upload_id: the Upload it came from (``None`` if unknown).
    :param md5: hex md5 of the source ("" when md5 was not computed).
    :param parts_total: parts in the upload.
    :param parts_sent: parts sent by this run.
    :param parts_reused: parts acknowledged by an earlier run and not sent again.
    :param bytes_sent: bytes of the parts sent by this run (retries not counted twice).
    :param resumed: this run continued an upload begun by an earlier one.
    :param reused_file: the checkpoint named a complete file that still exists; nothing was sent.
    :param elapsed_s: duration of this run.
    :param restart_reason: why a checkpoint was not resumed (source changed, upload expired ...).
    """

    file: FileObject
    upload_id: str | None
    md5: str
    parts_total: int
    parts_sent: int
    parts_reused: int
    bytes_sent: int
    resumed: bool
    reused_file: bool
    elapsed_s: float
    restart_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file.to_dict(),
            "upload_id": self.upload_id,
            "md5": self.md5,
            "parts_total": self.parts_total,
            "parts_sent": self.parts_sent,
            "parts_reused": self.parts_reused,
            "bytes_sent": self.bytes_sent,
            "resumed": self.resumed,
            "reused_file": self.reused_file,
            "elapsed_s": self.elapsed_s,
            "restart_reason": self.restart_reason,
        }


def guess_mime_type(filename: str) -> str:
    """MIME type for ``filename``: ``text/jsonl`` for ``.jsonl`` (OpenAI's own example), else by extension."""
    if PurePath(filename).suffix.lower() == ".jsonl":
        return "text/jsonl"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


class _Stopped(Exception):
    """Raised inside a part's body when the run is stopping, which aborts the request at once."""


class _WatchedBody:
    """A part's body that stops streaming as soon as ``should_stop()`` says so."""

    def __init__(self, inner: BodySource, should_stop: Callable[[], bool]) -> None:
        self._inner = inner
        self._should_stop = should_stop

    @property
    def length(self) -> int | None:
        return self._inner.length

    @property
    def replayable(self) -> bool:
        # Once stopping, the client must not retry (nor sleep before retrying) this part.
        return self._inner.replayable and not self._should_stop()

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._inner.chunks():
            if self._should_stop():
                raise _Stopped()
            yield chunk


class _Md5Reader(threading.Thread):
    """Reads the whole source in order and hashes it, beside the parallel part uploads."""

    def __init__(self, source: UploadSource, should_stop: Callable[[], bool]) -> None:
        super().__init__(name="upload-md5", daemon=True)
        self._source = source
        self._should_stop = should_stop
        self.md5 = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.md5 = md5_of(self._source, stop=self._should_stop)
        except BaseException as exc:
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error is not None:
            if isinstance(self.error, OSError):
                raise SourceChangedError(f"could not read {self._source.name} for its md5: {self.error}")
            raise self.error
        return self.md5


class _RestartNeeded(Exception):
    """The resumed upload cannot be finished (gone on the server, or its parts do not match the source)."""

    def __init__(self, reason: str, cause: FilesApiError, *, cancel: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.cancel = cancel


class ChunkedUploader:
    """Uploads a file through the Uploads API with parts sent in parallel.

    Reusable for several uploads one after another (not at the same time).

    :param client: a :class:`~airflow_provider_files.api.FilesClient`; give it a connection pool
        larger than ``concurrency`` (a cancel must find a free connection).
    :param part_size_bytes: bytes per part, 64 KiB to 64 MiB.
    :param concurrency: parts in flight at once.
    :param expires_after_s: lifetime of the created file (3600 to 2592000 s); ``None``: the server's default.
    :param progress: called with an :class:`UploadProgress` at most every ``progress_interval_s``
        and once when every part is acknowledged, from the thread that called :meth:`upload`.
    :param checkpoint: where to record progress so that a new process can resume; see
        :class:`~airflow_provider_files.uploads.checkpoint.JsonFileCheckpointStore`.
    :param cancel_on_failure: cancel the server-side upload when this run fails. Ignored with a
        checkpoint: the upload is then left pending for the retry to resume.
    :param progress_interval_s: minimum seconds between progress reports (0: every part).
    :param send_md5: compute the source's md5 and send it on complete, so the server checks it.
    """

    def __init__(
        self,
        client: FilesClient,
        *,
        part_size_bytes: int = DEFAULT_PART_SIZE_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        expires_after_s: int | None = None,
        progress: ProgressCallback | None = None,
        checkpoint: CheckpointStore | None = None,
        cancel_on_failure: bool = True,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
        send_md5: bool = True,
    ) -> None:
        self.client = client
        self.part_size_bytes = validate_part_size(part_size_bytes)
        if (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            raise ValueError(
                f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {concurrency!r}"
            )
        self.concurrency = concurrency
        self.expires_after_s = validate_expires_after_s(expires_after_s)
        self.progress = progress
        self.checkpoint = checkpoint
        self.cancel_on_failure = cancel_on_failure
        if progress_interval_s < 0:
            raise ValueError(f"progress_interval_s must be >= 0, got {progress_interval_s}")
        self.progress_interval_s = progress_interval_s
        self.send_md5 = send_md5
        self.possible_orphan_uploads = 0
        self._cancel = threading.Event()

    def __repr__(self) -> str:
        return (
            f"ChunkedUploader(part_size_bytes={self.part_size_bytes}, concurrency={self.concurrency}, "
            f"checkpoint={self.checkpoint!r})"
        )

    def request_cancel(self) -> None:
        """Stop the running upload (from any thread): parts stop streaming at once, :meth:`upload`
        raises :class:`UploadCancelledError`. The uploader stays cancelled."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def upload(
        self,
        source: UploadSource | str | os.PathLike[str],
        *,
        purpose: str,
        filename: str | None = None,
        mime_type: str | None = None,
    ) -> UploadResult:
        """Upload ``source`` and return the file it became.

        :param source: a path, or an :class:`~airflow_provider_files.uploads.UploadSource`.
        :param purpose: the file's purpose (``batch``, ``fine-tune`` ...).
        :param filename: filename given to the API; defaults to the source's name.
        :param mime_type: defaults to a guess from the filename (``text/jsonl`` for ``.jsonl``).
        """
        if not purpose or not isinstance(purpose, str):
            raise ValueError("purpose is required (e.g. 'batch')")
        upload_source = as_upload_source(source)
        name = filename or upload_source.name
        if not name:
            raise ValueError("the source has no name: pass filename=")
        size = upload_source.size
        if size <= 0:
            raise ValueError(f"{name} is empty: the Uploads API needs at least one byte")
        if size > MAX_UPLOAD_BYTES:
            raise ValueError(
                f"{name} is {size} bytes; one upload can hold at most {MAX_UPLOAD_BYTES} bytes (8 GiB)"
            )
        parts = math.ceil(size / self.part_size_bytes)
        if parts > MAX_PARTS:
            raise ValueError(
                f"{name} would need {parts} parts of {self.part_size_bytes} bytes; at most {MAX_PARTS} "
                f"are allowed: use a part size of at least {math.ceil(size / MAX_PARTS)} bytes"
            )
        if self._cancel.is_set():
            raise UploadCancelledError("the upload was cancelled before it began")
        run = _UploadRun(self, upload_source, name, purpose, mime_type or guess_mime_type(name))
        return run.execute()


class _UploadRun:
    """The state of one :meth:`ChunkedUploader.upload` call."""

    def __init__(
        self, uploader: ChunkedUploader, source: UploadSource, filename: str, purpose: str, mime_type: str
    ) -> None:
        self.uploader = uploader
        self.client = uploader.client
        self.source = source
        self.filename = filename
        self.purpose = purpose
        self.mime_type = mime_type
        self.size = source.size
        self.store = uploader.checkpoint
        self.started = time.monotonic()
        self.lock = threading.Lock()
        # abort: stop sending parts (a part failed); done: the run is over (stops the md5 reader too)
        self.abort = threading.Event()
        self.done = threading.Event()
        self.state: CheckpointState | None = None
        self.resumed = False
        self.restart_reason: str | None = None
        self.bytes_reused = 0
        self.parts_reused = 0
        self.parts_sent = 0
        self.bytes_sent = 0
        self.last_report = 0.0
        self.reported_done = -1

    # -- driving ------------------------------------------------------------------------------

    def should_stop(self) -> bool:
        return self.abort.is_set() or self.uploader.cancel_requested

    def md5_should_stop(self) -> bool:
        return self.done.is_set() or self.uploader.cancel_requested

    def execute(self) -> UploadResult:
        fingerprint = self.source.fingerprint()
        state = self.load_checkpoint(fingerprint)
        if state is not None and state.file is not None:
            reused = self.reuse_file(state)
            if reused is not None:
                return reused
            state = None
        md5_reader = _Md5Reader(self.source, self.md5_should_stop) if self.uploader.send_md5 else None
        if md5_reader is not None:
            md5_reader.start()
        try:
            if state is None:
                state = self.create(fingerprint)
            else:
                self.begin_resume(state)
            try:
                file = self.send_and_complete(state, md5_reader)
            except _RestartNeeded as restart:
                self.restart_reason = restart.reason
                log.warning("%s; starting a new upload", self.restart_reason)
                if restart.cancel:
                    self.cancel_quietly(state.upload_id)
                self.resumed = False
                self.abort.clear()
                state = self.create(fingerprint)
                file = self.send_and_complete(state, md5_reader)
        except BaseException as exc:
            self.abort.set()
            self.fail(exc)
            raise
        finally:
            self.done.set()
        md5 = md5_reader.md5 if md5_reader is not None else ""
        return UploadResult(
            file=file,
            upload_id=state.upload_id,
            md5=md5,
            parts_total=self.parts_total(state),
            parts_sent=self.parts_sent,
            parts_reused=self.parts_reused,
            bytes_sent=self.bytes_sent,
            resumed=self.resumed,
            reused_file=False,
            elapsed_s=time.monotonic() - self.started,
            restart_reason=self.restart_reason,
        )

    def fail(self, exc: BaseException) -> None:
        state = self.state
        if state is None or state.file is not None:
            return
        if self.store is not None:
            log.warning(
                "upload %s of %s left pending so that a retry with the same checkpoint resumes it "
                "(%d of %d parts acknowledged): %s",
                state.upload_id,
                self.filename,
                len(state.parts),
                self.parts_total(state),
                exc,
            )
            return
        if not self.uploader.cancel_on_failure:
            log.warning(
                "upload %s of %s failed and was left pending: %s", state.upload_id, self.filename, exc
            )
            return
        try:
            self.client.cancel_upload(state.upload_id)
        except FilesApiError as cancel_error:
            log.warning("upload %s failed, and cancelling it failed too: %s", state.upload_id, cancel_error)
        else:
            log.warning("upload %s of %s failed and was cancelled: %s", state.upload_id, self.filename, exc)

    # -- checkpoint ---------------------------------------------------------------------------

    def load_checkpoint(self, fingerprint: str) -> CheckpointState | None:
        if self.store is None:
            return None
        raw = self.store.load()
        if raw is None:
            return None
        try:
            state = CheckpointState.from_dict(raw)
        except CheckpointError as exc:
            self.restart(f"the checkpoint cannot be used ({exc})", None)
            return None
        reason = self.mismatch(state, fingerprint)
        if reason is None and state.file is None:
            expires_at = state.expires_at or state.created_at + UPLOAD_LIFETIME_S
            left_s = expires_at - time.time()
            if left_s < RESUME_EXPIRY_MARGIN_S:
                reason = (
                    f"upload {state.upload_id} has expired"
                    if left_s <= 0
                    else f"upload {state.upload_id} expires in {left_s:.0f}s, too soon to resume"
                )
                self.restart(reason, state if left_s > 0 else None)
                return None
        if reason is not None:
            self.restart(reason, state if state.file is None else None)
            return None
        return state

    def mismatch(self, state: CheckpointState, fingerprint: str) -> str | None:
        if state.fingerprint != fingerprint or state.bytes != self.size:
            return f"the source changed since the checkpoint was written (upload {state.upload_id})"
        if state.filename != self.filename or state.purpose != self.purpose:
            return (
                f"the checkpoint is for filename {state.filename!r} with purpose {state.purpose!r}, "
                f"not {self.filename!r} with purpose {self.purpose!r}"
            )
        if state.base_url and state.base_url != self.client.base_url:
            return f"the checkpoint belongs to another API ({state.base_url})"
        if state.file is None and not 0 < state.part_size <= MAX_PART_SIZE_BYTES:
            return f"the checkpoint has an invalid part size {state.part_size}"
        return None

    def restart(self, reason: str, pending: CheckpointState | None) -> None:
        """Log why the checkpoint is not used, and cancel its upload if it may still be pending."""
        self.restart_reason = reason
        log.warning("not resuming from the checkpoint: %s; starting a new upload", reason)
        if pending is not None and pending.file is None and pending.base_url in ("", self.client.base_url):
            try:
                self.client.cancel_upload(pending.upload_id)
            except FilesApiError as exc:
                log.info("could not cancel the old upload %s: %s", pending.upload_id, exc)
            else:
                log.info("cancelled the old upload %s", pending.upload_id)

    def save(self) -> None:
        if self.store is not None and self.state is not None:
            self.store.save(self.state.to_dict())

    def reuse_file(self, state: CheckpointState) -> UploadResult | None:
        assert state.file is not None
        file_id = str(state.file.get("id"))
        try:
            file = self.client.retrieve_file(file_id)
        except NotFoundError:
            self.restart(f"file {file_id} recorded in the checkpoint no longer exists", None)
            return None
        if file.bytes is not None and file.bytes != self.size:
            self.restart(
                f"file {file_id} recorded in the checkpoint has {file.bytes} bytes, not {self.size}", None
            )
            return None
        log.info(
            "%s was already uploaded as file %s (from the checkpoint); not uploading again",
            self.filename,
            file.id,
        )
        parts = self.parts_total(state)
        return UploadResult(
            file=file,
            upload_id=state.upload_id,
            md5=state.md5 or "",
            parts_total=parts,
            parts_sent=0,
            parts_reused=parts,
            bytes_sent=0,
            resumed=False,
            reused_file=True,
            elapsed_s=time.monotonic() - self.started,
        )

    # -- upload -------------------------------------------------------------------------------

    def create(self, fingerprint: str) -> CheckpointState:
        self.state = None
        self.parts_reused = self.bytes_reused = self.parts_sent = self.bytes_sent = 0
        started_at = time.time()
        try:
            upload = self.client.create_upload(
                self.filename,
                self.purpose,
                self.size,
                self.mime_type,
                expires_after_s=self.uploader.expires_after_s,
            )
        except FilesApiError as exc:
            if _is_ambiguous(exc):
                self.uploader.possible_orphan_uploads += 1
                log.warning(
                    "creating the upload of %s failed in a way that may have created it anyway; such an "
                    "orphan upload stays pending until it expires: %s",
                    self.filename,
                    exc,
                )
            raise
        self.state = CheckpointState(
            upload_id=upload.id,
            filename=self.filename,
            purpose=self.purpose,
            bytes=self.size,
            part_size=self.uploader.part_size_bytes,
            fingerprint=fingerprint,
            base_url=self.client.base_url,
            expires_at=_expires_at(upload, started_at),
            created_at=started_at,
        )
        self.save()
        log.info(
            "upload %s created for %s (%s, %d parts of %s, %d in parallel)",
            upload.id,
            self.filename,
            format_bytes(self.size),
            self.parts_total(self.state),
            format_bytes(self.uploader.part_size_bytes),
            self.uploader.concurrency,
        )
        return self.state

    def begin_resume(self, state: CheckpointState) -> None:
        self.state = state
        self.resumed = True
        self.parts_reused = len(state.parts)
        self.bytes_reused = sum(self.part_length(state, index) for index in state.parts)
        log.info(
            "resuming upload %s of %s from the checkpoint: %d of %d parts already acknowledged",
            state.upload_id,
            self.filename,
            len(state.parts),
            self.parts_total(state),
        )

    def parts_total(self, state: CheckpointState) -> int:
        return math.ceil(self.size / state.part_size)

    def part_length(self, state: CheckpointState, index: int) -> int:
        return min(state.part_size, self.size - index * state.part_size)

    def send_and_complete(self, state: CheckpointState, md5_reader: _Md5Reader | None) -> FileObject:
        total = self.parts_total(state)
        state.parts = {index: part_id for index, part_id in state.parts.items() if 0 <= index < total}
        missing = [index for index in range(total) if index not in state.parts]
        try:
            self.send_parts(state, missing)
        except FilesApiError as exc:
            if self.resumed and _is_gone(exc):
                raise _RestartNeeded(
                    f"the resumed upload {state.upload_id} is gone on the server ({exc})", exc, cancel=False
                ) from exc
            raise
        self.report(force=True)
        md5 = md5_reader.result() if md5_reader is not None else None
        if md5 == "" and self.uploader.cancel_requested:
            raise UploadCancelledError(f"the upload of {self.filename} was cancelled")
        if self.source.fingerprint() != state.fingerprint:
            raise SourceChangedError(
                f"{self.filename} changed while it was being uploaded; not completing it"
            )
        part_ids = [state.parts[index] for index in range(total)]
        return self.complete(state, part_ids, md5 or None)

    def send_parts(self, state: CheckpointState, missing: list[int]) -> None:
        if not missing:
            return
        concurrency = min(self.uploader.concurrency, len(missing))
        queue = iter(missing)
        failure: BaseException | None = None
        in_flight: set[Future[None]] = set()
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload-part")
        try:
            for index in queue:
                in_flight.add(pool.submit(self.send_part, state, index))
                if len(in_flight) >= concurrency:
                    break
            while in_flight:
                done, in_flight = wait(in_flight, timeout=self.report_wait_s(), return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    # errors of parts stopped on purpose (cancel, or after the first failure) are noise
                    if error is not None and failure is None and not self.should_stop():
                        failure = error
                        self.abort.set()
                if failure is None and not self.should_stop():
                    for index in queue:
                        in_flight.add(pool.submit(self.send_part, state, index))
                        if len(in_flight) >= concurrency:
                            break
                elif not self.wait_for_parts_in_flight(failure):
                    break
                self.report()
        finally:
            if failure is not None or self.should_stop():
                self.abort.set()
            pool.shutdown(wait=self.wait_for_parts_in_flight(failure), cancel_futures=True)
        if self.uploader.cancel_requested:
            raise UploadCancelledError(f"the upload of {self.filename} was cancelled")
        if failure is not None:
            raise failure

    def wait_for_parts_in_flight(self, failure: BaseException | None) -> bool:
        """A part whose body already sits in socket buffers cannot be interrupted: on a cancel
        request, or a failure that cancels the upload, do not wait for it. After a failure with
        a checkpoint, wait, so that the parts in flight are recorded for the retry."""
        if self.uploader.cancel_requested:
            return False
        return failure is None or self.store is not None

    def send_part(self, state: CheckpointState, index: int) -> None:
        if self.should_stop():
            return
        offset = index * state.part_size
        length = self.part_length(state, index)
        body = _WatchedBody(self.source.range(offset, length), self.should_stop)
        part = self.client.add_upload_part(state.upload_id, body)
        with self.lock:
            if self.state is not state or self.done.is_set():
                return
            state.parts[index] = part.id
            self.parts_sent += 1
            self.bytes_sent += length
            self.save()

    def complete(self, state: CheckpointState, part_ids: list[str], md5: str | None) -> FileObject:
        try:
            upload = self.client.complete_upload(state.upload_id, part_ids, md5)
        except FilesApiError as exc:
            found = self.find_completed(state, md5) if _may_have_completed(exc) else None
            if found is None:
                if self.resumed and _is_gone(exc):
                    raise _RestartNeeded(
                        f"the resumed upload {state.upload_id} is gone on the server ({exc})",
                        exc,
                        cancel=False,
                    ) from exc
                if _is_md5_mismatch(exc):
                    self.md5_mismatch(state, exc)
                if (
                    isinstance(exc, ApiStatusError)
                    and exc.status_code in (400, 409)
                    and _may_have_completed(exc)
                ):
                    raise UploadError(
                        f"upload {state.upload_id} of {self.filename} was completed by an attempt whose answer "
                        f"was lost, and its file cannot be told apart from other files of the same name and "
                        f"size (or its content could not be read back to compare md5s); a retry uploads "
                        f"the file again. Server said: {exc}"
                    ) from exc
                raise
            log.warning(
                "completing upload %s failed (%s) but file %s with the same name and size exists since "
                "it began; taking it as the result",
                state.upload_id,
                exc,
                found.id,
            )
            file = found
        else:
            named = upload.file or self.find_completed(state, md5)
            if named is None:
                raise UnexpectedResponseError(
                    f"upload {state.upload_id} was completed but the response names no file"
                )
            file = named
        with self.lock:
            state.file = file.to_dict()
            state.md5 = md5
            self.save()
        log.info("upload %s of %s complete: file %s", state.upload_id, self.filename, file.id)
        return file

    def md5_mismatch(self, state: CheckpointState, error: FilesApiError) -> None:
        """The server's md5 of the parts is not the source's: some parts hold other content."""
        if self.resumed:
            raise _RestartNeeded(
                f"the parts of upload {state.upload_id} acknowledged before do not match the source "
                f"(the server's md5 differs), so the source changed without changing its fingerprint",
                error,
                cancel=True,
            ) from error
        # This run sent every part: the source changed while it was read. Nothing here is worth
        # resuming, so a retry must start over.
        self.cancel_quietly(state.upload_id)
        self.state = None
        if self.store is not None:
            self.store.clear()
        raise SourceChangedError(
            f"{self.filename} changed while it was being uploaded: the server's md5 of the parts differs "
            f"from the file's ({error}); upload {state.upload_id} was cancelled"
        ) from error

    def cancel_quietly(self, upload_id: str) -> None:
        try:
            self.client.cancel_upload(upload_id)
        except FilesApiError as exc:
            log.info("could not cancel upload %s: %s", upload_id, exc)
        else:
            log.info("cancelled upload %s", upload_id)

    def find_completed(self, state: CheckpointState, md5: str | None) -> FileObject | None:
        """The file of this upload when its completion's answer was lost (see ``find_stored_file``)."""
        match = FileMatch(self.filename, self.size, self.purpose, state.created_at)
        return self.client.find_stored_file(match, lambda: md5 or md5_of(self.source))

    # -- progress -----------------------------------------------------------------------------

    def report_wait_s(self) -> float:
        """How long the driving thread may sleep: until the next progress report, and never long
        enough to notice a cancel request late."""
        interval = self.uploader.progress_interval_s
        if self.uploader.progress is None or not interval:
            return CANCEL_POLL_S
        return min(CANCEL_POLL_S, max(0.0, interval - (time.monotonic() - self.last_report)))

    def report(self, *, force: bool = False) -> None:
        callback = self.uploader.progress
        state = self.state
        if callback is None or state is None:
            return
        now = time.monotonic()
        with self.lock:
            bytes_done = self.bytes_reused + self.bytes_sent
            parts_done = len(state.parts)
        if bytes_done == self.reported_done:
            return
        if not force and now - self.last_report < self.uploader.progress_interval_s:
            return
        elapsed = now - self.started
        rate = self.bytes_sent / elapsed if elapsed > 0 else 0.0
        remaining = self.size - bytes_done
        self.last_report = now
        self.reported_done = bytes_done
        callback(
            UploadProgress(
                bytes_done=bytes_done,
                total_bytes=self.size,
                parts_done=parts_done,
                parts_total=self.parts_total(state),
                elapsed_s=elapsed,
                rate_bytes_per_s=rate,
                eta_s=remaining / rate if rate > 0 else None,
            )
        )


def _expires_at(upload: Upload, started_at: float) -> float:
    if upload.expires_at is not None:
        return float(upload.expires_at)
    if upload.created_at is not None:
        return upload.created_at + UPLOAD_LIFETIME_S
    return started_at + UPLOAD_LIFETIME_S
