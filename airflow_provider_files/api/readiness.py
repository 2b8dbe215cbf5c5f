"""When is an uploaded file ready to feed a Batch job, and when is a batch done? One rule each,
shared by the sensors, the triggers and the hook's blocking waits (the poll schedule that drives
them is in :mod:`airflow_provider_files.api.polling`). No Airflow imports, no I/O.

The ``status`` field is deprecated by OpenAI but still sent by OpenAI and most gateways;
Azure adds ``pending``/``running``/``deleting``/``deleted``; some gateways send no status at all,
and then a file that can be retrieved (with the expected size, when one is known) is ready.
A ``404`` right after an upload happens on eventually consistent back ends, so a missing file is
only a failure once it has been missing for longer than a grace period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider_files.api.batch_models import Batch
from airflow_provider_files.api.models import FileObject, FileStatus

NOT_FOUND_GRACE_S = 60.0
# A failed batch can name thousands of bad lines; messages name the first few.
MAX_REPORTED_BATCH_ERRORS = 10

_READY_STATUSES = frozenset({FileStatus.PROCESSED.value})
_PENDING_STATUSES = frozenset({FileStatus.UPLOADED.value, FileStatus.PENDING.value, FileStatus.RUNNING.value})
_GONE_STATUSES = frozenset({FileStatus.DELETED.value, FileStatus.DELETING.value})


class ReadinessState(str, Enum):
    """Outcome of one check of one file."""

    READY = "ready"
    PENDING = "pending"
    FAILED = "failed"


class _Verdict:
    """What a verdict on a file and on a batch share: its state, read as two booleans."""

    state: ReadinessState

    @property
    def is_ready(self) -> bool:
        return self.state is ReadinessState.READY

    @property
    def is_failed(self) -> bool:
        return self.state is ReadinessState.FAILED


@dataclass(frozen=True)
class Readiness(_Verdict):
    """The verdict on one file.

    :param file_id: the file checked.
    :param state: ready, pending (check again later) or failed (waiting longer will not help).
    :param reason: why, in words fit for a log line or an exception message.
    :param file: the file object, when the server returned one.
    """

    file_id: str
    state: ReadinessState
    reason: str
    file: FileObject | None = None


def evaluate_file(
    file_id: str,
    file: FileObject | None,
    *,
    now: float,
    expected_bytes: int | None = None,
    first_seen_missing_at: float | None = None,
    not_found_grace_s: float = NOT_FOUND_GRACE_S,
) -> Readiness:
    """Decide whether one file is ready to feed a batch.

    :param file_id: the id that was asked for.
    :param file: the server's answer to ``GET /files/{id}``, or ``None`` after a 404.
    :param now: current time, unix seconds.
    :param expected_bytes: the size the uploader sent; checked only when the server gives no status.
    :param first_seen_missing_at: when this wait first got a 404 for the file (unix seconds);
        ``None`` means now.
    :param not_found_grace_s: how long a 404 is taken as "not visible yet" rather than "gone".
    """
    if file is None:
        missing_since = now if first_seen_missing_at is None else first_seen_missing_at
        missing_for_s = max(now - missing_since, 0.0)
        if missing_for_s < not_found_grace_s:
            return Readiness(
                file_id,
                ReadinessState.PENDING,
                f"file {file_id} not found yet (404 for {missing_for_s:.0f}s, "
                f"tolerated for {not_found_grace_s:g}s after an upload)",
            )
        return Readiness(
            file_id,
            ReadinessState.FAILED,
            f"file {file_id} not found (404 for {missing_for_s:.0f}s): it was deleted or has expired, "
            "or the id or the connection's base URL is wrong",
        )

    if file.expires_at is not None and file.expires_at <= now:
        return Readiness(
            file_id, ReadinessState.FAILED, f"file {file_id} expired at {file.expires_at} (unix time)", file
        )

    status = (file.status or "").strip().lower() or None
    if status == FileStatus.ERROR.value:
        details = file.status_details or "the server gave no status_details"
        return Readiness(file_id, ReadinessState.FAILED, f"file {file_id} failed processing: {details}", file)
    if status in _GONE_STATUSES:
        return Readiness(file_id, ReadinessState.FAILED, f"file {file_id} is {status}", file)
    if status in _READY_STATUSES:
        return Readiness(file_id, ReadinessState.READY, f"file {file_id} has status 'processed'", file)
    if status in _PENDING_STATUSES:
        return Readiness(
            file_id,
            ReadinessState.PENDING,
            f"file {file_id} has status {status!r}, not 'processed' yet",
            file,
        )
    if status is not None:
        return Readiness(
            file_id, ReadinessState.PENDING, f"file {file_id} has an unrecognised status {status!r}", file
        )

    # No status at all (some gateways): retrievable means ready, if the size is the one sent.
    if expected_bytes is not None and file.bytes is not None and file.bytes != expected_bytes:
        return Readiness(
            file_id,
            ReadinessState.PENDING,
            f"file {file_id} reports {file.bytes} bytes, expected {expected_bytes}",
            file,
        )
    return Readiness(
        file_id, ReadinessState.READY, f"file {file_id} is retrievable (no status reported)", file
    )


@dataclass(frozen=True)
class FileTarget:
    """A file to wait for: its id and, when the uploader said, its size.

    :param file_id: the id.
    :param expected_bytes: the size the uploader sent, or ``None``.
    """

    file_id: str
    expected_bytes: int | None = None


def parse_file_targets(value: Any, *, what: str = "file_id") -> tuple[list[FileTarget], bool]:
    """Turn a file id, a file dict (``FileObject.to_dict()``), or a list of either into targets.

    :return: the targets, and whether ``value`` was a single item (so results come back as one item).
    :raises TypeError: for any other shape, or an empty or non-string id.
    """
    if isinstance(value, (str, Mapping, FileObject)):
        return [_parse_one(value, what)], True
    if isinstance(value, (list, tuple)):
        if not value:
            raise TypeError(f"{what} is an empty list; give at least one file id")
        targets = [_parse_one(item, f"{what}[{index}]") for index, item in enumerate(value)]
        return targets, False
    raise TypeError(
        f"{what} must be a file id, a file dict with an 'id', or a list of those; "
        f"got {type(value).__name__}: {str(value)[:100]!r}"
    )


def _parse_one(item: Any, what: str) -> FileTarget:
    if isinstance(item, FileObject):
        return FileTarget(item.id, item.bytes)
    if isinstance(item, str):
        file_id = item.strip()
        if not file_id:
            raise TypeError(f"{what} is an empty string; give a file id")
        if file_id[0] in "{[" or any(c.isspace() for c in file_id):
            raise TypeError(
                f"{what} {file_id[:100]!r} is not a file id; if it is a rendered dict or list, pass the "
                "upstream task's output (an XComArg) instead of a Jinja string, or set "
                "render_template_as_native_obj=True on the DAG"
            )
        return FileTarget(file_id)
    if isinstance(item, Mapping):
        if item.get("object") == "upload":  # a completed Upload carries its file
            if not isinstance(item.get("file"), Mapping):
                raise TypeError(f"{what} is an upload without a file (not completed): {item.get('id')!r}")
            item = item["file"]
        raw_id = item.get("id")
        if not isinstance(raw_id, str) or not raw_id.strip():
            raise TypeError(f"{what} is a dict without a non-empty string 'id': {str(dict(item))[:100]!r}")
        size = item.get("bytes")
        expected = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        return FileTarget(raw_id.strip(), expected)
    raise TypeError(
        f"{what} must be a file id or a file dict, got {type(item).__name__}: {str(item)[:100]!r}"
    )


class ReadinessTracker:
    """Book-keeping for one wait on several files: which are ready, since when each is missing.

    Callers fetch each file of :meth:`unresolved` (``None`` for a 404), pass it to :meth:`record`,
    stop on the first failed verdict, and are done when :attr:`done` is true. Files found ready
    are not fetched again.

    :param targets: the files to wait for.
    :param not_found_grace_s: how long a 404 is tolerated, counted from the first 404 of a file.
    :param missing_since: first-404 times (unix seconds) already seen by an earlier part of the
        same wait (e.g. the sensor's poke before it deferred).
    :param default_missing_since: first-404 time assumed for a file with no entry, e.g. the start
        of a rescheduled sensor; ``None`` means the time of the 404.
    """

    def __init__(
        self,
        targets: list[FileTarget],
        *,
        not_found_grace_s: float = NOT_FOUND_GRACE_S,
        missing_since: Mapping[str, float] | None = None,
        default_missing_since: float | None = None,
    ) -> None:
        self.targets = list(targets)
        self.not_found_grace_s = not_found_grace_s
        self.missing_since: dict[str, float] = dict(missing_since or {})
        self.default_missing_since = default_missing_since
        self._ready: dict[str, FileObject] = {}
        self.last_verdicts: dict[str, Readiness] = {}

    def unresolved(self) -> list[FileTarget]:
        """Targets not yet found ready, in the given order."""
        return [target for target in self.targets if target.file_id not in self._ready]

    def record(self, target: FileTarget, file: FileObject | None, *, now: float) -> Readiness:
        """Judge one fetched file (``None`` after a 404) and remember the outcome."""
        if file is None:
            first_missing = self.missing_since.setdefault(
                target.file_id, now if self.default_missing_since is None else self.default_missing_since
            )
        else:
            first_missing = None
            self.missing_since.pop(target.file_id, None)
        verdict = evaluate_file(
            target.file_id,
            file,
            now=now,
            expected_bytes=target.expected_bytes,
            first_seen_missing_at=first_missing,
            not_found_grace_s=self.not_found_grace_s,
        )
        self.last_verdicts[target.file_id] = verdict
        if verdict.is_ready and verdict.file is not None:
            self._ready[target.file_id] = verdict.file
        return verdict

    @property
    def done(self) -> bool:
        return all(target.file_id in self._ready for target in self.targets)

    def ready_files(self) -> list[FileObject]:
        """The ready file objects, in target order (complete once :attr:`done`)."""
        return [self._ready[t.file_id] for t in self.targets if t.file_id in self._ready]

    def pending_summary(self) -> str:
        """One line on what is still awaited, for logs and timeout messages."""
        reasons = [
            self.last_verdicts[t.file_id].reason
            if t.file_id in self.last_verdicts
            else f"{t.file_id} not checked"
            for t in self.unresolved()
        ]
        ready = len(self.targets) - len(reasons)
        return f"{ready} of {len(self.targets)} file(s) ready; waiting for: " + "; ".join(reasons)


BATCH_STATUSES = frozenset(
    {"validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"}
)
BATCH_TERMINAL_STATUSES = frozenset({"failed", "completed", "expired", "cancelled"})


@dataclass(frozen=True)
class BatchVerdict(_Verdict):
    """The verdict on one batch.

    :param batch_id: the batch checked.
    :param state: ready (a target status is reached), pending, or failed (it ended elsewhere).
    :param reason: why, in words fit for a log line or an exception message.
    :param status: the status the server reported.
    :param batch: the batch, when judged from a whole answer (:meth:`BatchReadiness.judge`).
    """

    batch_id: str
    state: ReadinessState
    reason: str
    status: str | None
    batch: Batch | None = None


def batch_id_of(value: Any, *, what: str = "batch_id") -> str:
    """The id of a batch given as an id, a batch dict (``Batch.to_dict()``) or a :class:`Batch`.

    :raises TypeError: for any other shape, or an empty id.
    """
    if isinstance(value, Batch):
        return value.id
    if isinstance(value, Mapping):
        value = value.get("id")
        what = f"{what}['id']"
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{what} must be a batch id or a batch dict with an 'id', got {str(value)[:100]!r}")
    batch_id = value.strip()
    if batch_id[0] in "{[" or any(c.isspace() for c in batch_id):
        raise TypeError(
            f"{what} {batch_id[:100]!r} is not a batch id; if it is a rendered dict, pass the upstream "
            "task's output (an XComArg) instead of a Jinja string, or set "
            "render_template_as_native_obj=True on the DAG"
        )
    return batch_id


class BatchReadiness:
    """When is a batch done waiting for? When its status is one of ``targets``; a terminal status
    that is not a target (``failed``, ``expired``, ``cancelled`` by default) means it never will be.

    :param batch_id: the batch, named in the reasons.
    :param targets: statuses that end the wait successfully (default ``completed``).
    """

    def __init__(
        self, batch_id: str, *, targets: frozenset[str] | set[str] = frozenset({"completed"})
    ) -> None:
        unknown = set(targets) - BATCH_STATUSES
        if not targets or unknown:
            raise ValueError(
                f"targets must be batch statuses ({', '.join(sorted(BATCH_STATUSES))}), got {sorted(targets)}"
            )
        self.batch_id = batch_id
        self.targets = frozenset(targets)

    def evaluate(self, status: str | None, *, details: str | None = None) -> BatchVerdict:
        """Judge one ``GET /batches/{id}`` answer.

        :param status: the batch's ``status``.
        :param details: the server's errors in words (e.g. ``errors.data[].message``), for a failure.
        """
        normalized = (status or "").strip().lower() or None
        if normalized in self.targets:
            return BatchVerdict(
                self.batch_id, ReadinessState.READY, f"batch {self.batch_id} is {normalized}", normalized
            )
        if normalized in BATCH_TERMINAL_STATUSES:
            wanted = " or ".join(sorted(self.targets))
            reason = f"batch {self.batch_id} ended {normalized}, not {wanted}"
            if details:
                reason += f": {details}"
            return BatchVerdict(self.batch_id, ReadinessState.FAILED, reason, normalized)
        if normalized in BATCH_STATUSES:
            return BatchVerdict(
                self.batch_id, ReadinessState.PENDING, f"batch {self.batch_id} is {normalized}", normalized
            )
        return BatchVerdict(
            self.batch_id,
            ReadinessState.PENDING,
            f"batch {self.batch_id} has an unrecognised status {status!r}",
            normalized,
        )

    def judge(self, batch: Batch) -> BatchVerdict:
        """Judge a whole batch: a failure names its errors and request counts, a pending one its progress."""
        verdict = self.evaluate(batch.status, details=describe_batch_outcome(batch) or None)
        reason = verdict.reason
        if not verdict.is_failed and batch.request_counts is not None and batch.request_counts.total:
            reason += f" ({describe_request_counts(batch)})"
        return BatchVerdict(verdict.batch_id, verdict.state, reason, verdict.status, batch)


def describe_request_counts(batch: Batch) -> str:
    """``"7 of 10 requests completed, 1 failed"``, or ``""`` when the server gave no counts."""
    counts = batch.request_counts
    if counts is None:
        return ""
    return f"{counts.completed} of {counts.total} requests completed, {counts.failed} failed"


def describe_batch_outcome(batch: Batch, *, max_errors: int = MAX_REPORTED_BATCH_ERRORS) -> str:
    """The batch's ``errors`` (line, code, message; the first ``max_errors``) and its request counts."""
    parts: list[str] = []
    if batch.errors:
        shown = []
        for error in batch.errors[:max_errors]:
            where = f"line {error.line} " if error.line is not None else ""
            shown.append(f"{where}{error.code or 'error'}: {error.message or 'no message'}")
        more = len(batch.errors) - len(shown)
        parts.append(
            f"{len(batch.errors)} error(s): " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        )
    counts = describe_request_counts(batch)
    if counts:
        parts.append(counts)
    return "; ".join(parts)
