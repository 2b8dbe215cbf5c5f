"""Upload engine: parallel parts, bounded memory, md5, progress and resumable checkpoints. No Airflow imports."""

from __future__ import annotations

from airflow_provider_files.api.limits import MAX_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES, validate_part_size
from airflow_provider_files.uploads.checkpoint import (
    CheckpointError,
    CheckpointState,
    CheckpointStore,
    JsonFileCheckpointStore,
    MemoryCheckpointStore,
)
from airflow_provider_files.uploads.errors import SourceChangedError, UploadCancelledError, UploadError
from airflow_provider_files.uploads.limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE_BYTES,
    MAX_CONCURRENCY,
    MAX_UPLOAD_BYTES,
    guess_mime_type,
)
from airflow_provider_files.uploads.progress import UploadProgress, format_bytes, parse_size_bytes
from airflow_provider_files.uploads.result import UploadResult
from airflow_provider_files.uploads.single import SingleRequestUploader, SingleUploadResult
from airflow_provider_files.uploads.sources import LocalFileSource, ObjectSource, OpenFileSource, UploadSource
from airflow_provider_files.uploads.spool import SpooledObject, SpoolError
from airflow_provider_files.uploads.uploader import ChunkedUploader

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PART_SIZE_BYTES",
    "MAX_CONCURRENCY",
    "MAX_PART_SIZE_BYTES",
    "MAX_UPLOAD_BYTES",
    "MIN_PART_SIZE_BYTES",
    "CheckpointError",
    "CheckpointState",
    "CheckpointStore",
    "ChunkedUploader",
    "JsonFileCheckpointStore",
    "LocalFileSource",
    "MemoryCheckpointStore",
    "ObjectSource",
    "OpenFileSource",
    "SingleRequestUploader",
    "SingleUploadResult",
    "SourceChangedError",
    "SpoolError",
    "SpooledObject",
    "UploadCancelledError",
    "UploadError",
    "UploadProgress",
    "UploadResult",
    "UploadSource",
    "format_bytes",
    "guess_mime_type",
    "parse_size_bytes",
    "validate_part_size",
]
