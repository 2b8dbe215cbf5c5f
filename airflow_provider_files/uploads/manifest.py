"""The manifest of a sharded (split) upload: which files the shards of one source became.

A source split into shards is uploaded shard by shard, each with its own checkpoint; once
all are uploaded the manifest records their files. A rerun with the same source content and
split settings hands those files on again if every one of them is still usable, and otherwise
splits again, each shard resuming from its own checkpoint (shards are rewritten on every run,
so their fingerprint is derived from the source's, see :class:`ShardSource`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_files.api.bodies import BodySource
from airflow_provider_files.api.errors import NotFoundError
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.checkpoint import SPLIT_CHECKPOINT_KIND, CheckpointStore
from airflow_provider_files.uploads.sources import UploadSource

log = logging.getLogger(__name__)


def split_fingerprint(source_fingerprint: str, max_lines: int, max_bytes: int) -> str:
    """What identifies one split: the source content and the shard limits."""
    return f"{source_fingerprint}:{max_lines}:{max_bytes}"


@dataclass
class SplitManifest:
    """The checkpoint of a sharded upload, typed.

    :param fingerprint: the split's fingerprint (see :func:`split_fingerprint`).
    :param purpose: purpose the shards were uploaded with.
    :param files: the shards' file objects, in shard order.
    """

    fingerprint: str
    purpose: str
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": SPLIT_CHECKPOINT_KIND,
            "fingerprint": self.fingerprint,
            "purpose": self.purpose,
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitManifest | None:
        """The manifest in ``data``, or ``None`` if it is not a usable one."""
        files = data.get("files")
        if not isinstance(files, list) or not files:
            return None
        return cls(
            fingerprint=str(data.get("fingerprint") or ""),
            purpose=str(data.get("purpose") or ""),
            files=[dict(item) if isinstance(item, Mapping) else {} for item in files],
        )


def reuse_split(
    client: FilesClient, store: CheckpointStore, *, fingerprint: str, purpose: str
) -> list[FileObject] | None:
    """The shard files a finished earlier run uploaded, if all of them are still usable.

    :param client: the API the files belong to.
    :param store: where the manifest lives.
    :param fingerprint: the split's fingerprint now (see :func:`split_fingerprint`).
    :param purpose: purpose of this upload.
    """
    raw = store.load()
    manifest = SplitManifest.from_dict(raw) if raw else None
    if manifest is None or manifest.fingerprint != fingerprint or manifest.purpose != purpose:
        return None
    files: list[FileObject] = []
    for item in manifest.files:
        file_id = str(item.get("id") or "")
        try:
            current = client.retrieve_file(file_id) if file_id else None
        except NotFoundError:
            current = None
        if current is None or current.status == "error":
            log.info("Shard file %s of an earlier try is gone or failed; splitting again", file_id)
            return None
        recorded = item.get("bytes")
        if isinstance(recorded, int) and current.bytes is not None and current.bytes != recorded:
            log.warning(
                "Shard file %s of an earlier try now reports %d bytes, not the %d uploaded; splitting again",
                file_id,
                current.bytes,
                recorded,
            )
            return None
        files.append(current)
    log.info("Reusing the %d shard files uploaded by an earlier try", len(files))
    return files


def save_split(
    store: CheckpointStore, *, fingerprint: str, purpose: str, files: Sequence[FileObject]
) -> None:
    """Record the files every shard became (after the last one is uploaded)."""
    store.save(SplitManifest(fingerprint, purpose, [f.to_dict() for f in files]).to_dict())


class ShardSource:
    """A shard as an upload source whose fingerprint is derived from the content it was made from.

    Shards are rewritten on every run (new mtime and inode), but the same source content and
    split settings produce the same shards, so their checkpoints stay valid across retries.

    :param inner: the shard file as an upload source.
    :param split: the split's fingerprint (see :func:`split_fingerprint`).
    :param index: the shard's position.
    """

    def __init__(self, inner: UploadSource, split: str, index: int) -> None:
        self._inner = inner
        self._fingerprint = f"{split}:{index}:{inner.size}"

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def size(self) -> int:
        return self._inner.size

    def fingerprint(self) -> str:
        return self._fingerprint

    def range(self, offset: int, length: int) -> BodySource:
        return self._inner.range(offset, length)

    def open(self) -> IO[bytes]:
        return self._inner.open()
