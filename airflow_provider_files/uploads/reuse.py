"""What a new run makes of the checkpoint an earlier run left behind.

Either the earlier run finished and its file can be handed on again (if the server still has
it and it did not fail processing), or it left an upload pending that no run will resume and
that is cancelled.

Handing a file on reads nothing back. When an upload ends, the checkpoint records the file
object with the md5 of the bytes the server verified (:func:`file_record`: the md5 sent with
``complete``, which the server checks against the parts, or that of the ``POST /files`` body as
it was streamed). A later run trusts the file when the checkpoint's md5 is that record's, the
server still reports the recorded id, size and filename and no error, and the source (when its
md5 is known, from validation) has that md5. A checkpoint without such a record (written by an
older version, or edited by hand so that its file is another one) falls back to reading the
file back and comparing its md5.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_provider_files.api.errors import FilesApiError, NotFoundError
from airflow_provider_files.api.models import FileObject
from airflow_provider_files.api.sync_client import FilesClient
from airflow_provider_files.uploads.checkpoint import CheckpointStore
from airflow_provider_files.uploads.verify import reported_size_problem, stored_md5_problem

log = logging.getLogger(__name__)

#: The key of the verified md5 in a checkpoint's record of its file.
VERIFIED_MD5_KEY = "verified_md5"


def file_record(file: FileObject, verified_md5: str | None) -> dict[str, Any]:
    """What a checkpoint keeps of the file an upload made: the file object as the server answered,
    with the md5 of the bytes the server verified, bound to that file (``None``: none was)."""
    record = file.to_dict()
    if verified_md5:
        record[VERIFIED_MD5_KEY] = verified_md5.lower()
    return record


def recorded_md5_problem(
    client: FilesClient,
    current: FileObject,
    record: Mapping[str, Any] | None,
    md5: str,
    source_md5: str | None = None,
) -> str | None:
    """Why ``current`` is not the content whose md5 a checkpoint recorded (``None``: it is).

    :param current: the file the checkpoint names, as the server has it now.
    :param record: the checkpoint's record of the file (see :func:`file_record`).
    :param md5: the md5 the checkpoint recorded for the source.
    :param source_md5: the source's md5 now, when known (validation takes it).
    """
    verified = record.get(VERIFIED_MD5_KEY) if record else None
    if not (
        record and isinstance(verified, str) and verified == md5.lower() and record.get("id") == current.id
    ):
        # no record binding this md5 to this file: read the file back
        return stored_md5_problem(client, current, md5)
    for name in ("bytes", "filename"):
        recorded, now = record.get(name), getattr(current, name)
        if recorded is not None and now is not None and recorded != now:
            return f"file {current.id} now has {name} {now!r}, the checkpoint recorded {recorded!r}"
    if source_md5 and source_md5.lower() != verified:
        return (
            f"file {current.id} holds bytes with md5 {verified}, the source now has md5 {source_md5.lower()}"
        )
    return None


def recorded_file_id(
    state: Mapping[str, object] | None,
    *,
    fingerprint: str,
    filename: str,
    purpose: str,
    base_url: str | None = None,
) -> str | None:
    """The id of the file a checkpoint records as uploaded from this very source, else ``None``.

    Pure: the checkpoint must name a finished file, and the source content (fingerprint),
    the filename and the purpose must be the ones it was written for.

    :param base_url: the API this run talks to: a checkpoint that records another API (as a
        chunked upload's does) names none of its files (``None``: not compared).
    """
    if not state:
        return None
    file = state.get("file")
    recorded_api = state.get("base_url")
    if (
        not isinstance(file, Mapping)
        or state.get("fingerprint") != fingerprint
        or state.get("filename") != filename
        or state.get("purpose") != purpose
        or (base_url is not None and recorded_api and recorded_api != base_url)
    ):
        return None
    return str(file.get("id") or "") or None


def reusable_file(
    client: FilesClient,
    store: CheckpointStore,
    *,
    fingerprint: str,
    filename: str,
    purpose: str,
    size: int | None = None,
    source_md5: str | None = None,
    base_url: str | None = None,
) -> FileObject | None:
    """The file a finished earlier run uploaded from the same content, if it still exists on the
    server, did not fail processing, has the source's size and (when the checkpoint recorded one)
    the source's md5, checked as :func:`recorded_md5_problem` says. A checkpoint naming a file
    that is gone, failed or other is cleared, so that the upload starts over.

    :param client: the API the file belongs to.
    :param store: the checkpoint of the earlier run (chunked or single-request).
    :param fingerprint: the source's fingerprint now.
    :param filename: filename given to the API.
    :param purpose: purpose given to the API.
    :param size: the source's size now (``None``: not compared).
    :param source_md5: the source's md5 now, when known (``None``: not compared).
    :param base_url: the API this run talks to; a checkpoint of another API is left alone
        (``None``: not compared).
    """
    state = store.load()
    file_id = recorded_file_id(
        state, fingerprint=fingerprint, filename=filename, purpose=purpose, base_url=base_url
    )
    if file_id is None:
        return None
    try:
        current = client.retrieve_file(file_id)
    except NotFoundError:
        log.warning("File %s of an earlier try no longer exists; uploading again", file_id)
        store.clear()
        return None
    if current.status == "error":
        log.warning(
            "File %s of an earlier try failed processing (%s); uploading again",
            file_id,
            current.status_details or "no details",
        )
        store.clear()
        return None
    problem = reported_size_problem(f"file {file_id}", current.bytes, size) if size is not None else None
    md5 = (state or {}).get("md5")
    if problem is None and isinstance(md5, str) and md5:
        record = (state or {}).get("file")
        problem = recorded_md5_problem(
            client, current, record if isinstance(record, Mapping) else None, md5, source_md5
        )
    if problem is not None:
        log.warning("Not reusing the file of the checkpoint: %s; uploading again", problem)
        store.clear()
        return None
    log.info("Reusing file %s uploaded by an earlier try", file_id)
    return current


def cancel_pending_upload(client: FilesClient, store: CheckpointStore) -> str | None:
    """Cancel the upload a checkpoint records as pending, and forget the checkpoint: for a last
    try, after which no run will resume it. Returns the id of the upload it cancelled (or tried to)."""
    state = store.load() or {}
    upload_id = state.get("upload_id")
    if not upload_id or state.get("file"):
        return None
    try:
        client.cancel_upload(str(upload_id))
    except FilesApiError as exc:
        log.warning("This was the last try; cancelling upload %s failed: %s", upload_id, exc)
    else:
        log.info("This was the last try: cancelled upload %s instead of leaving it pending", upload_id)
    store.clear()
    return str(upload_id)
