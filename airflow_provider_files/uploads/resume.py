"""The resume decision of a chunked upload: pure, from the checkpoint, the source and server facts.

Given what a checkpoint recorded, what the source is now and what the server says, decide
whether to resume the pending upload, hand on the file it produced, or start a new upload
(and why, and whether the old upload should be cancelled). No I/O here: the engine gathers the
facts and carries out the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_files.api.models import FileObject, Upload
from airflow_provider_files.uploads.checkpoint import CheckpointError, CheckpointState

# A pending upload that expires sooner than this is not worth resuming.
RESUME_EXPIRY_MARGIN_S = 120.0
# OpenAI's lifetime of a pending upload, used when the server does not say.
UPLOAD_LIFETIME_S = 3600.0


@dataclass(frozen=True)
class ResumeDecision:
    """What to do with a checkpoint.

    :param action: ``new`` (no checkpoint), ``resume`` the pending upload, ``reuse_file`` (the
        checkpoint names a finished file: check it on the server), or ``restart`` with a new upload.
    :param state: the checkpoint to resume or whose file to reuse.
    :param reason: why the checkpoint is not used (``restart``).
    :param cancel_upload_id: the old upload to cancel on ``restart``, when it may still be pending
        on this API.
    """

    action: Literal["new", "resume", "reuse_file", "restart"]
    state: CheckpointState | None = None
    reason: str | None = None
    cancel_upload_id: str | None = None


def decide_resume(
    raw: Mapping[str, Any] | None,
    *,
    fingerprint: str,
    size: int,
    filename: str,
    purpose: str,
    base_url: str,
    max_part_size: int,
    now: float,
) -> ResumeDecision:
    """Decide from a loaded checkpoint (``raw``) and the upload about to run.

    :param raw: the checkpoint as loaded (``None``: there is none).
    :param fingerprint: the source's fingerprint now.
    :param size: the source's size now.
    :param filename: filename given to the API.
    :param purpose: purpose given to the API.
    :param base_url: the API this run talks to.
    :param max_part_size: the largest part size a checkpoint may record.
    :param now: the time (unix seconds).
    """
    if raw is None:
        return ResumeDecision("new")
    try:
        state = CheckpointState.from_dict(raw)
    except CheckpointError as exc:
        return ResumeDecision("restart", reason=f"the checkpoint cannot be used ({exc})")
    reason: str | None = None
    if state.fingerprint != fingerprint or state.bytes != size:
        reason = f"the source changed since the checkpoint was written (upload {state.upload_id})"
    elif state.filename != filename or state.purpose != purpose:
        reason = (
            f"the checkpoint is for filename {state.filename!r} with purpose {state.purpose!r}, "
            f"not {filename!r} with purpose {purpose!r}"
        )
    elif state.base_url and state.base_url != base_url:
        reason = f"the checkpoint belongs to another API ({state.base_url})"
    elif state.file is None and not 0 < state.part_size <= max_part_size:
        reason = f"the checkpoint has an invalid part size {state.part_size}"
    cancellable = state.file is None
    if reason is None and state.file is None:
        left_s = (state.expires_at or state.created_at + UPLOAD_LIFETIME_S) - now
        if left_s < RESUME_EXPIRY_MARGIN_S:
            reason = (
                f"upload {state.upload_id} has expired"
                if left_s <= 0
                else f"upload {state.upload_id} expires in {left_s:.0f}s, too soon to resume"
            )
            cancellable = left_s > 0
    if reason is not None:
        cancel = cancellable and state.base_url in ("", base_url)
        return ResumeDecision("restart", reason=reason, cancel_upload_id=state.upload_id if cancel else None)
    return ResumeDecision("reuse_file" if state.file is not None else "resume", state=state)


def recorded_file_problem(file_id: str, current: FileObject | None, size: int) -> str | None:
    """Why the file a checkpoint recorded cannot be handed on (``None``: it can).

    :param file_id: the id the checkpoint recorded.
    :param current: the file as the server has it now (``None``: not found).
    :param size: the source's size.
    """
    if current is None:
        return f"file {file_id} recorded in the checkpoint no longer exists"
    if current.bytes is not None and current.bytes != size:
        return f"file {file_id} recorded in the checkpoint has {current.bytes} bytes, not {size}"
    return None


def upload_expires_at(upload: Upload, started_at: float) -> float:
    """When a pending upload expires: as the server says, else its lifetime after creation."""
    if upload.expires_at is not None:
        return float(upload.expires_at)
    if upload.created_at is not None:
        return upload.created_at + UPLOAD_LIFETIME_S
    return started_at + UPLOAD_LIFETIME_S
