"""``airflow-files upload``: upload a file outside Airflow through the same engine as the operators.

It makes the choices ``UploadJsonlOperator`` makes: the file a ``--checkpoint`` records as uploaded
from this very file is handed on again without reading the file (the operator's reuse rules, from
:func:`~airflow_provider_files.uploads.reuse.reusable_file`); otherwise a ``--purpose batch`` file is
validated first with the validator (and messages) of ``airflow-files validate``, and an invalid one
is not sent (``--no-validate`` skips this); a file up to the operator's single-request threshold goes
in one ``POST /files``, a larger one through the Uploads API, unless ``--single-request`` or
``--chunked`` says otherwise.

The file object is printed as JSON on stdout; progress and log lines go to stderr.
Exit status: 0 uploaded, 1 the upload failed (API error, cancelled, source changed) or the batch
file is invalid (as ``validate``), 2 usage or bad input, 130 interrupted (Ctrl-C; with
``--checkpoint`` the upload stays pending and a rerun resumes it).

The API is chosen as :mod:`airflow_provider_files._cli_client` describes: a connection id (read
from ``AIRFLOW_CONN_<ID>`` without Airflow when that variable is set), ``--base-url`` with the key
in ``--api-key-env``, or ``--conn-json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from airflow_provider_files._cli_args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, number
from airflow_provider_files._cli_client import add_connection_arguments, client_from_args, logging_to_stderr
from airflow_provider_files.api import FileObject, FilesApiError, FilesClient
from airflow_provider_files.api.errors import UnsupportedOperationError
from airflow_provider_files.jsonl.cli import EXIT_INVALID
from airflow_provider_files.jsonl.validation import DEFAULT_MAX_ERRORS, validate_batch_file
from airflow_provider_files.uploads import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE_BYTES,
    MAX_CONCURRENCY,
    ChunkedUploader,
    JsonFileCheckpointStore,
    LocalFileSource,
    UploadCancelledError,
    UploadError,
    UploadProgress,
    parse_size_bytes,
    validate_part_size,
)
from airflow_provider_files.uploads.checkpoint import SINGLE_CHECKPOINT_KIND, CheckpointError
from airflow_provider_files.uploads.limits import (
    SINGLE_REQUEST_LIMIT_BYTES,
    SINGLE_REQUEST_MAX_BYTES,
    uses_single_request,
)
from airflow_provider_files.uploads.progress import format_bytes, plural
from airflow_provider_files.uploads.reuse import reusable_file
from airflow_provider_files.uploads.single import SingleRequestUploader

#: The purpose whose files are validated before they are sent (as ``UploadJsonlOperator`` does).
VALIDATED_PURPOSE = "batch"

log = logging.getLogger("airflow_provider_files.upload_cli")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Upload a file in one request (POST /files) up to "
        f"{format_bytes(SINGLE_REQUEST_MAX_BYTES)}, or through the Uploads API above (parts in "
        "parallel, md5 checked), as UploadJsonlOperator does; resumable with --checkpoint. A batch "
        "file is validated first. Print the file object as JSON."
    )
    parser.add_argument("path", type=Path, help="the local file to upload")
    parser.add_argument("--purpose", required=True, help="file purpose, e.g. batch")
    add_connection_arguments(parser.add_argument_group("where to upload"))
    _add_upload_options(parser)


def _add_upload_options(parser: argparse.ArgumentParser) -> None:
    options = parser.add_argument_group("upload options")
    options.add_argument(
        "--part-size",
        type=number(parse_size_bytes, check=validate_part_size),
        default=None,
        help="bytes per part: 32MiB, 64MB or a byte count (64 KiB to 64 MiB; default: about "
        f"{format_bytes(DEFAULT_PART_SIZE_BYTES)}, evened so that the part count is a multiple of "
        "--concurrency)",
    )
    options.add_argument(
        "--concurrency",
        type=number(int, minimum=1, maximum=MAX_CONCURRENCY),
        default=DEFAULT_CONCURRENCY,
        help=f"parts in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    options.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="JSON file recording progress: rerun with it to resume, or to get the file again without uploading",
    )
    options.add_argument(
        "--filename", default=None, help="filename given to the API (default: the file's name)"
    )
    options.add_argument(
        "--expires-after-s", type=int, default=None, help="file lifetime in seconds (3600 to 2592000)"
    )
    options.add_argument(
        "--mime-type", default=None, help="default: from the extension (text/jsonl for .jsonl)"
    )
    how = options.add_mutually_exclusive_group()
    how.add_argument(
        "--single-request",
        action="store_true",
        help=f"one POST /files request whatever the size (files up to {format_bytes(SINGLE_REQUEST_LIMIT_BYTES)}); "
        "default: one request up "
        f"to {format_bytes(SINGLE_REQUEST_MAX_BYTES)}, as UploadJsonlOperator",
    )
    how.add_argument(
        "--chunked",
        action="store_true",
        help="the Uploads API (parts in parallel) whatever the size; default: above "
        f"{format_bytes(SINGLE_REQUEST_MAX_BYTES)}, as UploadJsonlOperator",
    )
    options.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help=f"send a --purpose {VALIDATED_PURPOSE} file without validating it first (as airflow-files "
        "validate does)",
    )
    options.add_argument(
        "--no-md5",
        dest="send_md5",
        action="store_false",
        help="do not send the md5 on complete (for a gateway that answers "
        "'Unrecognized request argument supplied: md5')",
    )
    options.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _print_progress(progress: UploadProgress) -> None:
    print(
        f"upload: {progress.describe()} (part {progress.parts_done}/{progress.parts_total})",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return EXIT_USAGE
    # stdout carries only the JSON result: whatever Airflow prints while it loads goes to stderr.
    result_stream = sys.stdout
    try:
        with logging_to_stderr(args.quiet), contextlib.redirect_stdout(sys.stderr):
            return _run(args, result_stream)
    except KeyboardInterrupt:
        print(f"interrupted: {_left_behind(args)}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _left_behind(args: argparse.Namespace) -> str:
    """What an interrupted run leaves, in a few words."""
    if args.checkpoint is None:
        return "nothing is resumable without --checkpoint (a pending upload was cancelled)"
    if not args.checkpoint.exists():
        return "the upload had not begun"
    return f"the checkpoint {args.checkpoint} is kept: run the same command again to resume"


def _run(args: argparse.Namespace, result_stream: TextIO) -> int:
    path: Path = args.path
    try:
        client = client_from_args(args, max_connections=args.concurrency + 2)
    except (ValueError, FilesApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    single_request = args.single_request or (not args.chunked and uses_single_request(path.stat().st_size))
    profile = client.settings.profile
    if not single_request and not profile.supports_uploads:
        client.close()
        print(
            f"error: the '{profile.name}' gateway has no Uploads API{profile.uploads_hint}; "
            f"use --single-request (one POST /files, files up to {format_bytes(SINGLE_REQUEST_LIMIT_BYTES)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        with client:
            source = LocalFileSource(path)
            store = _checkpoint_store(args, single_request=single_request)
            # as UploadJsonlOperator: a file the checkpoint holds is handed on before any validation
            reused = _reused_file(client, args, source, store)
            if reused is not None:
                file_dict = reused.to_dict()
            else:
                expected_md5 = None
                if args.validate and args.purpose == VALIDATED_PURPOSE:
                    report = validate_batch_file(path, max_errors=DEFAULT_MAX_ERRORS)
                    if not report.valid:
                        # the message of ``airflow-files validate``, as the operator words it
                        print(
                            f"error: nothing was uploaded: {report.summary(DEFAULT_MAX_ERRORS)}",
                            file=sys.stderr,
                        )
                        return EXIT_INVALID
                    log.info("%s", report.summary())
                    expected_md5 = report.md5
                file_dict = _upload(
                    client, args, source, store, single_request=single_request, expected_md5=expected_md5
                )
    except UnsupportedOperationError as exc:
        print(f"error: {exc} (use --single-request)", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FilesApiError, UploadError, OSError) as exc:
        print(f"error: upload of {path} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(file_dict, indent=2, sort_keys=True), file=result_stream, flush=True)
    return EXIT_OK


def _checkpoint_store(args: argparse.Namespace, *, single_request: bool) -> JsonFileCheckpointStore | None:
    """The ``--checkpoint`` of the way the file goes (one request or the Uploads API), if given."""
    if args.checkpoint is None:
        return None
    if single_request:
        return JsonFileCheckpointStore(args.checkpoint, kind=SINGLE_CHECKPOINT_KIND)
    return JsonFileCheckpointStore(args.checkpoint)


def _reused_file(
    client: FilesClient,
    args: argparse.Namespace,
    source: LocalFileSource,
    store: JsonFileCheckpointStore | None,
) -> FileObject | None:
    """The file the checkpoint records as uploaded from this very file, if the server still has it
    (the rules of ``UploadJsonlOperator``); the file is not read. ``None``: upload (and validate)."""
    if store is None:
        return None
    file = reusable_file(
        client,
        store,
        fingerprint=source.fingerprint(),
        filename=args.filename or source.name,
        purpose=args.purpose,
        size=source.size,
        base_url=client.base_url,
    )
    if file is not None:
        log.info(
            "%s was already uploaded as file %s (from the checkpoint, not validated again); not uploading again",
            args.path,
            file.id,
        )
    return file


def _upload(
    client: FilesClient,
    args: argparse.Namespace,
    source: LocalFileSource,
    store: JsonFileCheckpointStore | None,
    *,
    single_request: bool,
    expected_md5: str | None,
) -> dict[str, Any]:
    """The file object of ``source`` uploaded one way or the other.

    :param store: the checkpoint of the way the file goes (see :func:`_checkpoint_store`).
    :param expected_md5: the md5 the file had when it was validated (the bytes sent must have it).
    """
    what: dict[str, Any] = {
        "purpose": args.purpose,
        "filename": args.filename,
        "mime_type": args.mime_type,
        "expected_md5": expected_md5,
    }
    if single_request:
        single = SingleRequestUploader(client, expires_after_s=args.expires_after_s, checkpoint=store)
        outcome = single.upload(source, **what)
        if outcome.reused_file:
            log.info(
                "%s was already uploaded as file %s (from the checkpoint); not uploading again",
                args.path,
                outcome.file.id,
            )
        return outcome.file.to_dict()
    uploader = ChunkedUploader(
        client,
        part_size_bytes=args.part_size,
        concurrency=args.concurrency,
        expires_after_s=args.expires_after_s,
        progress=None if args.quiet else _print_progress,
        checkpoint=store,
        send_md5=args.send_md5,
    )
    # SIGTERM and Ctrl-C stop the parts at once; with --checkpoint the upload stays pending for a rerun.
    interrupted = threading.Event()

    def on_interrupt(signum: int, frame: object) -> None:
        interrupted.set()
        uploader.request_cancel()

    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: uploader.request_cancel())
        previous_int = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = uploader.upload(source, **what)
    except UploadCancelledError:
        if interrupted.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    log.info(
        "uploaded %s as %s: %s sent, %d reused%s in %.1fs, md5 %s",
        args.path,
        result.file.id,
        plural(result.parts_sent, "part"),
        result.parts_reused,
        " (file reused from the checkpoint)" if result.reused_file else "",
        result.elapsed_s,
        result.md5 or "not computed",
    )
    return result.file.to_dict()
