"""Where the clients used to live; their names are re-exported here for existing imports.

The code is now split by job: :mod:`~airflow_provider_files.api.operations` (the one table of
operations), :mod:`~airflow_provider_files.api.recovery` (lost-response recovery),
:mod:`~airflow_provider_files.api.sync_client` and :mod:`~airflow_provider_files.api.async_client`.
"""

from __future__ import annotations

from airflow_provider_files.api.async_client import AsyncFilesClient
from airflow_provider_files.api.bodies import FileRange
from airflow_provider_files.api.client_base import DOWNLOAD_CHUNK_BYTES
from airflow_provider_files.api.limits import (
    EXPIRES_AFTER_MAX_S,
    EXPIRES_AFTER_MIN_S,
)
from airflow_provider_files.api.limits import (
    FILES_LIST_LIMIT_MAX as LIST_LIMIT_MAX,
)
from airflow_provider_files.api.operations import Endpoints, Operation, Operations, RequestSpec
from airflow_provider_files.api.recovery import RECOVERY_CLOCK_SLACK_S, FileMatch, Md5Sink, body_md5
from airflow_provider_files.api.sync_client import FilesClient

__all__ = [
    "DOWNLOAD_CHUNK_BYTES",
    "EXPIRES_AFTER_MAX_S",
    "EXPIRES_AFTER_MIN_S",
    "LIST_LIMIT_MAX",
    "RECOVERY_CLOCK_SLACK_S",
    "AsyncFilesClient",
    "Endpoints",
    "FileMatch",
    "FileRange",
    "FilesClient",
    "Md5Sink",
    "Operation",
    "Operations",
    "RequestSpec",
    "body_md5",
]
