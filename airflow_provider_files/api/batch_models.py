"""Typed results of the Batches API.

Like the file objects, each batch keeps the server's whole JSON in ``raw`` (unknown fields
survive ``to_dict()``), tolerates the fields gateways leave out, and keeps a status it does not
know as the plain string the server sent, so a new status never breaks a poll loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_files.api.errors import UnexpectedResponseError
from airflow_provider_files.api.models import (
    _int_or_none,
    _page_fields,
    _require_id,
    _require_mapping,
    _str_or_none,
)


class BatchStatus(str, Enum):
    """The statuses of a batch, in the order a batch normally goes through them."""

    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


#: Statuses after which a batch changes no more.
TERMINAL_BATCH_STATUSES: frozenset[str] = frozenset(
    s.value for s in (BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)
)

_TIMESTAMPS = (
    "created_at",
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
    "expires_at",
)


def _count(value: Any) -> int:
    number = _int_or_none(value)
    return 0 if number is None else number


@dataclass(frozen=True)
class BatchRequestCounts:
    """How many requests of a batch there are, and how many have succeeded or failed so far.

    :param total: requests in the input file (0 until validated).
    :param completed: requests that succeeded.
    :param failed: requests that failed (each has a line in the error file).
    """

    total: int
    completed: int
    failed: int

    @classmethod
    def from_dict(cls, data: Any) -> BatchRequestCounts:
        data = _require_mapping(data, "batch request counts")
        return cls(_count(data.get("total")), _count(data.get("completed")), _count(data.get("failed")))

    def to_dict(self) -> dict[str, int]:
        return {"total": self.total, "completed": self.completed, "failed": self.failed}


@dataclass(frozen=True)
class BatchError:
    """A reason a batch failed as a whole (for instance a bad line of the input file).

    :param code: error code such as ``invalid_json_line``.
    :param message: what went wrong.
    :param param: the parameter at fault, if any.
    :param line: the line of the input file at fault (1-based), if any.
    """

    code: str | None
    message: str | None
    param: str | None
    line: int | None

    @classmethod
    def from_dict(cls, data: Any) -> BatchError:
        if not isinstance(data, Mapping):  # a gateway that reports errors as plain strings
            return cls(None, None if data is None else str(data), None, None)
        return cls(
            code=_str_or_none(data.get("code")),
            message=_str_or_none(data.get("message")),
            param=_str_or_none(data.get("param")),
            line=_int_or_none(data.get("line")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


def _errors(value: Any) -> tuple[BatchError, ...]:
    """``errors`` as OpenAI sends it (``{"object": "list", "data": [...]}``), a bare list, or null."""
    if isinstance(value, Mapping):
        value = value.get("data")
    if not isinstance(value, list):
        return ()
    return tuple(BatchError.from_dict(item) for item in value)


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items() if v is not None}


@dataclass(frozen=True)
class Batch:
    """A batch job (``object: batch``).

    :param id: batch id, opaque (``batch_...`` on OpenAI; LiteLLM may rewrite it).
    :param status: one of :class:`BatchStatus`'s values, or whatever new status the server sends.
    :param endpoint: the endpoint every request of the batch goes to.
    :param input_file_id: the file of requests ("" when a gateway's listing leaves it out).
    :param output_file_id: results of the requests that succeeded, once there are any.
    :param error_file_id: results of the requests that failed, once there are any.
    :param request_counts: progress; ``None`` when the server does not say.
    :param errors: why the batch failed as a whole (empty otherwise).
    :param usage: token usage as the server reports it (batches created after 2025-09-07).
    """

    id: str
    status: str
    endpoint: str = ""
    input_file_id: str = ""
    completion_window: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    expires_at: int | None = None
    request_counts: BatchRequestCounts | None = None
    errors: tuple[BatchError, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    model: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the batch has reached a status it will not leave."""
        return self.status in TERMINAL_BATCH_STATUSES

    @classmethod
    def from_dict(cls, data: Any) -> Batch:
        data = _require_mapping(data, "a batch")
        batch_id = _require_id(data, "batch")
        status = data.get("status")
        if not isinstance(status, str) or not status:
            raise UnexpectedResponseError(f"batch {batch_id} without a 'status' in the response")
        counts = data.get("request_counts")
        usage = data.get("usage")
        return cls(
            id=batch_id,
            status=status,
            endpoint=_str_or_none(data.get("endpoint")) or "",
            input_file_id=_str_or_none(data.get("input_file_id")) or "",
            completion_window=_str_or_none(data.get("completion_window")),
            output_file_id=_str_or_none(data.get("output_file_id")),
            error_file_id=_str_or_none(data.get("error_file_id")),
            request_counts=BatchRequestCounts.from_dict(counts) if isinstance(counts, Mapping) else None,
            errors=_errors(data.get("errors")),
            metadata=_metadata(data.get("metadata")),
            usage=dict(usage) if isinstance(usage, Mapping) else None,
            model=_str_or_none(data.get("model")),
            raw=dict(data),
            **{name: _int_or_none(data.get(name)) for name in _TIMESTAMPS},
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (for XCom and trigger events): the server's fields, ours on top."""
        known: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "status": self.status,
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            **{name: getattr(self, name) for name in _TIMESTAMPS},
            "request_counts": self.request_counts.to_dict() if self.request_counts else None,
            "errors": {"object": "list", "data": [e.to_dict() for e in self.errors]} if self.errors else None,
            "metadata": dict(self.metadata),
            "usage": self.usage,
            "model": self.model,
        }
        return {**self.raw, **known}


@dataclass(frozen=True)
class BatchList:
    """One page of ``GET /batches``.

    :param data: the batches of this page, newest first.
    :param has_more: whether another page follows (``after=last_id``).
    """

    data: list[Batch]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> BatchList:
        return cls(*_page_fields(data, "batch list", Batch.from_dict))
