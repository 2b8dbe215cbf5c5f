"""Files to the Files API, safe to run again: reuse, resume or upload, in one request or in parts.

This is what a task that may be retried needs: a rerun with the same checkpoint folder hands on
the file a finished run uploaded, resumes a chunked upload from its checkpoint, or finds the
file a single request stored before its answer was lost. A run that no other run will follow
(``last_try``) cancels the upload it leaves pending instead. A source split into shards is
uploaded shard by shard, and the files they became are recorded for the next run.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.checkpoint import CheckpointStore
from airflow_provider_files.uploads.errors import UploadCancelledError
from airflow_provider_files.uploads.limits import uses_single_request
from airflow_provider_files.uploads.manifest import ShardSource, reuse_split, save_split
from airflow_provider_files.uploads.progress import UploadProgress, plural
from airflow_provider_files.uploads.reuse import cancel_pending_upload, reusable_file
from airflow_provider_files.uploads.single import SingleRequestUploader
from airflow_provider_files.uploads.sources import UploadSource
from airflow_provider_files.uploads.uploader import ChunkedUploader

log = logging.getLogger(__name__)

# Beside the checkpoint of a chunked upload: that of a single request, the manifest of a
# sharded upload, and one checkpoint per shard.
SINGLE_SUFFIX = ".single"
SPLIT_SUFFIX = ".split"
SHARD_SUFFIX = ".shard{index:05d}"


class CheckpointFolder(CheckpointStore, Protocol):
    """A checkpoint store that can name stores beside it (one per shard, per way of uploading)."""

    def sibling(self, suffix: str) -> CheckpointFolder: ...


class ResumableUploader:
    """Uploads files so that running again with the same checkpoints never uploads twice.

    :param client: a :class:`~airflow_provider_files.api.FilesClient`.
    :param purpose: purpose of the files.
    :param mime_type: MIME type announced (default: guessed from the file name).
    :param part_size_bytes: bytes per part of a chunked upload; ``None``: the engine's evened default
        (see :class:`~airflow_provider_files.uploads.ChunkedUploader`).
    :param concurrency: parts in flight at once.
    :param expires_after_s: lifetime of the files; ``None``: the server's default.
    :param resume: keep checkpoints (reuse, resume, recover); without, a failed upload is cancelled.
    :param progress: called with the filename and an :class:`UploadProgress` during chunked uploads.
    :param progress_interval_s: minimum seconds between two progress reports.
    :param send_md5: send the md5 on completing a chunked upload so the server checks the parts
        (turn off for a gateway that refuses the field).
    """

    def __init__(
        self,
        client: FilesClient,
        *,
        purpose: str,
        mime_type: str | None,
        part_size_bytes: int | None,
        concurrency: int,
        expires_after_s: int | None,
        resume: bool,
        progress: Callable[[str, UploadProgress], None] | None = None,
        progress_interval_s: float = 5.0,
        send_md5: bool = True,
    ) -> None:
        self.client = client
        self.purpose = purpose
        self.mime_type = mime_type
        self.part_size_bytes = part_size_bytes
        self.concurrency = concurrency
        self.expires_after_s = expires_after_s
        self.resume = resume
        self.progress = progress
        self.progress_interval_s = progress_interval_s
        self.send_md5 = send_md5
        self._running: ChunkedUploader | None = None

    def reuse(
        self, source: UploadSource, folder: CheckpointFolder, filename: str, *, single_request: bool
    ) -> FileObject | None:
        """The file a finished earlier run uploaded from this source, if still usable."""
        if not self.resume:
            return None
        store = folder.sibling(SINGLE_SUFFIX) if single_request else folder
        return reusable_file(
            self.client,
            store,
            fingerprint=source.fingerprint(),
            filename=filename,
            purpose=self.purpose,
            size=source.size,
        )

    def upload(
        self,
        source: UploadSource,
        folder: CheckpointFolder,
        filename: str,
        *,
        single_request: bool,
        last_try: bool = False,
        expected_md5: str | None = None,
        reuse_first: bool = False,
    ) -> FileObject:
        """Upload (resuming or recovering what an earlier run left), in one request or in parts.

        :param expected_md5: the md5 the source had when it was validated: the bytes uploaded must
            have it (else :class:`~airflow_provider_files.uploads.SourceChangedError`, and what was
            uploaded is deleted or cancelled); the source is then not hashed again.
        :param reuse_first: hand on the file a finished earlier run uploaded from this source, if
            still usable (see :meth:`reuse`), instead of uploading.
        """
        if reuse_first:
            reused = self.reuse(source, folder, filename, single_request=single_request)
            if reused is not None:
                return reused
        if single_request:
            single = SingleRequestUploader(
                self.client,
                expires_after_s=self.expires_after_s,
                checkpoint=folder.sibling(SINGLE_SUFFIX) if self.resume else None,
            )
            return single.upload(
                source,
                purpose=self.purpose,
                filename=filename,
                mime_type=self.mime_type,
                expected_md5=expected_md5,
            ).file
        return self._upload_chunked(source, folder, filename, last_try=last_try, expected_md5=expected_md5)

    #: :meth:`upload` with ``reuse_first=True``.
    reuse_or_upload = functools.partialmethod(upload, reuse_first=True)

    def reuse_split(self, folder: CheckpointFolder, split: str) -> list[FileObject] | None:
        """The files every shard of this split became in a finished earlier run, if all are usable.

        :param folder: the checkpoint folder of the whole source.
        :param split: the split's fingerprint (see :func:`~airflow_provider_files.uploads.manifest.split_fingerprint`).
        """
        if not self.resume:
            return None
        return reuse_split(self.client, folder.sibling(SPLIT_SUFFIX), fingerprint=split, purpose=self.purpose)

    def upload_shards(
        self,
        shards: Sequence[UploadSource],
        folder: CheckpointFolder,
        split: str,
        *,
        single_request_max_bytes: int,
        last_try: bool = False,
    ) -> list[FileObject]:
        """Upload every shard (each reused, resumed or uploaded on its own), then record the split.

        :param shards: the shard files, in order (rewritten by every run).
        :param folder: the checkpoint folder of the whole source.
        :param split: the split's fingerprint.
        :param single_request_max_bytes: shards up to this size go in one request.
        :param last_try: no run follows this one.
        """
        files: list[FileObject] = []
        for index, shard in enumerate(shards):
            source = ShardSource(shard, split, index)
            files.append(
                self.reuse_or_upload(
                    source,
                    folder.sibling(SHARD_SUFFIX.format(index=index)),
                    source.name,
                    single_request=uses_single_request(source.size, single_request_max_bytes),
                    last_try=last_try,
                )
            )
        if self.resume:
            save_split(folder.sibling(SPLIT_SUFFIX), fingerprint=split, purpose=self.purpose, files=files)
        return files

    def request_cancel(self) -> bool:
        """Stop the chunked upload under way (from any thread); ``False`` if none is running."""
        running = self._running
        if running is None:
            return False
        running.request_cancel()
        return True

    def _upload_chunked(
        self,
        source: UploadSource,
        store: CheckpointStore,
        filename: str,
        *,
        last_try: bool,
        expected_md5: str | None = None,
    ) -> FileObject:
        progress = self.progress

        def report(update: UploadProgress) -> None:
            if progress is not None:
                progress(filename, update)

        self._running = ChunkedUploader(
            self.client,
            part_size_bytes=self.part_size_bytes,
            concurrency=self.concurrency,
            expires_after_s=self.expires_after_s,
            progress=report if progress is not None else None,
            progress_interval_s=self.progress_interval_s,
            checkpoint=store if self.resume else None,
            cancel_on_failure=not self.resume,
            send_md5=self.send_md5,
        )
        try:
            result = self._running.upload(
                source,
                purpose=self.purpose,
                filename=filename,
                mime_type=self.mime_type,
                expected_md5=expected_md5,
            )
        except UploadCancelledError:
            raise  # stopped on request: the caller decided what happens to the upload
        except Exception:
            if self.resume and last_try:
                cancel_pending_upload(self.client, store)
            raise
        finally:
            self._running = None
        log.info(
            "Uploaded %s as file %s through the Uploads API (%s %s, %s, %d sent, %d reused, md5 %s, %.1f s)",
            filename,
            result.file.id,
            "resumed upload" if result.resumed else "upload",
            result.upload_id,
            plural(result.parts_total, "part"),
            result.parts_sent,
            result.parts_reused,
            result.md5,
            result.elapsed_s,
        )
        return result.file
