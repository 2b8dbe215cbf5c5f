"""One ``POST /files`` made retry-safe: checkpointed before it is sent, recovered if its answer is lost.

The attempt is recorded (source fingerprint, name, size, start time) before the request goes
out, and the file it created once the answer arrives. A later run with the same checkpoint
hands on that file if it still exists, and after a crash between the two looks for the file
the lost attempt stored before sending the content again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.recovery import FileMatch
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.base import SourceUploader, UploadRequest
from airflow_provider_files.uploads.checkpoint import SINGLE_CHECKPOINT_KIND, CheckpointError, CheckpointStore
from airflow_provider_files.uploads.errors import SourceChangedError, UploadError
from airflow_provider_files.uploads.reuse import file_record, reusable_file
from airflow_provider_files.uploads.sources import UploadSource, md5_of
from airflow_provider_files.uploads.verify import HashingBody, delete_quietly, reported_size_problem

log = logging.getLogger(__name__)


@dataclass
class SingleRequestState:
    """The checkpoint of a single-request upload, typed.

    :param fingerprint: the source's fingerprint when the attempt began.
    :param filename: filename given to the API.
    :param purpose: purpose given to the API.
    :param bytes: size of the source.
    :param started_at: when the attempt began (unix seconds, local clock).
    :param file: the file object once the server answered.
    :param md5: hex md5 of the bytes sent, once the file is stored.
    """

    fingerprint: str
    filename: str
    purpose: str
    bytes: int
    started_at: float
    file: dict[str, Any] | None = None
    md5: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": SINGLE_CHECKPOINT_KIND,
            "fingerprint": self.fingerprint,
            "filename": self.filename,
            "purpose": self.purpose,
            "bytes": self.bytes,
            "started_at": self.started_at,
            "file": self.file,
            "md5": self.md5,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SingleRequestState:
        """Parse a saved checkpoint; raises :class:`CheckpointError` naming what is wrong."""
        if data.get("kind") != SINGLE_CHECKPOINT_KIND:
            raise CheckpointError(f"not a single-request checkpoint (kind {data.get('kind')!r})")
        try:
            file = data.get("file")
            return cls(
                fingerprint=str(data["fingerprint"]),
                filename=str(data.get("filename") or ""),
                purpose=str(data.get("purpose") or ""),
                bytes=int(data.get("bytes") or 0),
                started_at=float(data["started_at"]),
                file=dict(file) if isinstance(file, Mapping) else None,
                md5=str(data["md5"]) if data.get("md5") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint is incomplete or malformed: {exc!r}") from None


@dataclass(frozen=True)
class SingleUploadResult:
    """What a single-request upload produced.

    :param file: the file created (or found again) on the server.
    :param reused_file: the checkpoint named a finished file that still exists; nothing was sent.
    :param recovered: an earlier attempt's answer was lost, and the file it stored was found.
    :param elapsed_s: duration of this run.
    """

    file: FileObject
    reused_file: bool
    recovered: bool
    elapsed_s: float


class SingleRequestUploader(SourceUploader[SingleUploadResult]):
    """Uploads a file with one ``POST /files`` request (up to 512 MB), resumable with a checkpoint.

    :param client: a :class:`~airflow_provider_files.api.FilesClient`.
    :param expires_after_s: lifetime of the created file; ``None``: the server's default.
    :param checkpoint: where the attempt is recorded, so that a rerun reuses the file or finds
        the one a lost attempt stored; ``None``: no checkpoint.
    """

    def __init__(
        self,
        client: FilesClient,
        *,
        expires_after_s: int | None = None,
        checkpoint: CheckpointStore | None = None,
    ) -> None:
        self.client = client
        self.expires_after_s = expires_after_s
        self.checkpoint = checkpoint

    def __repr__(self) -> str:
        return f"SingleRequestUploader(checkpoint={self.checkpoint!r})"

    def _upload(self, request: UploadRequest) -> SingleUploadResult:
        """Upload the source (or hand on the file an earlier run stored) and return the file.

        The md5 of the bytes sent is taken while they stream; the size the server reports for
        the file must be the source's. A file that fails either check is deleted. The content
        type defaults to ``application/octet-stream``.
        """
        upload_source, name, purpose = request.source, request.filename, request.purpose
        mime_type, expected_md5 = request.mime_type, request.expected_md5
        started = time.monotonic()
        fingerprint = upload_source.fingerprint()
        store = self.checkpoint
        if store is not None:
            reused = reusable_file(
                self.client,
                store,
                fingerprint=fingerprint,
                filename=name,
                purpose=purpose,
                size=upload_source.size,
            )
            if reused is not None:
                return SingleUploadResult(reused, True, False, time.monotonic() - started)
            state = self._load(store)
            if state is not None and state.fingerprint == fingerprint and state.started_at:
                found = self.find_lost_file(upload_source, name, purpose, state.started_at, expected_md5)
                if found is not None:
                    state.file, state.md5 = file_record(found, expected_md5), expected_md5
                    store.save(state.to_dict())
                    return SingleUploadResult(found, False, True, time.monotonic() - started)
        record = SingleRequestState(fingerprint, name, purpose, upload_source.size, time.time())
        if store is not None:
            store.save(record.to_dict())
        body = HashingBody(upload_source.range(0, upload_source.size))
        file = self.client.create_file(
            body,
            purpose,
            filename=name,
            expires_after_s=self.expires_after_s,
            content_type=mime_type or "application/octet-stream",
        )
        # None only when a lost answer's file was found without a whole pass of this body
        sent_md5 = body.md5 or md5_of(upload_source)
        self._check_stored(file, upload_source, sent_md5, expected_md5)
        if store is not None:
            record.file, record.md5 = file_record(file, sent_md5), sent_md5
            store.save(record.to_dict())
        elapsed_s = time.monotonic() - started
        log.info(
            "Uploaded %s as file %s in one POST /files request (%d bytes, %.1f s)",
            name,
            file.id,
            upload_source.size,
            elapsed_s,
        )
        return SingleUploadResult(file, False, False, elapsed_s)

    def _check_stored(
        self, file: FileObject, source: UploadSource, sent_md5: str, expected_md5: str | None
    ) -> None:
        """The stored file must have the source's size, and the bytes sent the validated md5."""
        problem = reported_size_problem(f"file {file.id}", file.bytes, source.size)
        error: UploadError | None = UploadError(problem) if problem is not None else None
        if error is None and expected_md5 and sent_md5 != expected_md5.lower():
            error = SourceChangedError(
                f"{source.name} changed since it was validated: the bytes sent have md5 {sent_md5}, "
                f"the validated file {expected_md5.lower()}"
            )
        if error is None:
            return
        deleted = delete_quietly(self.client, file.id)
        if self.checkpoint is not None:
            self.checkpoint.clear()
        raise type(error)(f"{error}; file {file.id} {'was deleted' if deleted else 'could not be deleted'}")

    def find_lost_file(
        self,
        source: UploadSource,
        filename: str,
        purpose: str,
        started_at: float,
        expected_md5: str | None = None,
    ) -> FileObject | None:
        """The file an interrupted earlier attempt stored before its response was lost.

        A file counts only if it is the one candidate (same name, size and purpose, created since
        that attempt began) and its content has the source's md5: another task may upload a file
        of the same name and size at the same time, and reusing it would hand on the wrong data.
        """
        match = FileMatch(filename, source.size, purpose, started_at)
        found = self.client.find_stored_file(match, lambda: expected_md5 or md5_of(source))
        if found is not None:
            log.info("Found file %s stored by an interrupted earlier try; not uploading again", found.id)
        return found

    @staticmethod
    def _load(store: CheckpointStore) -> SingleRequestState | None:
        raw = store.load()
        if raw is None:
            return None
        try:
            return SingleRequestState.from_dict(raw)
        except CheckpointError as exc:
            log.warning("not using the single-request checkpoint (%s); uploading anew", exc)
            return None
