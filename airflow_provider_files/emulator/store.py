"""The emulator's state: files, uploads and parts, kept in memory with their bytes on disk.

Bytes are stored under generated ids only (``files/file-...``, ``parts/part_...``), never
under a name the client chose. A file made from an upload keeps its parts as its segments
(in ``part_ids`` order) instead of copying them, so completing a large upload is cheap. Parts and
their running md5 are in :mod:`.parts`; batches in :mod:`.batches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_files.emulator.batch_check import check_batch_file
from airflow_provider_files.emulator.config import BATCH_FILE_DEFAULT_EXPIRY_S, EmulatorConfig
from airflow_provider_files.emulator.errors import ApiError, bad_request, not_found
from airflow_provider_files.emulator.parts import PartAttempt, SpeculativeHasher, hash_onto, hash_segments

FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
UPLOAD_PURPOSES = FILE_PURPOSES


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


@dataclass
class StoredFile:
    """A file object and where its bytes are."""

    id: str
    filename: str
    purpose: str
    size_bytes: int
    created_at: int
    sequence: int
    segments: list[Path]
    processed_after: float
    expires_at: int | None = None
    md5: str | None = None
    check_running: bool = False
    check_error: str | None = None


@dataclass
class Upload:
    """An upload and its parts."""

    id: str
    filename: str
    purpose: str
    size_bytes: int
    mime_type: str
    created_at: int
    expires_at: float
    file_expires_after_s: int | None
    status: str = "pending"
    file_id: str | None = None
    parts: dict[str, PartAttempt] = field(default_factory=dict)
    received_bytes: int = 0
    hasher: SpeculativeHasher = field(default_factory=SpeculativeHasher)
    md5_bytes_reread: int = 0
    # at complete: bytes the in-flight hash still had to take in, and the seconds the check took
    md5_bytes_hashed_at_complete: int = 0
    md5_complete_s: float = 0.0
    md5_parts_in_order_at_complete: int = 0


class Store:
    """Files and uploads of one emulator process.

    :param config: the emulator's settings (read at each operation, so runtime changes apply).
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock_offset_s = 0.0
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}
        # (created_at, sequence) of every file ever created, so an `after` cursor naming a file
        # deleted meanwhile still marks a place in the list.
        self._positions: dict[str, tuple[int, int]] = {}
        self._sequence = itertools.count()
        self._background: set[asyncio.Task[None]] = set()
        # every path this process created and has not deleted yet: reset deletes these only,
        # never other files a shared data directory may hold
        self._owned: set[Path] = set()

    # -- time and paths ---------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset_s

    @property
    def files_dir(self) -> Path:
        return self.config.data_dir / "files"

    @property
    def parts_dir(self) -> Path:
        return self.config.data_dir / "parts"

    def prepare(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.parts_dir.mkdir(parents=True, exist_ok=True)

    # -- files --------------------------------------------------------------------------------------

    def new_file_slot(self) -> tuple[str, Path]:
        file_id = _new_id("file-")
        path = self.files_dir / file_id
        self._owned.add(path)
        return file_id, path

    def release_slot(self, path: Path) -> None:
        """Delete a slot of :meth:`new_file_slot` that did not become a file."""
        self._unlink(path)

    def _unlink(self, path: Path) -> None:
        self._owned.discard(path)
        with contextlib.suppress(OSError):
            path.unlink()

    def add_file(
        self,
        file_id: str,
        *,
        filename: str,
        purpose: str,
        size_bytes: int,
        segments: list[Path],
        expires_after_s: int | None,
        md5: str | None = None,
    ) -> StoredFile:
        now = self.now()
        created_at = int(now)
        if expires_after_s is None and purpose == "batch":
            expires_after_s = BATCH_FILE_DEFAULT_EXPIRY_S
        stored = StoredFile(
            id=file_id,
            filename=filename,
            purpose=purpose,
            size_bytes=size_bytes,
            created_at=created_at,
            sequence=next(self._sequence),
            segments=segments,
            processed_after=now + self.config.processing_delay_s,
            expires_at=created_at + expires_after_s if expires_after_s is not None else None,
            md5=md5,
        )
        self.files[file_id] = stored
        self._positions[file_id] = (stored.created_at, stored.sequence)
        if purpose == "batch" and self.config.validate_batch:
            stored.check_running = True
            task = asyncio.get_running_loop().create_task(self._check_batch(stored))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return stored

    async def _check_batch(self, stored: StoredFile) -> None:
        try:
            stored.check_error = await asyncio.to_thread(
                check_batch_file, list(stored.segments), stored.size_bytes
            )
        except OSError:
            stored.check_error = None  # deleted while being checked
        finally:
            stored.check_running = False

    def get_file(self, file_id: str) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is not None and stored.expires_at is not None and self.now() >= stored.expires_at:
            self._remove_file(stored)
            stored = None
        if stored is None:
            raise not_found("File", file_id, "file_id")
        return stored

    def delete_file(self, file_id: str) -> StoredFile:
        stored = self.get_file(file_id)
        self._remove_file(stored)
        return stored

    def _remove_file(self, stored: StoredFile) -> None:
        self.files.pop(stored.id, None)
        for segment in stored.segments:
            self._unlink(segment)

    def list_files(
        self, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> tuple[list[StoredFile], bool]:
        now = self.now()
        candidates = [
            stored
            for stored in self.files.values()
            if (purpose is None or stored.purpose == purpose)
            and (stored.expires_at is None or now < stored.expires_at)
        ]
        descending = order == "desc"
        candidates.sort(key=lambda s: (s.created_at, s.sequence), reverse=descending)
        if after is not None:
            position = self._positions.get(after)
            if position is None:
                raise bad_request(f"No such File object: {after} (the 'after' cursor)", param="after")
            if descending:
                candidates = [s for s in candidates if (s.created_at, s.sequence) < position]
            else:
                candidates = [s for s in candidates if (s.created_at, s.sequence) > position]
        return candidates[:limit], len(candidates) > limit

    def file_status(self, stored: StoredFile) -> tuple[str, str | None]:
        if stored.check_running or self.now() < stored.processed_after:
            return "uploaded", None
        if stored.check_error is not None:
            return "error", stored.check_error
        return "processed", None

    def file_object(self, stored: StoredFile) -> dict[str, object]:
        status, details = self.file_status(stored)
        return {
            "id": stored.id,
            "object": "file",
            "bytes": stored.size_bytes,
            "created_at": stored.created_at,
            "expires_at": stored.expires_at,
            "filename": stored.filename,
            "purpose": stored.purpose,
            "status": status,
            "status_details": details,
        }

    async def file_md5(self, file_id: str) -> str:
        stored = self.get_file(file_id)
        if stored.md5 is None:
            stored.md5 = await asyncio.to_thread(hash_segments, list(stored.segments))
        return stored.md5

    # -- uploads ------------------------------------------------------------------------------------

    def create_upload(
        self,
        *,
        filename: str,
        purpose: str,
        size_bytes: int,
        mime_type: str,
        file_expires_after_s: int | None,
    ) -> Upload:
        now = self.now()
        upload = Upload(
            id=_new_id("upload_"),
            filename=filename,
            purpose=purpose,
            size_bytes=size_bytes,
            mime_type=mime_type,
            created_at=int(now),
            expires_at=now + self.config.upload_expiry_s,
            file_expires_after_s=file_expires_after_s,
        )
        self.uploads[upload.id] = upload
        return upload

    def get_upload(self, upload_id: str) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise not_found("Upload", upload_id, "upload_id")
        if upload.status == "pending" and self.now() >= upload.expires_at:
            self._expire(upload)
        return upload

    def expire_upload(self, upload_id: str) -> Upload:
        upload = self.get_upload(upload_id)
        if upload.status == "pending":
            self._expire(upload)
        return upload

    def _expire(self, upload: Upload) -> None:
        upload.status = "expired"
        self._drop_parts(upload, keep=())

    def _drop_parts(self, upload: Upload, keep: Iterable[str]) -> None:
        upload.hasher.stop()
        kept = set(keep)
        for part in upload.parts.values():
            if part.id not in kept:
                self._unlink(part.path)

    @staticmethod
    def require_pending(upload: Upload, action: str) -> None:
        if upload.status != "pending":
            raise bad_request(
                f"Cannot {action} upload {upload.id}: its status is {upload.status!r}, not 'pending'.",
                param="upload_id",
            )

    def begin_part(self, upload: Upload) -> PartAttempt:
        self.require_pending(upload, "add a part to")
        part_id = _new_id("part_")
        attempt = PartAttempt(id=part_id, path=self.parts_dir / part_id)
        self._owned.add(attempt.path)
        upload.hasher.add(attempt)
        return attempt

    def finish_part(self, upload: Upload, attempt: PartAttempt, size_bytes: int) -> PartAttempt:
        try:
            upload = self.get_upload(upload.id)
            self.require_pending(upload, "add a part to")
            if upload.received_bytes + size_bytes > self.config.max_upload_bytes:
                raise ApiError(
                    413,
                    f"Upload {upload.id} would exceed the limit of {self.config.max_upload_bytes} bytes "
                    "with this part.",
                    param="data",
                )
        except ApiError:
            self.fail_part(attempt)
            raise
        attempt.size_bytes = size_bytes
        attempt.created_at = int(self.now())
        upload.parts[attempt.id] = attempt
        upload.received_bytes += size_bytes
        attempt.finish(succeeded=True)
        return attempt

    def fail_part(self, attempt: PartAttempt) -> None:
        self._unlink(attempt.path)
        attempt.finish(succeeded=False)

    async def complete_upload(self, upload: Upload, part_ids: list[str], md5: str | None) -> StoredFile:
        self.require_pending(upload, "complete")
        seen: set[str] = set()
        for part_id in part_ids:
            if part_id in seen:
                raise bad_request(f"Part {part_id} is listed twice in part_ids.", param="part_ids")
            if part_id not in upload.parts:
                raise bad_request(f"Part {part_id} does not belong to upload {upload.id}.", param="part_ids")
            seen.add(part_id)
        total = sum(upload.parts[part_id].size_bytes for part_id in part_ids)
        if total != upload.size_bytes:
            raise bad_request(
                f"The parts listed in part_ids add up to {total} bytes, but upload {upload.id} was "
                f"created with bytes={upload.size_bytes}.",
                param="bytes",
            )
        segments = [upload.parts[part_id].path for part_id in part_ids]
        digest: str | None = None
        if md5 is not None:
            digest = await self._verify_md5(upload, part_ids, segments, md5)
        upload.status = "completed"
        self._drop_parts(upload, keep=part_ids)
        file_id = _new_id("file-")
        stored = self.add_file(
            file_id,
            filename=upload.filename,
            purpose=upload.purpose,
            size_bytes=total,
            segments=segments,
            expires_after_s=upload.file_expires_after_s,
            md5=digest,
        )
        upload.file_id = file_id
        return stored

    async def _verify_md5(self, upload: Upload, part_ids: list[str], segments: list[Path], md5: str) -> str:
        """The md5 of the listed parts, checked against ``md5``: taken from the in-flight hash
        where the order matches, re-reading only the parts from the first difference on."""
        started = time.monotonic()
        hashed_before = upload.hasher.bytes_hashed
        matched, state = await upload.hasher.prefix_state(part_ids)
        upload.md5_parts_in_order_at_complete = matched
        upload.md5_bytes_hashed_at_complete += upload.hasher.bytes_hashed - hashed_before
        rest = segments[matched:]
        try:
            if rest:
                digest, read_bytes = await asyncio.to_thread(hash_onto, state, rest)
                upload.md5_bytes_reread += read_bytes
            else:
                digest = state.hexdigest()
        except OSError:
            # parts deleted under us: the upload was cancelled, expired or reset meanwhile
            self.get_upload(upload.id)
            self.require_pending(upload, "complete")
            raise ApiError(
                409,
                f"The parts of upload {upload.id} changed while it was being completed; retry.",
                param="part_ids",
            ) from None
        upload.md5_complete_s += time.monotonic() - started
        # the upload may have been completed or cancelled while hashing
        self.require_pending(upload, "complete")
        if digest != md5.strip().lower():
            raise bad_request(
                f"The md5 checksum of the uploaded parts is {digest}, not the {md5!r} given.",
                param="md5",
            )
        return digest

    def cancel_upload(self, upload: Upload) -> Upload:
        if upload.status == "cancelled":
            return upload
        self.require_pending(upload, "cancel")
        upload.status = "cancelled"
        self._drop_parts(upload, keep=())
        return upload

    def upload_object(self, upload: Upload) -> dict[str, object]:
        file_object = None
        if upload.file_id is not None:
            stored = self.files.get(upload.file_id)
            if stored is not None:
                file_object = self.file_object(stored)
        return {
            "id": upload.id,
            "object": "upload",
            "bytes": upload.size_bytes,
            "created_at": upload.created_at,
            "expires_at": int(upload.expires_at),
            "filename": upload.filename,
            "purpose": upload.purpose,
            "status": upload.status,
            "file": file_object,
        }

    # -- introspection ------------------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        for upload_id in list(self.uploads):
            self.get_upload(upload_id)  # applies lazy expiry
        return {
            "file_count": len(self.files),
            "upload_count": len(self.uploads),
            "files": {
                stored.id: {
                    "bytes": stored.size_bytes,
                    "filename": stored.filename,
                    "purpose": stored.purpose,
                    "status": self.file_status(stored)[0],
                    "md5": stored.md5,
                    "segments": len(stored.segments),
                }
                for stored in self.files.values()
            },
            "uploads": {
                upload.id: {
                    "status": upload.status,
                    "bytes": upload.size_bytes,
                    "bytes_received": upload.received_bytes,
                    "part_count": len(upload.parts),
                    "file_id": upload.file_id,
                    "md5_bytes_hashed_in_flight": upload.hasher.bytes_hashed,
                    "md5_bytes_reread_at_complete": upload.md5_bytes_reread,
                    "md5_bytes_hashed_at_complete": upload.md5_bytes_hashed_at_complete,
                    "md5_complete_s": round(upload.md5_complete_s, 4),
                    "md5_parts_in_order_at_complete": upload.md5_parts_in_order_at_complete,
                }
                for upload in self.uploads.values()
            },
        }

    def reset(self) -> None:
        for upload in self.uploads.values():
            upload.hasher.stop()
        self.files.clear()
        self.uploads.clear()
        self._positions.clear()
        self.clock_offset_s = 0.0
        for path in list(self._owned):
            self._unlink(path)
        self.prepare()
