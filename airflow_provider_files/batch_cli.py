"""``airflow-files batch``: create, inspect, download and cancel Batch jobs outside Airflow.

``batch create FILE_ID --endpoint E`` creates a batch (``--wait`` blocks until it ends),
``batch status BATCH_ID`` shows one, ``batch results BATCH_ID DEST_DIR`` downloads and accounts
for its results, ``batch cancel BATCH_ID`` cancels it. Each prints JSON on stdout; log lines go to
stderr. Exit status: 0 done, 1 the API or the batch failed (a batch that ended ``failed``,
``expired`` or ``cancelled`` under ``--wait``, results over ``--max-failed-fraction``: the JSON is
still printed), 2 usage or bad input.

``create`` is idempotent only with ``--run-key KEY``: the key goes into the batch's metadata and
a rerun with the same key (and file) finds that batch instead of creating, and paying for, a second
one. Without it every call creates a new batch.

The API is chosen as for ``upload``: ``--files-conn-id`` (an Airflow connection, e.g. from
``AIRFLOW_CONN_<ID>``, read without Airflow) or ``--base-url`` with the key in ``--api-key-env``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from airflow_provider_files._cli_args import EXIT_FAILED, EXIT_OK, EXIT_USAGE, number
from airflow_provider_files._cli_client import add_connection_arguments, client_from_args, logging_to_stderr
from airflow_provider_files.api import FilesApiError, FilesClient
from airflow_provider_files.api.batch_models import Batch
from airflow_provider_files.api.polling import MAX_CONSECUTIVE_ERRORS, PollSchedule
from airflow_provider_files.api.readiness import BATCH_TERMINAL_STATUSES, BatchReadiness
from airflow_provider_files.batches.collect import ResultsNotCollectableError, collect_results
from airflow_provider_files.batches.submit import BatchInputError, submit_batch
from airflow_provider_files.hooks._waiting import wait_on_schedule

DEFAULT_COMPLETION_WINDOW = "24h"
DEFAULT_WAIT_TIMEOUT_S = 24 * 3600.0
DEFAULT_POLL_INTERVAL_S = 5.0
MAX_POLL_INTERVAL_S = 60.0

log = logging.getLogger("airflow_provider_files.batch_cli")


class BatchEndedBadly(Exception):
    """A waited-for batch ended ``failed``, ``expired`` or ``cancelled``.

    :param batch: the batch as it ended (printed as the command's JSON).
    :param reason: why, with the batch's errors and request counts.
    """

    def __init__(self, batch: Batch, reason: str) -> None:
        super().__init__(reason)
        self.batch = batch


class WaitFailed(Exception):
    """The wait timed out or the API could not be asked."""


def _metadata_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"metadata must be KEY=VALUE, got {text!r}")
    return key, value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = "Create, inspect, download and cancel Batch jobs; print JSON on stdout."
    sub = parser.add_subparsers(dest="batch_command", metavar="ACTION")
    sub.required = True

    create = sub.add_parser("create", help="create a batch from an uploaded file")
    create.add_argument("file_id", help="the input file (purpose batch, processed)")
    create.add_argument(
        "--endpoint", required=True, help="endpoint of every request, e.g. /v1/chat/completions"
    )
    create.add_argument("--completion-window", default=DEFAULT_COMPLETION_WINDOW, help="default 24h")
    create.add_argument(
        "--metadata", type=_metadata_pair, nargs="+", default=[], metavar="K=V", help="metadata pairs"
    )
    create.add_argument(
        "--run-key",
        default=None,
        help="makes the create idempotent: a rerun with the same key and file returns the same batch",
    )
    create.add_argument("--wait", action="store_true", help="wait until the batch ends")
    create.add_argument(
        "--timeout-s",
        type=number(float, minimum=0.0),
        default=DEFAULT_WAIT_TIMEOUT_S,
        help=f"longest wait with --wait (default {DEFAULT_WAIT_TIMEOUT_S:g})",
    )
    create.add_argument(
        "--poll-interval-s",
        type=number(float, minimum=0.0),
        default=DEFAULT_POLL_INTERVAL_S,
        help=f"first wait between checks with --wait (default {DEFAULT_POLL_INTERVAL_S:g}; grows to "
        f"{MAX_POLL_INTERVAL_S:g})",
    )

    status = sub.add_parser("status", help="show a batch")
    status.add_argument("batch_id")

    results = sub.add_parser("results", help="download a finished batch's results into a folder")
    results.add_argument("batch_id")
    results.add_argument("dest_dir", type=Path, help="local folder for the result files")
    results.add_argument(
        "--order",
        choices=("results", "input"),
        default="results",
        help="results: <id>_output.jsonl + <id>_errors.jsonl as served; input: one <id>_results.jsonl "
        "in input order",
    )
    results.add_argument(
        "--max-failed-fraction",
        type=number(float, minimum=0.0, maximum=1.0),
        default=None,
        help="exit 1 when more than this fraction of the requests failed or has no result",
    )
    results.add_argument(
        "--input-source", type=Path, default=None, help="a copy of the input file (default: the API's)"
    )

    cancel = sub.add_parser("cancel", help="cancel a batch")
    cancel.add_argument("batch_id")

    for action in (create, status, results, cancel):
        add_connection_arguments(action.add_argument_group("where the batches are"))
        action.add_argument("--quiet", action="store_true", help="only warnings on stderr")


def run(args: argparse.Namespace) -> int:
    # stdout carries only the JSON result: whatever Airflow prints while it loads goes to stderr.
    result_stream = sys.stdout
    with logging_to_stderr(args.quiet), contextlib.redirect_stdout(sys.stderr):
        return _run(args, result_stream)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    action: Callable[[FilesClient, argparse.Namespace], tuple[int, dict[str, Any]]] = _ACTIONS[
        args.batch_command
    ]
    try:
        client = client_from_args(args, max_connections=4, command=f"batch {args.batch_command}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with client:
            code, result = action(client, args)
    except (ValueError, TypeError) as exc:  # BatchInputError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BatchEndedBadly as exc:
        print(f"error: {exc}", file=sys.stderr)
        code, result = EXIT_FAILED, exc.batch.to_dict()
    except (FilesApiError, WaitFailed, ResultsNotCollectableError, OSError) as exc:
        print(f"error: batch {args.batch_command} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result, indent=2, sort_keys=True), file=out, flush=True)
    return code


def _create(client: FilesClient, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    metadata = dict(args.metadata) or None
    if args.run_key:
        submitted = submit_batch(
            client,
            input_file_id=args.file_id,
            endpoint=args.endpoint,
            run_key=args.run_key,
            completion_window=args.completion_window,
            metadata=metadata,
            log=log,
        )
        batch = submitted.batch
    else:
        batch = client.create_batch(
            args.file_id, args.endpoint, completion_window=args.completion_window, metadata=metadata
        )
        log.info("Created batch %s for %s (%s)", batch.id, args.file_id, args.endpoint)
    if args.wait:
        batch = wait_for_end(client, batch.id, timeout_s=args.timeout_s, poll_interval_s=args.poll_interval_s)
    return EXIT_OK, batch.to_dict()


def wait_for_end(client: FilesClient, batch_id: str, *, timeout_s: float, poll_interval_s: float) -> Batch:
    """Poll ``batch_id`` until it ends: the batch when ``completed``.

    :raises BatchEndedBadly: it ended ``failed``, ``expired`` or ``cancelled``.
    :raises WaitFailed: not ended within ``timeout_s``, or the API could not be asked.
    """
    readiness = BatchReadiness(batch_id)
    every_end = BatchReadiness(batch_id, targets=BATCH_TERMINAL_STATUSES)
    last: list[str] = []

    def check() -> Batch | None:
        batch = client.retrieve_batch(batch_id)
        verdict = every_end.judge(batch)
        last[:] = [verdict.reason]
        if not verdict.is_ready:
            return None
        final = readiness.judge(batch)
        if final.is_failed:
            raise BatchEndedBadly(batch, final.reason)
        return batch

    schedule = PollSchedule(
        initial_interval_s=poll_interval_s,
        max_interval_s=max(MAX_POLL_INTERVAL_S, poll_interval_s),
        max_consecutive_errors=MAX_CONSECUTIVE_ERRORS,
    )
    now = time.time()
    return wait_on_schedule(
        check,
        schedule.start(now=now, deadline=now + timeout_s),
        what=f"batch {batch_id}",
        pending_summary=lambda: last[0] if last else f"batch {batch_id} not checked",
        timeout_error=lambda summary: WaitFailed(
            f"batch {batch_id} not ended after {timeout_s:g}s; {summary}"
        ),
        api_error=lambda reason: WaitFailed(f"could not check batch {batch_id}: {reason}"),
        log=log,
        sleep=time.sleep,
        clock=time.time,
    )


def _status(client: FilesClient, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    return EXIT_OK, client.retrieve_batch(args.batch_id).to_dict()


def _cancel(client: FilesClient, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    batch = client.cancel_batch(args.batch_id)
    log.info("Batch %s is %s", batch.id, batch.status)
    return EXIT_OK, batch.to_dict()


def _results(client: FilesClient, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    if args.input_source is not None and not args.input_source.is_file():
        raise ValueError(f"{args.input_source} is not a file")
    batch = client.retrieve_batch(args.batch_id)
    folder: Path = args.dest_dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airflow-files-results-") as work_dir:
        collected = collect_results(
            client,
            batch,
            lambda name: (folder / name).open("wb"),
            work_dir=Path(work_dir),
            input_source=args.input_source,
            order=args.order,
        )
    summary = collected.to_dict()
    summary["files"] = {role: str(folder / name) for role, name in collected.files.items()}
    problems = collected.problems(args.max_failed_fraction)
    summary["problems"] = problems
    log.info(
        "Batch %s (%s): %d succeeded, %d failed, %d missing; files in %s",
        batch.id,
        batch.status,
        summary["succeeded"],
        summary["failed"],
        summary["missing_count"],
        folder,
    )
    for problem in problems:
        print(f"error: batch {batch.id}: {problem}", file=sys.stderr)
    return (EXIT_FAILED if problems else EXIT_OK), summary


_ACTIONS: dict[str, Callable[[FilesClient, argparse.Namespace], tuple[int, dict[str, Any]]]] = {
    "create": _create,
    "status": _status,
    "results": _results,
    "cancel": _cancel,
}

__all__ = ["BatchInputError", "configure_parser", "run", "wait_for_end"]
