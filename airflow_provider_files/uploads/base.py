"""What every way of uploading one source takes: the source, its purpose, name, type, validated md5."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

from airflow_provider_files.uploads.sources import UploadSource, as_upload_source

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class UploadRequest:
    """One upload's arguments, the source opened and the filename settled.

    :param source: the bytes to upload.
    :param purpose: the file's purpose (``batch``, ``fine-tune`` ...).
    :param filename: filename given to the API (the source's name unless one was given).
    :param mime_type: the content type asked for; ``None``: the uploader's default.
    :param expected_md5: the md5 the source had when it was validated, if known.
    """

    source: UploadSource
    purpose: str
    filename: str
    mime_type: str | None
    expected_md5: str | None


class SourceUploader(ABC, Generic[ResultT]):
    """The shared front of the uploaders: :meth:`upload` opens the source and hands on one request."""

    def upload(
        self,
        source: UploadSource | str | os.PathLike[str],
        *,
        purpose: str,
        filename: str | None = None,
        mime_type: str | None = None,
        expected_md5: str | None = None,
    ) -> ResultT:
        """Upload ``source`` and return what it became.

        :param source: a path, or an :class:`~airflow_provider_files.uploads.UploadSource`.
        :param purpose: the file's purpose (``batch``, ``fine-tune`` ...).
        :param filename: filename given to the API; defaults to the source's name.
        :param mime_type: content type of the file; the default depends on the uploader.
        :param expected_md5: the md5 the source had when it was validated; bytes with another md5
            fail with :class:`~airflow_provider_files.uploads.SourceChangedError`.
        """
        self._check_purpose(purpose)
        upload_source = as_upload_source(source)
        name = filename or upload_source.name
        return self._upload(UploadRequest(upload_source, purpose, name, mime_type, expected_md5))

    def _check_purpose(self, purpose: str) -> None:
        """Refuse a purpose before the source is opened (by default: nothing is refused)."""

    @abstractmethod
    def _upload(self, request: UploadRequest) -> ResultT:
        """Carry out one upload."""
