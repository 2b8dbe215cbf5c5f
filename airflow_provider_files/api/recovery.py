"""Lost-response recovery: telling apart the file that a failed create stored anyway.

When a create fails in a way that may have stored the file (the connection dropped, a 5xx),
a retry first looks for it. A file counts only when it is the one file of the same name, size
and purpose created since the first attempt, and its content has the md5 of what was sent:
another upload of the same name and size may run at the same time, and taking its file would
hand on the wrong data. The blocking and the async clients drive these steps with their own
I/O; the rules and the log lines live here once.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_files.api.bodies import BodyInput, BodySource, as_body_source, default_filename
from airflow_provider_files.api.errors import FilesApiError
from airflow_provider_files.api.models import FileList, FileObject

log = logging.getLogger(__name__)

# When a create request fails in a way that may have stored the file anyway, files created up
# to this long before the first attempt still count as "ours" (server clocks drift).
RECOVERY_CLOCK_SLACK_S = 5
# Newest files looked at when searching for the one a failed attempt stored.
RECOVERY_PAGE_SIZE = 100


@dataclass(frozen=True)
class FileMatch:
    """What identifies a file a failed create may have stored anyway.

    :param filename: the name it was sent with.
    :param size: its size in bytes.
    :param purpose: its purpose.
    :param not_before: when the first attempt began (epoch seconds).
    """

    filename: str
    size: int
    purpose: str
    not_before: float

    def candidates(self, page: FileList) -> list[FileObject]:
        """Files of this name, size and purpose created since the first attempt began."""
        return [
            item
            for item in page.data
            if item.filename == self.filename
            and item.bytes == self.size
            and (item.created_at is None or item.created_at >= self.not_before - RECOVERY_CLOCK_SLACK_S)
        ]

    def list_params(self) -> dict[str, Any]:
        """The ``list_files`` arguments of the search: newest first, this purpose."""
        return {"purpose": self.purpose, "order": "desc", "limit": RECOVERY_PAGE_SIZE}

    def only_candidate(self, page: FileList) -> FileObject | None:
        """The one candidate in ``page``, or ``None`` when there is none or more than one."""
        candidates = self.candidates(page)
        if len(candidates) != 1:
            if candidates:
                log.info("%d files could be the one stored by the failed attempt", len(candidates))
            return None
        return candidates[0]


def confirm(candidate: FileObject, stored_md5: str, sent_md5: str) -> FileObject | None:
    """The candidate when its content is what was sent, else ``None``."""
    if stored_md5 != sent_md5:
        log.info("file %s has the same name and size but other content", candidate.id)
        return None
    return candidate


def lookup_failed(error: FilesApiError) -> None:
    """Log that the search itself failed: the retry then goes ahead as a new create."""
    log.warning("could not check for a file stored by the failed attempt: %s", error)


def match_for(file: BodyInput, filename: str | None, purpose: str) -> FileMatch | None:
    """How to recognise the file a create may have stored before its response was lost."""
    source = as_body_source(file) if not isinstance(file, (str, os.PathLike)) else None
    size = source.length if source is not None else Path(file).stat().st_size  # type: ignore[arg-type]
    name = filename or default_filename(file) or "upload"
    return None if size is None else FileMatch(name, size, purpose, time.time())


def body_md5(source: BodySource) -> str:
    """md5 of a replayable body source, read from its start."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in source.chunks():
        digest.update(chunk)
    return digest.hexdigest()


class Md5Sink(io.RawIOBase):
    """A write-only destination keeping the md5 of what is written; rewinding to 0 starts over
    (the client rewinds its destination when a download is retried)."""

    def __init__(self) -> None:
        super().__init__()
        self._digest = hashlib.md5(usedforsecurity=False)
        self._position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("an md5 sink can only be rewound to its start")
        self._digest = hashlib.md5(usedforsecurity=False)
        self._position = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        if size not in (None, self._position):
            raise io.UnsupportedOperation("an md5 sink can only be truncated where it stands")
        return self._position

    def write(self, data: Any) -> int:
        self._digest.update(data)
        self._position += len(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()
