"""Typed results of the Files and Uploads API.

Each object keeps the server's whole JSON in ``raw`` (so unknown fields survive) and
tolerates missing optional fields: gateways drop ``object``, ``status`` and more.
``to_dict()`` gives plain JSON data, fit for XCom and trigger events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, TypeVar

from airflow_provider_files.api.errors import UnexpectedResponseError


class FileStatus(str, Enum):
    """File ``status`` (deprecated by OpenAI but still sent; Azure adds its own values)."""

    UPLOADED = "uploaded"
    PROCESSED = "processed"
    ERROR = "error"
    # Azure OpenAI extras
    PENDING = "pending"
    RUNNING = "running"
    DELETING = "deleting"
    DELETED = "deleted"


class UploadStatus(str, Enum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def _require_mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise UnexpectedResponseError(f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def _require_id(data: Mapping[str, Any], what: str) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not value:
        # Quoted whole: the clients redact credentials a server echoed, then shorten the message.
        raise UnexpectedResponseError(f"{what} without an 'id' in the response: {dict(data)}")
    return value


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_ItemT = TypeVar("_ItemT", bound=_HasId)


def _page_fields(
    data: Any, what: str, parse_item: Callable[[Any], _ItemT]
) -> tuple[list[_ItemT], bool, str | None, str | None]:
    """``(data, has_more, first_id, last_id)`` of one page of a list endpoint; a server that sends
    no ``first_id``/``last_id`` gets the ids of the page's first and last items."""
    data = _require_mapping(data, f"a {what}")
    raw_items = data.get("data")
    if not isinstance(raw_items, list):
        raise UnexpectedResponseError(f"{what} without a 'data' array")
    items = [parse_item(item) for item in raw_items]
    return (
        items,
        data.get("has_more") is True,
        _str_or_none(data.get("first_id")) or (items[0].id if items else None),
        _str_or_none(data.get("last_id")) or (items[-1].id if items else None),
    )


@dataclass(frozen=True)
class FileObject:
    """A file stored by the API (``object: file``).

    :param id: file id, opaque (``file-...`` on OpenAI; gateways may rewrite it).
    :param bytes: size in bytes; ``None`` when the server does not say (Azure v1 may send null).
    :param status: ``uploaded``/``processed``/``error`` (deprecated field), Azure extras, or ``None``.
    """

    id: str
    bytes: int | None = None
    created_at: int | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    status_details: str | None = None
    expires_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> FileObject:
        data = _require_mapping(data, "a file")
        return cls(
            id=_require_id(data, "file"),
            bytes=_int_or_none(data.get("bytes")),
            created_at=_int_or_none(data.get("created_at")),
            filename=_str_or_none(data.get("filename")),
            purpose=_str_or_none(data.get("purpose")),
            status=_str_or_none(data.get("status")),
            status_details=_str_or_none(data.get("status_details")),
            expires_at=_int_or_none(data.get("expires_at")),
            raw=dict(data),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "status_details": self.status_details,
            "expires_at": self.expires_at,
        }
        return {**self.raw, **known}


@dataclass(frozen=True)
class FileList:
    """One page of ``GET /files``. ``has_more`` is False when the server does not paginate."""

    data: list[FileObject]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> FileList:
        return cls(*_page_fields(data, "file list", FileObject.from_dict))


@dataclass(frozen=True)
class FileDeleted:
    id: str
    deleted: bool

    @classmethod
    def from_dict(cls, data: Any) -> FileDeleted:
        data = _require_mapping(data, "a delete result")
        return cls(id=_require_id(data, "delete result"), deleted=data.get("deleted") is True)


@dataclass(frozen=True)
class Upload:
    """An upload (``object: upload``); ``file`` is set once it is completed."""

    id: str
    status: str | None = None
    bytes: int | None = None
    filename: str | None = None
    purpose: str | None = None
    created_at: int | None = None
    expires_at: int | None = None
    file: FileObject | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> Upload:
        data = _require_mapping(data, "an upload")
        file_data = data.get("file")
        return cls(
            id=_require_id(data, "upload"),
            status=_str_or_none(data.get("status")),
            bytes=_int_or_none(data.get("bytes")),
            filename=_str_or_none(data.get("filename")),
            purpose=_str_or_none(data.get("purpose")),
            created_at=_int_or_none(data.get("created_at")),
            expires_at=_int_or_none(data.get("expires_at")),
            file=FileObject.from_dict(file_data) if isinstance(file_data, Mapping) else None,
            raw=dict(data),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.raw,
            "id": self.id,
            "object": "upload",
            "status": self.status,
            "bytes": self.bytes,
            "filename": self.filename,
            "purpose": self.purpose,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "file": self.file.to_dict() if self.file else None,
        }


@dataclass(frozen=True)
class UploadPart:
    """One part of an upload (``object: upload.part``)."""

    id: str
    upload_id: str | None = None
    created_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> UploadPart:
        data = _require_mapping(data, "an upload part")
        return cls(
            id=_require_id(data, "upload part"),
            upload_id=_str_or_none(data.get("upload_id")),
            created_at=_int_or_none(data.get("created_at")),
            raw=dict(data),
        )
