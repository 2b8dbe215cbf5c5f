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
        "--jsonl-operator",
        action="store_true",
        help="run UploadJsonlOperator.execute (single POST /files) instead; --checkpoint is its folder",
    )
    args = parser.parse_args(argv)
    if args.jsonl_operator:
        return _run_jsonl_operator(args)

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


def _run_jsonl_operator(args: argparse.Namespace) -> int:
    """The operator's single-request path, with its checkpoint folder and a fixed task identity,
    so that a second process is a retry of the same task instance."""
    import os
    from types import SimpleNamespace
    from typing import Any, cast

    os.environ["AIRFLOW_CONN_RELIABILITY_CRASH"] = json.dumps(
        {"conn_type": "openai_files", "host": args.base_url, "password": args.api_key}
    )
    from airflow_provider_files.operators.files import UploadJsonlOperator

    operator = UploadJsonlOperator(
        task_id="crash_single",
        source=args.path,
        files_conn_id="reliability_crash",
        checkpoint_folder=args.checkpoint,
    )
    ti = SimpleNamespace(dag_id="reliability_crash", task_id="crash_single", run_id="crash", map_index=-1)
    print(READY_LINE, flush=True)
    file: Any = operator.execute(cast(Any, {"ti": ti, "run_id": "crash"}))
    print(RESULT_PREFIX + json.dumps({"file_id": file["id"], "bytes": file["bytes"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
