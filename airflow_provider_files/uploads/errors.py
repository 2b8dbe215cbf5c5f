"""Failures of the upload engine that are not API errors."""

from __future__ import annotations


class UploadError(Exception):
    """Base class of the engine's own errors (API failures raise :class:`~airflow_provider_files.api.FilesApiError`)."""


class UploadCancelledError(UploadError):
    """The upload was stopped by :meth:`ChunkedUploader.request_cancel`."""


class SourceChangedError(UploadError):
    """The source changed while it was being uploaded, so the parts sent do not form one version of it."""
