"""The chunked upload engine: one run of an upload, its parts sent in parallel, md5 on complete, resumable.

:class:`~airflow_provider_files.uploads.uploader.ChunkedUploader` is the public face (settings,
cancel); each of its uploads is one ``_UploadRun`` here.

Memory stays bounded whatever the file size: each part streams its byte range from the source
in 1 MiB chunks (no part is ever held whole), and the md5 of the file is computed by one
background thread reading the source sequentially while the parts go out.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from airflow_provider_files.api.errors import (
    FilesApiError,
    NotFoundError,
)
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.retry import is_ambiguous, is_gone
from airflow_provider_files.uploads.checkpoint import CheckpointState
from airflow_provider_files.uploads.completion import RestartNeeded, complete_upload
from airflow_provider_files.uploads.errors import SourceChangedError, UploadCancelledError
from airflow_provider_files.uploads.limits import MAX_PART_SIZE_BYTES
from airflow_provider_files.uploads.parts import Md5Reader, StartOrder, WatchedBody, send_in_parallel
from airflow_provider_files.uploads.progress import ProgressReporter, format_bytes, plural
from airflow_provider_files.uploads.result import UploadResult
from airflow_provider_files.uploads.resume import decide_resume, recorded_file_problem, upload_expires_at
from airflow_provider_files.uploads.reuse import recorded_md5_problem
from airflow_provider_files.uploads.sources import UploadSource

if TYPE_CHECKING:
    from airflow_provider_files.uploads.uploader import ChunkedUploader

log = logging.getLogger(__name__)

# How often the driving thread looks for a cancel request while parts are in flight.
CANCEL_POLL_S = 0.1


class _UploadRun:
    """The state of one :meth:`ChunkedUploader.upload` call."""

    def __init__(
        self,
        uploader: ChunkedUploader,
        source: UploadSource,
        filename: str,
        purpose: str,
        mime_type: str,
        part_size: int,
        expected_md5: str | None = None,
    ) -> None:
        self.uploader = uploader
        self.part_size = part_size  # of a new upload; a resumed one keeps its checkpoint's
        # the md5 the source had when it was validated: sent on complete instead of hashing again
        self.expected_md5 = expected_md5.lower() if expected_md5 else None
        self.md5 = ""  # of the source, once known
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
        self.reporter = (
            ProgressReporter(uploader.progress, uploader.progress_interval_s, self.size, self.started)
            if uploader.progress is not None
            else None
        )

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
        # Hash the source beside the parts unless the md5 is known; without send_md5 the server
        # cannot compare a known md5, so the source is read again and compared here.
        hash_source = self.uploader.send_md5 == (self.expected_md5 is None)
        md5_reader = Md5Reader(self.source, self.md5_should_stop) if hash_source else None
        if md5_reader is not None:
            md5_reader.start()
        try:
            if state is None:
                state = self.create(fingerprint)
            else:
                self.begin_resume(state)
            try:
                file = self.send_and_complete(state, md5_reader)
            except RestartNeeded as restart:
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
        return UploadResult(
            file=file,
            upload_id=state.upload_id,
            md5=self.md5,
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
        # a stop on request (cancel, Ctrl-C) is reported by whoever asked for it
        level = (
            logging.DEBUG if isinstance(exc, (UploadCancelledError, KeyboardInterrupt)) else logging.WARNING
        )
        if self.store is not None:
            log.log(
                level,
                "upload %s of %s left pending so that a retry with the same checkpoint resumes it "
                "(%d of %s acknowledged): %s",
                state.upload_id,
                self.filename,
                len(state.parts),
                plural(self.parts_total(state), "part"),
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
            log.log(
                level, "upload %s of %s failed and was cancelled: %s", state.upload_id, self.filename, exc
            )

    # -- checkpoint ---------------------------------------------------------------------------

    def load_checkpoint(self, fingerprint: str) -> CheckpointState | None:
        """The checkpoint to resume or whose file to reuse; ``None`` to start a new upload."""
        if self.store is None:
            return None
        decision = decide_resume(
            self.store.load(),
            fingerprint=fingerprint,
            size=self.size,
            filename=self.filename,
            purpose=self.purpose,
            base_url=self.client.base_url,
            max_part_size=MAX_PART_SIZE_BYTES,
            now=time.time(),
        )
        if decision.action == "restart":
            self.restart(decision.reason or "", decision.cancel_upload_id)
        return decision.state

    def restart(self, reason: str, cancel_upload_id: str | None) -> None:
        """Log why the checkpoint is not used, and cancel its upload if it may still be pending."""
        self.restart_reason = reason
        log.warning("not resuming from the checkpoint: %s; starting a new upload", reason)
        if cancel_upload_id is not None:
            self.cancel_quietly(cancel_upload_id, "the old upload")

    def save(self) -> None:
        if self.store is not None and self.state is not None:
            self.store.save(self.state.to_dict())

    def reuse_file(self, state: CheckpointState) -> UploadResult | None:
        assert state.file is not None
        file_id = str(state.file.get("id"))
        try:
            current: FileObject | None = self.client.retrieve_file(file_id)
        except NotFoundError:
            current = None
        problem = recorded_file_problem(file_id, current, self.size)
        if problem is None and current is not None and state.md5:
            problem = recorded_md5_problem(self.client, current, state.file, state.md5, self.expected_md5)
        if problem is not None or current is None:
            self.restart(problem or "", None)
            return None
        file = current
        log.info(
            "%s was already uploaded as file %s (from the checkpoint); not uploading again",
            self.filename,
            file.id,
        )
        return UploadResult.of_reused_file(
            file, state, self.parts_total(state), time.monotonic() - self.started
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
            if is_ambiguous(exc):
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
            part_size=self.part_size,
            fingerprint=fingerprint,
            base_url=self.client.base_url,
            expires_at=upload_expires_at(upload, started_at),
            created_at=started_at,
        )
        self.save()
        log.info(
            "upload %s created for %s (%s, %s of %s, %d in parallel)",
            upload.id,
            self.filename,
            format_bytes(self.size),
            plural(self.parts_total(self.state), "part"),
            format_bytes(self.part_size),
            self.uploader.concurrency,
        )
        return self.state

    def begin_resume(self, state: CheckpointState) -> None:
        self.state = state
        self.resumed = True
        self.parts_reused = len(state.parts)
        self.bytes_reused = sum(self.part_length(state, index) for index in state.parts)
        log.info(
            "resuming upload %s of %s from the checkpoint: %d of %s already acknowledged",
            state.upload_id,
            self.filename,
            len(state.parts),
            plural(self.parts_total(state), "part"),
        )

    def parts_total(self, state: CheckpointState) -> int:
        return math.ceil(self.size / state.part_size)

    def part_length(self, state: CheckpointState, index: int) -> int:
        return min(state.part_size, self.size - index * state.part_size)

    def send_and_complete(self, state: CheckpointState, md5_reader: Md5Reader | None) -> FileObject:
        total = self.parts_total(state)
        state.parts = {index: part_id for index, part_id in state.parts.items() if 0 <= index < total}
        missing = [index for index in range(total) if index not in state.parts]
        try:
            self.send_parts(state, missing)
        except FilesApiError as exc:
            if self.resumed and is_gone(exc):
                raise RestartNeeded(
                    f"the resumed upload {state.upload_id} is gone on the server ({exc})", exc, cancel=False
                ) from exc
            raise
        self.report(force=True)
        read_md5 = md5_reader.result() if md5_reader is not None else None
        if read_md5 == "" and self.uploader.cancel_requested:
            raise UploadCancelledError(f"the upload of {self.filename} was cancelled")
        if self.source.fingerprint() != state.fingerprint:
            raise SourceChangedError(
                f"{self.filename} changed while it was being uploaded; not completing it"
            )
        if self.expected_md5 is not None and read_md5 is not None and read_md5 != self.expected_md5:
            self.drop_upload(state)
            raise SourceChangedError(
                f"{self.filename} changed since it was validated (md5 {read_md5}, validated "
                f"{self.expected_md5}); upload {state.upload_id} was cancelled"
            )
        self.md5 = self.expected_md5 or read_md5 or ""
        part_ids = [state.parts[index] for index in range(total)]
        return complete_upload(self, state, part_ids, self.md5 if self.uploader.send_md5 else None)

    def send_parts(self, state: CheckpointState, missing: list[int]) -> None:
        if not missing:
            return
        order = StartOrder(missing)
        failure = send_in_parallel(
            missing,
            lambda index: self.send_part(state, index, order),
            concurrency=min(self.uploader.concurrency, len(missing)),
            should_stop=self.should_stop,
            stop=self.abort.set,
            tick_wait_s=self.report_wait_s,
            on_tick=self.report,
            wait_in_flight=self.wait_for_parts_in_flight,
        )
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

    def send_part(self, state: CheckpointState, index: int, order: StartOrder) -> None:
        try:
            if self.should_stop():
                return
            order.wait_turn(index, self.should_stop)
            offset = index * state.part_size
            length = self.part_length(state, index)
            body = WatchedBody(
                self.source.range(offset, length), self.should_stop, lambda: order.started(index)
            )
            part = self.client.add_upload_part(state.upload_id, body)
        finally:
            order.started(index)
        with self.lock:
            if self.state is not state or self.done.is_set():
                return
            state.parts[index] = part.id
            self.parts_sent += 1
            self.bytes_sent += length
            self.save()

    def drop_upload(self, state: CheckpointState) -> None:
        """Cancel an upload whose parts are not the source, and forget its checkpoint."""
        self.cancel_quietly(state.upload_id)
        self.forget_checkpoint()

    def forget_checkpoint(self) -> None:
        """Nothing of this run is worth resuming: a retry starts over."""
        self.state = None
        if self.store is not None:
            self.store.clear()

    def cancel_quietly(self, upload_id: str, label: str = "upload") -> None:
        """Cancel ``upload_id``, logging the outcome; a failure to cancel is not an error."""
        try:
            self.client.cancel_upload(upload_id)
        except FilesApiError as exc:
            log.info("could not cancel %s %s: %s", label, upload_id, exc)
        else:
            log.info("cancelled %s %s", label, upload_id)

    # -- progress -----------------------------------------------------------------------------

    def report_wait_s(self) -> float:
        """How long the driving thread may sleep: until the next progress report, and never long
        enough to notice a cancel request late."""
        return self.reporter.wait_s(CANCEL_POLL_S) if self.reporter is not None else CANCEL_POLL_S

    def report(self, *, force: bool = False) -> None:
        state = self.state
        if self.reporter is None or state is None:
            return
        with self.lock:
            bytes_done = self.bytes_reused + self.bytes_sent
            parts_done = len(state.parts)
        self.reporter.report(
            bytes_done=bytes_done,
            bytes_sent=self.bytes_sent,
            parts_done=parts_done,
            parts_total=self.parts_total(state),
            force=force,
        )
