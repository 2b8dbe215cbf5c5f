"""HTTP layer: clients for OpenAI-compatible Files, Uploads and Batches APIs. No Airflow imports."""

from __future__ import annotations

from airflow_provider_files.api.async_client import AsyncFilesClient
from airflow_provider_files.api.batch_models import (
    TERMINAL_BATCH_STATUSES,
    Batch,
    BatchError,
    BatchList,
    BatchRequestCounts,
    BatchStatus,
)
from airflow_provider_files.api.bodies import BytesSource, FileObjectSource, FileRange
from airflow_provider_files.api.errors import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    FilesApiError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    SourceNotReplayableError,
    UnexpectedResponseError,
    UnprocessableEntityError,
    UnsupportedOperationError,
)
from airflow_provider_files.api.gateways import PROFILES, ClientSettings, GatewayProfile
from airflow_provider_files.api.models import (
    FileDeleted,
    FileList,
    FileObject,
    FileStatus,
    Upload,
    UploadPart,
    UploadStatus,
)
from airflow_provider_files.api.retry import RetryPolicy
from airflow_provider_files.api.sync_client import FilesClient

__all__ = [
    "PROFILES",
    "TERMINAL_BATCH_STATUSES",
    "ApiConnectionError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AsyncFilesClient",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchError",
    "BatchList",
    "BatchRequestCounts",
    "BatchStatus",
    "BytesSource",
    "ClientSettings",
    "ConfigurationError",
    "ConflictError",
    "FileDeleted",
    "FileList",
    "FileObject",
    "FileObjectSource",
    "FileRange",
    "FileStatus",
    "FilesApiError",
    "FilesClient",
    "GatewayProfile",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "SourceNotReplayableError",
    "UnexpectedResponseError",
    "UnprocessableEntityError",
    "UnsupportedOperationError",
    "Upload",
    "UploadPart",
    "UploadStatus",
]
