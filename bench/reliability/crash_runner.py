"""The process the crash scenario kills: one chunked upload with a checkpoint file.

``python -m bench.reliability.crash_runner --base-url URL --api-key KEY --checkpoint C PATH``
prints ``READY`` once its imports are done and the upload starts, and a JSON line describing
the :class:`~airflow_provider_files.uploads.UploadResult` when it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys

READY_LINE = "READY"
RESULT_PREFIX = "RESULT "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.reliability.crash_runner")
    parser.add_argument("path")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--part-size", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--filename", default=None)
    parser.add_argument(
        "--single-request",
        action="store_true",
        help="one POST /files through SingleRequestUploader instead; --checkpoint is its checkpoint file",
    )
    args = parser.parse_args(argv)
    if args.single_request:
        return _run_single_request(args)

    from airflow_provider_files.api import ClientSettings, FilesClient
    from airflow_provider_files.uploads import ChunkedUploader, JsonFileCheckpointStore

    settings = ClientSettings(api_key=args.api_key, base_url=args.base_url, timeout_s=60.0)
    with FilesClient(settings) as client:
        uploader = ChunkedUploader(
            client,
            part_size_bytes=args.part_size,
            concurrency=args.concurrency,
            checkpoint=JsonFileCheckpointStore(args.checkpoint),
        )
        print(READY_LINE, flush=True)
        result = uploader.upload(args.path, purpose="batch", filename=args.filename)
    summary = {
        "file_id": result.file.id,
        "bytes": result.file.bytes,
        "upload_id": result.upload_id,
        "md5": result.md5,
        "parts_total": result.parts_total,
        "parts_sent": result.parts_sent,
        "parts_reused": result.parts_reused,
        "bytes_sent": result.bytes_sent,
        "resumed": result.resumed,
        "reused_file": result.reused_file,
    }
    print(RESULT_PREFIX + json.dumps(summary), flush=True)
    return 0


def _run_single_request(args: argparse.Namespace) -> int:
    """One POST /files with its checkpoint: a second process with the same checkpoint is a retry."""
    from airflow_provider_files.api import ClientSettings, FilesClient
    from airflow_provider_files.uploads import JsonFileCheckpointStore
    from airflow_provider_files.uploads.checkpoint import SINGLE_CHECKPOINT_KIND
    from airflow_provider_files.uploads.single import SingleRequestUploader

    settings = ClientSettings(api_key=args.api_key, base_url=args.base_url, timeout_s=60.0)
    with FilesClient(settings) as client:
        checkpoint = JsonFileCheckpointStore(args.checkpoint, kind=SINGLE_CHECKPOINT_KIND)
        print(READY_LINE, flush=True)
        file = SingleRequestUploader(client, checkpoint=checkpoint).upload(args.path, purpose="batch").file
    print(RESULT_PREFIX + json.dumps({"file_id": file.id, "bytes": file.bytes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
