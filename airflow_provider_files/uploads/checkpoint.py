"""Where the engine records an upload's progress, so that a new process can resume it.

A checkpoint is a small JSON object (see :class:`CheckpointState`): the upload id, the part
size, the source fingerprint, the parts the server acknowledged, and once the upload is
complete the file object. It is rewritten after every acknowledged part.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

CHECKPOINT_KIND = "airflow-provider-files/upload-checkpoint"
CHECKPOINT_VERSION = 1
# The other two checkpoints: a single POST /files (see single.py), a sharded upload (manifest.py).
SINGLE_CHECKPOINT_KIND = "airflow-provider-files/single-request-checkpoint"
SPLIT_CHECKPOINT_KIND = "airflow-provider-files/split-checkpoint"
_KIND_NAMES = {
    CHECKPOINT_KIND: "an upload through the Uploads API",
    SINGLE_CHECKPOINT_KIND: "a single-request upload",
    SPLIT_CHECKPOINT_KIND: "a sharded upload",
}


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used (not a checkpoint, unreadable)."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Keeps one checkpoint (a JSON-able dict)."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None:
        """Replace the checkpoint; must be atomic (a crash leaves the old or the new one)."""
        ...

    def clear(self) -> None: ...


class JsonFileCheckpointStore:
    """A checkpoint in a local JSON file, replaced atomically (temporary file + rename).

    A file that exists but is not an upload checkpoint is never overwritten: loading it
    raises :class:`CheckpointError`, so a mistyped path cannot destroy someone's data.

    :param path: the checkpoint file; its directory is created when needed.
    :param fsync: flush each save to disk before the rename, so a checkpoint survives a
        machine crash as well as a killed process.
    :param kind: the kind of checkpoint kept (``CHECKPOINT_KIND``, the chunked engine's, or
        ``SINGLE_CHECKPOINT_KIND``); a file of another kind is refused as well.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = True, kind: str = CHECKPOINT_KIND
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.kind = kind

    def __repr__(self) -> str:
        return f"JsonFileCheckpointStore({str(self.path)!r})"

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"cannot read the checkpoint {self.path}: {exc}") from exc
        if not text.strip():
            return None
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(
                f"{self.path} is not an upload checkpoint (not JSON: {exc.msg}); refusing to overwrite it"
            ) from None
        if not isinstance(state, dict) or state.get("kind") != self.kind:
            other = state.get("kind") if isinstance(state, dict) else None
            if other in _KIND_NAMES:
                raise CheckpointError(
                    f"{self.path} is the checkpoint of {_KIND_NAMES[other]}, not of {_KIND_NAMES.get(self.kind, self.kind)}; "
                    f"refusing to overwrite it (use another path)"
                )
            raise CheckpointError(f"{self.path} is not an upload checkpoint; refusing to overwrite it")
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class MemoryCheckpointStore:
    """A checkpoint kept in memory (tests, or resuming within one process)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state = json.loads(json.dumps(state)) if state is not None else None
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.state)) if self.state is not None else None

    def save(self, state: dict[str, Any]) -> None:
        self.state = json.loads(json.dumps(state))
        self.saves += 1

    def clear(self) -> None:
        self.state = None


@dataclass
class CheckpointState:
    """The content of a checkpoint, typed.

    :param upload_id: the pending (or completed) upload.
    :param filename: filename given to the API.
    :param purpose: purpose given to the API.
    :param bytes: size of the source.
    :param part_size: bytes per part (the last part may be shorter).
    :param fingerprint: the source's fingerprint when the upload began.
    :param base_url: API the upload belongs to (no credentials).
    :param expires_at: when the pending upload expires (unix seconds), when known.
    :param created_at: when the upload was created (unix seconds, local clock).
    :param parts: acknowledged parts, part index -> part id.
    :param file: the file object once the upload is complete.
    :param md5: hex md5 of the source once known.
    """

    upload_id: str
    filename: str
    purpose: str
    bytes: int
    part_size: int
    fingerprint: str
    base_url: str
    expires_at: float | None
    created_at: float
    parts: dict[int, str] = field(default_factory=dict)
    file: dict[str, Any] | None = None
    md5: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "upload_id": self.upload_id,
            "filename": self.filename,
            "purpose": self.purpose,
            "bytes": self.bytes,
            "part_size": self.part_size,
            "fingerprint": self.fingerprint,
            "base_url": self.base_url,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "parts": {str(index): part_id for index, part_id in sorted(self.parts.items())},
            "file": self.file,
            "md5": self.md5,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointState:
        """Parse a saved checkpoint; raises :class:`CheckpointError` naming what is wrong."""
        if data.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint version {data.get('version')!r} is not the supported {CHECKPOINT_VERSION}"
            )
        try:
            parts = {int(index): str(part_id) for index, part_id in dict(data.get("parts") or {}).items()}
            expires_at = data.get("expires_at")
            file = data.get("file")
            return cls(
                upload_id=str(data["upload_id"]),
                filename=str(data["filename"]),
                purpose=str(data["purpose"]),
                bytes=int(data["bytes"]),
                part_size=int(data["part_size"]),
                fingerprint=str(data["fingerprint"]),
                base_url=str(data.get("base_url") or ""),
                expires_at=float(expires_at) if expires_at is not None else None,
                created_at=float(data.get("created_at") or 0),
                parts=parts,
                file=dict(file) if isinstance(file, Mapping) else None,
                md5=str(data["md5"]) if data.get("md5") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint is incomplete or malformed: {exc!r}") from None
