"""Follow-up rounds: the requests to run again go into a new batch, once per round per task run.

A task retry collects the same finished batch again, finds the same requests to resubmit and
writes the same subset, byte for byte. So the subset file is uploaded under a name made of the
batch id, the round and the run key; before uploading, the newest ``batch`` files are searched
for one of that name, size and md5 (the earlier try's upload). With that file,
:func:`~airflow_provider_files.batches.submit.submit_batch` finds the batch the earlier try
created under the round's run key instead of creating a second one. No Airflow imports.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final, cast

from airflow_provider_files.api import Batch, FileObject, FilesClient
from airflow_provider_files.api.recovery import Md5Sink
from airflow_provider_files.batches.token_limit import run_batch

logger = logging.getLogger(__name__)

#: How many of the newest ``batch`` files are looked at for an earlier try's upload.
LOOKUP_MAX_FILES: Final = 1000
#: Files created this long before the original batch are not looked at (server clocks drift).
LOOKUP_CLOCK_SLACK_S: Final = 300
#: Metadata keys naming where a follow-up batch comes from.
ROUND_OF_METADATA_KEY: Final = "resubmit_of"
ROUND_METADATA_KEY: Final = "round"


def round_filename(batch_id: str, number: int, run_key: str) -> str:
    """Name of the input file of follow-up round ``number`` of ``batch_id`` for one task run."""
    return f"{batch_id}_round{number}_{run_key[:12]}.jsonl"


def _md5_of_path(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def find_round_input(
    client: FilesClient, filename: str, path: Path, *, not_before: int | None
) -> FileObject | None:
    """The ``batch`` file an earlier try uploaded for this round: same name, size and md5."""
    size = path.stat().st_size
    local_md5: str | None = None
    for index, file in enumerate(client.iter_files(purpose="batch", order="desc")):
        if index >= LOOKUP_MAX_FILES:
            return None
        if not_before is not None and file.created_at is not None and file.created_at < not_before:
            return None
        if file.filename != filename or file.bytes != size or file.status == "error":
            continue
        local_md5 = local_md5 or _md5_of_path(path)
        sink = Md5Sink()
        client.download_file(file.id, cast(IO[bytes], sink))
        if sink.hexdigest() == local_md5:
            return file
    return None


def run_follow_up(
    client: FilesClient,
    *,
    number: int,
    input_path: Path,
    original: Batch,
    run_key: str,
    wait_file: Callable[[str], object],
    wait_batch: Callable[[Batch], Batch],
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    **submit: Any,
) -> Batch:
    """Upload ``input_path`` (or find the earlier try's upload), submit it once, wait until it ends.

    :param number: the round (2 for the first follow-up).
    :param input_path: the requests of the round (a subset of the original input).
    :param original: the batch whose requests are run again (endpoint, completion window).
    :param run_key: the round's run key (see :func:`~airflow_provider_files.batches.submit.run_key`).
    :param wait_file: blocks until the uploaded file is ready for a batch.
    :param wait_batch: blocks until a batch has ended and returns it.
    :param submit: more keyword arguments of :func:`~airflow_provider_files.batches.submit.submit_batch`.
    """
    out = log or logger
    filename = round_filename(original.id, number, run_key)
    not_before = original.created_at - LOOKUP_CLOCK_SLACK_S if original.created_at else None
    file = find_round_input(client, filename, input_path, not_before=not_before)
    if file is not None:
        out.info("Round %d: reusing %s (%s), uploaded by an earlier try", number, file.id, filename)
    else:
        file = client.create_file(input_path, "batch", filename=filename)
        out.info("Round %d: uploaded %s as %s", number, filename, file.id)
    wait_file(file.id)
    metadata = dict(submit.pop("metadata", None) or {})
    metadata.update({ROUND_OF_METADATA_KEY: original.id, ROUND_METADATA_KEY: str(number)})
    return run_batch(
        client,
        wait=wait_batch,
        log=out,
        input_file_id=file.id,
        endpoint=original.endpoint,
        run_key=run_key,
        completion_window=original.completion_window or "24h",
        metadata=metadata,
        **submit,
    )
