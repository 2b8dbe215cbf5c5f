"""The one table of operations: each is declared once, as the request it sends and the parser of its answer.

:class:`Operations` knows nothing of sending: the blocking and the async clients expose each of
its methods as a client method of the same name and signature (see ``sync_client`` and
``async_client``), so adding an operation means adding one method here and one line per client.
Everything checked here (ids, ranges, the gateway's support) is checked before any byte is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from airflow_provider_files.api.batch_models import Batch, BatchList
from airflow_provider_files.api.bodies import BodyInput, MultipartBody, as_body_source, default_filename
from airflow_provider_files.api.gateways import ClientSettings
from airflow_provider_files.api.limits import (
    BATCHES_LIST_LIMIT_MAX,
    FILES_LIST_LIMIT_MAX,
    require_header_text,
    validate_completion_window,
    validate_expires_after_s,
    validate_metadata,
)
from airflow_provider_files.api.models import FileDeleted, FileList, FileObject, Upload, UploadPart
from airflow_provider_files.api.recovery import FileMatch, match_for

T = TypeVar("T")

# Characters left as they are in an id path segment ('?', '#', '%' and spaces get quoted).
_ID_SAFE_CHARS = "-._~=+:@!$&'()*,;"


@dataclass(frozen=True)
class RequestSpec:
    """What to send, independent of sync or async."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    body: MultipartBody | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation(Generic[T]):
    """A request and how to read its JSON answer.

    :param spec: the request.
    :param parse: turns the answer's JSON into the result.
    :param recovery: when set, a failure that may have stored the file anyway is followed by a
        look for that file before the retry (see :mod:`~airflow_provider_files.api.recovery`).
    """

    spec: RequestSpec
    parse: Callable[[Any], T]
    recovery: FileMatch | None = None


def require_id(value: str, what: str) -> str:
    """The id as one path segment; ids are opaque (gateways may base64 them), so only quote them.

    Refused: ``/`` and ``\\`` (path separators), ``.`` and ``..`` (``DELETE /files/.`` would
    become ``DELETE /files``), whitespace and control characters (no API writes ids with them).
    """
    if not isinstance(value, str) or not value.strip() or "/" in value:
        raise ValueError(f"{what} must be a non-empty id without '/', got {value!r}")
    if value in (".", "..") or "\\" in value or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(
            f"{what} must be an id, not {value!r}: '.', '..', backslashes, spaces and control characters "
            "would change or break the URL"
        )
    return quote(value, safe=_ID_SAFE_CHARS)


class Operations:
    """Builds the request of each operation for one gateway profile.

    :param settings: the client settings; only the gateway profile is used.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.profile = settings.profile

    # -- files -------------------------------------------------------------------------------

    def create_file(
        self,
        file: BodyInput,
        purpose: str,
        *,
        filename: str | None = None,
        expires_after_s: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> Operation[FileObject]:
        """``POST /files``: upload ``file`` (a path, bytes or binary file object) in one request.

        If an attempt fails in a way that may have stored the file anyway (connection lost,
        5xx), the retry first looks for a file of the same name and size created since the
        first attempt and returns it, so a retry does not create a duplicate.
        """
        self.profile.require_purpose(purpose)
        seconds = validate_expires_after_s(expires_after_s)
        fields = [("purpose", purpose)]
        if seconds is not None:
            fields += [("expires_after[anchor]", "created_at"), ("expires_after[seconds]", str(seconds))]
        name = filename or default_filename(file) or "upload"
        require_header_text(content_type, "content_type")  # it becomes a header of the multipart body
        body = MultipartBody(fields, "file", name, as_body_source(file), content_type)
        spec = RequestSpec("POST", self.profile.path("files"), body=body)
        return Operation(spec, FileObject.from_dict, match_for(file, filename, purpose))

    def list_files(
        self,
        *,
        purpose: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
    ) -> Operation[FileList]:
        """``GET /files``: one page."""
        if limit is not None and not 1 <= limit <= FILES_LIST_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {FILES_LIST_LIMIT_MAX}, got {limit}")
        if order not in (None, "asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
        params: dict[str, Any] = {"purpose": purpose}
        if self.profile.paginates:
            params.update(limit=limit, order=order, after=after)
        params = {k: v for k, v in params.items() if v is not None}
        return Operation(RequestSpec("GET", self.profile.path("files"), params=params), FileList.from_dict)

    def retrieve_file(self, file_id: str) -> Operation[FileObject]:
        """``GET /files/{file_id}``."""
        path = self.profile.path("files", require_id(file_id, "file_id"))
        return Operation(RequestSpec("GET", path), FileObject.from_dict)

    def delete_file(self, file_id: str) -> Operation[FileDeleted]:
        """``DELETE /files/{file_id}``."""
        path = self.profile.path("files", require_id(file_id, "file_id"))
        return Operation(RequestSpec("DELETE", path), FileDeleted.from_dict)

    def file_content(self, file_id: str) -> RequestSpec:
        """``GET /files/{file_id}/content``: a raw body, streamed by the clients' ``download_file``."""
        path = self.profile.path("files", require_id(file_id, "file_id"), "content")
        return RequestSpec("GET", path, headers={"Accept": "application/binary"})

    # -- uploads -----------------------------------------------------------------------------

    def create_upload(
        self,
        filename: str,
        purpose: str,
        bytes: int,
        mime_type: str,
        *,
        expires_after_s: int | None = None,
    ) -> Operation[Upload]:
        """``POST /uploads``: start an upload of ``bytes`` bytes (status ``pending``)."""
        self.profile.require_uploads()
        self.profile.require_purpose(purpose)
        if bytes < 0:
            raise ValueError(f"bytes must be >= 0, got {bytes}")
        require_header_text(mime_type, "mime_type")  # servers give it to the file as its content type
        payload: dict[str, Any] = {
            "filename": filename,
            "purpose": purpose,
            "bytes": bytes,
            "mime_type": mime_type,
        }
        seconds = validate_expires_after_s(expires_after_s)
        if seconds is not None:
            payload["expires_after"] = {"anchor": "created_at", "seconds": seconds}
        return Operation(RequestSpec("POST", self.profile.path("uploads"), json=payload), Upload.from_dict)

    def add_upload_part(self, upload_id: str, data: BodyInput) -> Operation[UploadPart]:
        """``POST /uploads/{upload_id}/parts``: ``data`` is bytes, a binary file object or a :class:`FileRange`."""
        self.profile.require_uploads()
        path = self.profile.path("uploads", require_id(upload_id, "upload_id"), "parts")
        body = MultipartBody([], "data", "part", as_body_source(data))
        return Operation(RequestSpec("POST", path, body=body), UploadPart.from_dict)

    def complete_upload(
        self, upload_id: str, part_ids: Sequence[str], md5: str | None = None
    ) -> Operation[Upload]:
        """``POST /uploads/{upload_id}/complete``: ``part_ids`` in file order; the result carries ``file``."""
        self.profile.require_uploads()
        if isinstance(part_ids, str):
            raise TypeError("part_ids must be a list of part ids in file order, not a string")
        payload: dict[str, Any] = {"part_ids": list(part_ids)}
        if md5:
            payload["md5"] = md5
        path = self.profile.path("uploads", require_id(upload_id, "upload_id"), "complete")
        return Operation(RequestSpec("POST", path, json=payload), Upload.from_dict)

    def cancel_upload(self, upload_id: str) -> Operation[Upload]:
        """``POST /uploads/{upload_id}/cancel``."""
        self.profile.require_uploads()
        path = self.profile.path("uploads", require_id(upload_id, "upload_id"), "cancel")
        return Operation(RequestSpec("POST", path), Upload.from_dict)

    # -- batches -----------------------------------------------------------------------------

    def _batches(self, *segments: str) -> str:
        self.profile.require_batches()
        return self.profile.path(*self.profile.batches_path, *segments)

    def create_batch(
        self,
        input_file_id: str,
        endpoint: str,
        *,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        output_expires_after_s: int | None = None,
    ) -> Operation[Batch]:
        """``POST /batches``: run every request of the file ``input_file_id`` (purpose ``batch``).

        :param endpoint: the endpoint of every request of the file, e.g. ``/v1/chat/completions``.
        :param completion_window: ``24h``, the only window the API offers.
        :param metadata: up to 16 string pairs (keys up to 64 characters, values up to 512).
        :param output_expires_after_s: the output and error files expire this long after they
            are created (3600 to 2592000 s); ``None``: the server's default.
        """
        path = self._batches()
        require_id(input_file_id, "input_file_id")
        self.profile.require_batch_endpoint(endpoint)
        payload: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": validate_completion_window(completion_window),
        }
        checked = validate_metadata(metadata)
        if checked is not None:
            payload["metadata"] = checked
        seconds = validate_expires_after_s(output_expires_after_s, "output_expires_after_s")
        if seconds is not None:
            payload["output_expires_after"] = {"anchor": "created_at", "seconds": seconds}
        return Operation(RequestSpec("POST", path, json=payload), Batch.from_dict)

    def retrieve_batch(self, batch_id: str) -> Operation[Batch]:
        """``GET /batches/{batch_id}``."""
        return Operation(RequestSpec("GET", self._batches(require_id(batch_id, "batch_id"))), Batch.from_dict)

    def list_batches(self, *, after: str | None = None, limit: int | None = None) -> Operation[BatchList]:
        """``GET /batches``: one page, newest first (``limit`` 1 to 100, the server's default 20)."""
        path = self._batches()
        if limit is not None and not 1 <= limit <= BATCHES_LIST_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {BATCHES_LIST_LIMIT_MAX}, got {limit}")
        params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        return Operation(RequestSpec("GET", path, params=params), BatchList.from_dict)

    def cancel_batch(self, batch_id: str) -> Operation[Batch]:
        """``POST /batches/{batch_id}/cancel``: the batch goes ``cancelling``, then ``cancelled``."""
        path = self._batches(require_id(batch_id, "batch_id"), "cancel")
        return Operation(RequestSpec("POST", path), Batch.from_dict)


#: The name this table had before the split; kept for imports from ``api.client``.
Endpoints = Operations
