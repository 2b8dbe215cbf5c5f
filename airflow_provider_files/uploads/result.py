"""What a chunked upload produced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_files.api.models import FileObject
from airflow_provider_files.uploads.checkpoint import CheckpointState


@dataclass(frozen=True)
class UploadResult:
    """What an upload produced.

    :param file: the file created (or found again) on the server.
    :param upload_id: the Upload it came from (``None`` if unknown).
    :param md5: hex md5 of the source ("" when md5 was not computed).
    :param parts_total: parts in the upload.
    :param parts_sent: parts sent by this run.
    :param parts_reused: parts acknowledged by an earlier run and not sent again.
    :param bytes_sent: bytes of the parts sent by this run (retries not counted twice).
    :param resumed: this run continued an upload begun by an earlier one.
    :param reused_file: the checkpoint named a complete file that still exists; nothing was sent.
    :param elapsed_s: duration of this run.
    :param restart_reason: why a checkpoint was not resumed (source changed, upload expired ...).
    """

    file: FileObject
    upload_id: str | None
    md5: str
    parts_total: int
    parts_sent: int
    parts_reused: int
    bytes_sent: int
    resumed: bool
    reused_file: bool
    elapsed_s: float
    restart_reason: str | None = None

    @classmethod
    def of_reused_file(
        cls, file: FileObject, state: CheckpointState, parts_total: int, elapsed_s: float
    ) -> UploadResult:
        """The result when the checkpoint named a complete file that still exists."""
        return cls(
            file=file,
            upload_id=state.upload_id,
            md5=state.md5 or "",
            parts_total=parts_total,
            parts_sent=0,
            parts_reused=parts_total,
            bytes_sent=0,
            resumed=False,
            reused_file=True,
            elapsed_s=elapsed_s,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file.to_dict(),
            "upload_id": self.upload_id,
            "md5": self.md5,
            "parts_total": self.parts_total,
            "parts_sent": self.parts_sent,
            "parts_reused": self.parts_reused,
            "bytes_sent": self.bytes_sent,
            "resumed": self.resumed,
            "reused_file": self.reused_file,
            "elapsed_s": self.elapsed_s,
            "restart_reason": self.restart_reason,
        }
