"""Proof that what the server stored is what was sent: the md5 of the bytes sent, sizes, stored md5s.

The engine and the single-request uploader do not trust a server's own figures: the size it
reports for a file is compared with the source's, the md5 of the bytes a request streamed is
compared with the md5 taken when the source was validated, and a file a checkpoint names is
handed on only when its content has the md5 the checkpoint recorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import IO, cast

from airflow_provider_files.api.bodies import BodySource
from airflow_provider_files.api.errors import BadRequestError, FilesApiError
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.recovery import Md5Sink
from airflow_provider_files.api.sync_client import FilesClient

log = logging.getLogger(__name__)

MD5_REFUSED_HINT = (
    "the server (or a gateway in front of it) does not accept the md5 field of a complete; "
    "upload with send_md5=False (--no-md5 on the command line)"
)


class HashingBody:
    """A request body that keeps the md5 of the bytes it streamed, one pass at a time.

    Every pass (the first attempt, each retry) starts the digest over; ``md5`` is that of the
    last pass that streamed every byte, ``None`` until one did.

    :param inner: the bytes to send.
    """

    def __init__(self, inner: BodySource) -> None:
        self._inner = inner
        self.md5: str | None = None
        self.bytes_streamed = 0

    @property
    def length(self) -> int | None:
        return self._inner.length

    @property
    def replayable(self) -> bool:
        return self._inner.replayable

    def chunks(self) -> Iterator[bytes]:
        digest = hashlib.md5(usedforsecurity=False)
        count = 0
        for chunk in self._inner.chunks():
            digest.update(chunk)
            count += len(chunk)
            yield chunk
        self.md5 = digest.hexdigest()
        self.bytes_streamed = count


def reported_size_problem(what: str, reported: int | None, sent: int) -> str | None:
    """Why the size a server reports for what was sent cannot be right (``None``: it can).

    :param what: names the object (``file file-1``).
    :param reported: the ``bytes`` the server answered with; ``None`` (not given) is no problem.
    :param sent: the bytes of the source.
    """
    if reported is None or reported == sent:
        return None
    return f"the server reports {reported} bytes for {what}, but {sent} bytes were sent"


def is_md5_refused(error: BaseException) -> bool:
    """A 400 saying the ``md5`` field itself is not accepted (a gateway that passes on only the
    fields it knows), as opposed to an md5 that does not match the parts."""
    if not isinstance(error, BadRequestError):
        return False
    text = (error.server_message or str(error)).lower()
    refused = any(
        word in text for word in ("unrecognized", "unrecognised", "unknown", "not permitted", "extra")
    )
    return refused and (error.param == "md5" or "md5" in text)


def delete_quietly(client: FilesClient, file_id: str) -> bool:
    """Delete a file that must not be handed on; ``False`` (logged) when the delete failed."""
    try:
        client.delete_file(file_id)
    except FilesApiError as exc:
        log.warning("could not delete file %s: %s", file_id, exc)
        return False
    log.info("deleted file %s", file_id)
    return True


def stored_md5_problem(client: FilesClient, file: FileObject, md5: str) -> str | None:
    """Why ``file`` is not the content whose md5 a checkpoint recorded (``None``: it is).

    Reads the file's content back (streamed into a digest, nothing kept): a checkpoint edited by
    hand, or copied from another run, may name another file of the same size. A server that
    does not let the content be read (OpenAI refuses it for some purposes) leaves the size
    and fingerprint checks as the only ones: that is logged, not a problem.
    """
    sink = Md5Sink()
    try:
        client.download_file(file.id, cast(IO[bytes], sink))
    except FilesApiError as exc:
        log.warning("could not read file %s back to compare its md5 with the checkpoint's: %s", file.id, exc)
        return None
    stored = sink.hexdigest()
    if stored.lower() != md5.lower():
        return f"file {file.id} has md5 {stored}, not the {md5} the checkpoint recorded for the source"
    return None
