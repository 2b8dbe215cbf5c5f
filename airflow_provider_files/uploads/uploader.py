"""The public face of the chunked upload engine: settings, arguments, cancel; each upload is one run."""

from __future__ import annotations

import threading
from collections.abc import Callable

from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.base import SourceUploader, UploadRequest
from airflow_provider_files.uploads.checkpoint import CheckpointStore
from airflow_provider_files.uploads.engine import _UploadRun
from airflow_provider_files.uploads.errors import UploadCancelledError
from airflow_provider_files.uploads.limits import (
    DEFAULT_CONCURRENCY,
    check_source_size,
    even_part_size,
    guess_mime_type,
    validate_concurrency,
    validate_expires_after_s,
    validate_part_size,
)
from airflow_provider_files.uploads.progress import UploadProgress
from airflow_provider_files.uploads.result import UploadResult

PROGRESS_INTERVAL_S = 2.0

ProgressCallback = Callable[[UploadProgress], None]


class ChunkedUploader(SourceUploader[UploadResult]):
    """Uploads a file through the Uploads API with parts sent in parallel.

    Reusable for several uploads one after another (not at the same time).

    :param client: a :class:`~airflow_provider_files.api.FilesClient`; give it a connection pool
        larger than ``concurrency`` (a cancel must find a free connection).
    :param part_size_bytes: bytes per part, 64 KiB to 64 MiB; ``None`` (the default): about
        16 MiB, evened out so that the part count is a multiple of ``concurrency`` (see
        :func:`~airflow_provider_files.uploads.limits.even_part_size`).
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
        part_size_bytes: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        expires_after_s: int | None = None,
        progress: ProgressCallback | None = None,
        checkpoint: CheckpointStore | None = None,
        cancel_on_failure: bool = True,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
        send_md5: bool = True,
    ) -> None:
        self.client = client
        self.part_size_bytes = None if part_size_bytes is None else validate_part_size(part_size_bytes)
        self.concurrency = validate_concurrency(concurrency)
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

    def _check_purpose(self, purpose: str) -> None:
        if not purpose or not isinstance(purpose, str):
            raise ValueError("purpose is required (e.g. 'batch')")

    def _upload(self, request: UploadRequest) -> UploadResult:
        """Upload the source and return the file it became.

        The content type defaults to a guess from the filename (``text/jsonl`` for ``.jsonl``).
        A known ``expected_md5`` is sent on complete instead of hashing the source again, so the
        server proves the parts are those bytes; without ``send_md5`` the source is hashed again
        and compared here. A difference fails with :class:`SourceChangedError` and cancels the
        upload.
        """
        name = request.filename
        if not name:
            raise ValueError("the source has no name: pass filename=")
        size = request.source.size
        part_size = self.part_size_bytes or even_part_size(size, self.concurrency)
        check_source_size(name, size, part_size)
        if self._cancel.is_set():
            raise UploadCancelledError("the upload was cancelled before it began")
        mime_type = request.mime_type or guess_mime_type(name)
        run = _UploadRun(
            self, request.source, name, request.purpose, mime_type, part_size, request.expected_md5
        )
        return run.execute()
