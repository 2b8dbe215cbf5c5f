"""The process the batches scenario runs (and kills): create a batch once, wait for it, collect it.

``python -m bench.reliability.batch_runner --base-url URL --api-key KEY --input-file-id ID
--run-key KEY --work-dir DIR [--checkpoint PATH]`` prints ``READY`` once its imports are done,
then runs :func:`~airflow_provider_files.batches.run_batch` (the path of ``BatchOperator``
with ``wait_for_completion``) and :func:`~airflow_provider_files.batches.collect.collect_results`
(the path of ``DownloadBatchResultsOperator``) into ``DIR``, and prints a JSON line describing what
it collected. Airflow is not imported (its import alone takes seconds): the client is built
directly, as a hook would build it, and the wait is a plain poll of ``GET /batches/{id}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

READY_LINE = "READY"
RESULT_PREFIX = "RESULT "
ENDPOINT = "/v1/chat/completions"
POLL_INTERVAL_S = 0.1
WAIT_TIMEOUT_S = 120.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.reliability.batch_runner")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--input-file-id", required=True)
    parser.add_argument("--run-key", required=True)
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--checkpoint", default=None, help="remember the batch in this JSON file")
    args = parser.parse_args(argv)

    from airflow_provider_files.api import Batch, FilesApiError
    from airflow_provider_files.batches import BATCH_CHECKPOINT_KIND, run_batch
    from airflow_provider_files.batches.collect import collect_results
    from airflow_provider_files.uploads import JsonFileCheckpointStore
    from bench.reliability.common import emulator_client

    def wait(batch: Batch) -> Batch:
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while not batch.is_terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch.id} still {batch.status} after {WAIT_TIMEOUT_S:.0f} s")
            time.sleep(POLL_INTERVAL_S)
            try:
                batch = client.retrieve_batch(batch.id)
            except FilesApiError as exc:
                print(f"poll error ridden out: {exc}", file=sys.stderr, flush=True)
        return batch

    def open_dest(name: str) -> Any:
        return open(args.work_dir / name, "wb")

    args.work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = (
        JsonFileCheckpointStore(args.checkpoint, kind=BATCH_CHECKPOINT_KIND) if args.checkpoint else None
    )
    with emulator_client(args.base_url, args.api_key) as client:
        print(READY_LINE, flush=True)
        batch = run_batch(
            client,
            wait=wait,
            input_file_id=args.input_file_id,
            endpoint=ENDPOINT,
            run_key=args.run_key,
            checkpoint=checkpoint,
            min_create_interval_s=0.0,
        )
        collected = collect_results(client, batch, open_dest, work_dir=args.work_dir)
    summary = collected.summary
    outcome = {
        "batch_id": batch.id,
        "status": batch.status,
        "files": collected.files,
        "total_input": summary.total_input,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "missing": len(summary.missing),
        "duplicates": len(summary.duplicates),
        "unexpected": len(summary.unexpected),
    }
    print(RESULT_PREFIX + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
