"""``airflow-files upload``: upload a file outside Airflow through the same hook and engine.

The file object is printed as JSON on stdout; progress and log lines go to stderr.
Exit status: 0 uploaded, 1 the upload failed (API error, cancelled, source changed), 2 usage or bad input,
130 interrupted (Ctrl-C; with ``--checkpoint`` the upload stays pending and a rerun resumes it).

By default the connection is read like a task would (``--files-conn-id``, e.g. from an
``AIRFLOW_CONN_<ID>`` environment variable; no metadata database is needed). ``--base-url``
skips Airflow altogether (the key is read from the environment variable ``--api-key-env``),
which keeps the process small; ``--header NAME=VALUE`` and ``--gateway-option EXTRA=VALUE`` (any
connection extra, e.g. ``portkey_provider=openai``) carry what a gateway needs, and
``--conn-json`` takes a whole connection in Airflow's JSON form, also without Airflow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from airflow_provider_files.api import ClientSettings, FilesApiError, FilesClient
from airflow_provider_files.api.errors import UnsupportedOperationError
from airflow_provider_files.uploads import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE_BYTES,
    MAX_CONCURRENCY,
    ChunkedUploader,
    JsonFileCheckpointStore,
    UploadCancelledError,
    UploadError,
    UploadProgress,
    parse_size_bytes,
)
from airflow_provider_files.uploads.checkpoint import SINGLE_CHECKPOINT_KIND, CheckpointError
from airflow_provider_files.uploads.single import SingleRequestUploader

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_CONN_ID = "openai_files_default"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

log = logging.getLogger("airflow_provider_files.upload_cli")


def _size(text: str) -> int:
    try:
        return parse_size_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_CONCURRENCY}, got {value}")
    return value


def _pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name.strip(), value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Upload a file through the Uploads API (parts in parallel, md5 checked, resumable with "
        "--checkpoint) or in one request (--single-request, also resumable with --checkpoint); print "
        "the file object as JSON."
    )
    parser.add_argument("path", type=Path, help="the local file to upload")
    parser.add_argument("--purpose", required=True, help="file purpose, e.g. batch")
    add_connection_arguments(parser.add_argument_group("where to upload"))
    _add_upload_options(parser)


def add_connection_arguments(target: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The options choosing the API: an Airflow connection, or a base URL (or a connection as JSON)
    and a key variable; shared by the ``upload`` and ``batch`` commands, read by :func:`client_from_args`."""
    target.add_argument(
        "--files-conn-id",
        default=None,
        help=f"Airflow connection id (default {DEFAULT_CONN_ID}); read from AIRFLOW_CONN_<ID> outside Airflow",
    )
    target.add_argument(
        "--base-url",
        default=None,
        help="API base URL, e.g. https://api.openai.com/v1; skips Airflow (key from --api-key-env)",
    )
    target.add_argument(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        help=f"environment variable holding the API key with --base-url (default {DEFAULT_API_KEY_ENV})",
    )
    target.add_argument("--gateway", default=None, help="gateway profile with --base-url (default openai)")
    target.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_pair,
        default=[],
        metavar="NAME=VALUE",
        help="extra header sent on every request with --base-url or --conn-json (repeatable); values of "
        "secret-looking names are masked",
    )
    target.add_argument(
        "--gateway-option",
        dest="gateway_options",
        action="append",
        type=_pair,
        default=[],
        metavar="EXTRA=VALUE",
        help="a connection extra with --base-url or --conn-json (repeatable), e.g. portkey_provider=openai, "
        "portkey_custom_host=https://api.openai.com/v1, portkey_config_secret=..., api_version=...",
    )
    target.add_argument(
        "--conn-json",
        default=None,
        metavar="JSON",
        help='a connection in Airflow\'s JSON form, e.g. \'{"host": "http://127.0.0.1:8787/v1", "extra": '
        '{"gateway": "portkey", ...}}\'; the key from "password" or --api-key-env; skips Airflow',
    )


def _add_upload_options(parser: argparse.ArgumentParser) -> None:
    options = parser.add_argument_group("upload options")
    options.add_argument(
        "--part-size",
        type=_size,
        default=DEFAULT_PART_SIZE_BYTES,
        help="bytes per part: 32MiB, 64MB or a byte count (64 KiB to 64 MiB; default "
        f"{DEFAULT_PART_SIZE_BYTES // 2**20}MiB)",
    )
    options.add_argument(
        "--concurrency",
        type=_concurrency,
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
    options.add_argument(
        "--single-request",
        action="store_true",
        help="upload with one POST /files request instead of the Uploads API (files up to 512 MB)",
    )
    options.add_argument(
        "--no-md5",
        dest="send_md5",
        action="store_false",
        help="do not send the md5 on complete (for a gateway that answers "
        "'Unrecognized request argument supplied: md5')",
    )
    options.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _settings_without_airflow(args: argparse.Namespace, command: str) -> ClientSettings:
    """Settings from --base-url or --conn-json plus the flags, read as the hook reads a connection."""
    from types import SimpleNamespace

    from airflow_provider_files.hooks.connection_settings import settings_from_connection

    fields: dict[str, Any] = {}
    if args.conn_json:
        try:
            fields = json.loads(args.conn_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--conn-json is not valid JSON: {exc.msg}") from None
        if not isinstance(fields, dict):
            raise ValueError("--conn-json must be a JSON object (host, password, extra ...)")
    extra = fields.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise ValueError(f"'extra' in --conn-json is not valid JSON: {exc.msg}") from None
    if not isinstance(extra, dict):
        raise ValueError("'extra' in --conn-json must be a JSON object")
    extra = dict(extra)
    if args.gateway:
        extra["gateway"] = args.gateway
    extra.update(dict(args.gateway_options))
    if args.headers:
        headers = extra.get("headers") or {}
        if isinstance(headers, str):
            headers = json.loads(headers)
        extra["headers"] = {**headers, **dict(args.headers)}
    api_key = fields.get("password") or os.environ.get(args.api_key_env)
    if not api_key and not extra.get("portkey_api_key"):
        raise ValueError(
            f"{'--conn-json' if args.conn_json else '--base-url'} needs the API key in the environment "
            f"variable {args.api_key_env}"
        )
    flag = "--base-url" if args.base_url else "--conn-json"
    conn = SimpleNamespace(
        conn_id=f"airflow-files {command} {flag}",
        host=args.base_url or fields.get("host"),
        schema=fields.get("schema"),
        port=fields.get("port"),
        password=api_key,
        extra_dejson=extra,
    )
    settings = settings_from_connection(conn)
    return replace(settings, context=f"airflow-files {command} {flag}")


def client_from_args(
    args: argparse.Namespace, max_connections: int, *, command: str = "upload"
) -> FilesClient:
    """The client of the options of :func:`add_connection_arguments`.

    :param command: the sub-command, named in the client's messages.
    :raises ValueError: the options contradict each other, the key or the connection is missing.
    """
    if args.base_url or args.conn_json:
        if args.files_conn_id:
            raise ValueError("give either --files-conn-id or --base-url/--conn-json, not both")
        if args.base_url and args.conn_json:
            raise ValueError("give either --base-url or --conn-json, not both")
        return FilesClient(_settings_without_airflow(args, command), max_connections=max_connections)
    if args.headers or args.gateway_options:
        raise ValueError(
            "--header and --gateway-option apply to --base-url or --conn-json; "
            "a connection sets them in its extras"
        )
    from airflow_provider_files.hooks.files import FilesHook

    hook = FilesHook(args.files_conn_id or DEFAULT_CONN_ID, max_connections=max_connections)
    try:
        return hook.client
    except FilesApiError:
        raise
    except Exception as exc:  # Airflow's AirflowNotFoundException and friends
        conn_id = hook.files_conn_id
        raise ValueError(
            f"cannot read connection {conn_id!r} ({exc}); outside Airflow define it with the "
            f"environment variable AIRFLOW_CONN_{conn_id.upper()}"
        ) from None


def _print_progress(progress: UploadProgress) -> None:
    print(
        f"upload: {progress.describe()} (part {progress.parts_done}/{progress.parts_total})",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def logging_to_stderr(quiet: bool) -> Iterator[None]:
    """The package's log lines on stderr for the duration of the command (undone afterwards, so
    running the command inside another program leaves its logging as it was)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    package = logging.getLogger("airflow_provider_files")
    httpx_logger = logging.getLogger("httpx")
    saved = (package.level, package.propagate, httpx_logger.level)
    package.addHandler(handler)
    package.setLevel(logging.WARNING if quiet else logging.INFO)
    package.propagate = False
    httpx_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.level, package.propagate = saved[0], saved[1]
        httpx_logger.setLevel(saved[2])


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
    profile = client.settings.profile
    if not args.single_request and not profile.supports_uploads:
        client.close()
        print(
            f"error: the '{profile.name}' gateway has no Uploads API{profile.uploads_hint}; "
            "use --single-request (one POST /files, files up to 512 MB)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        with client:
            file_dict = _upload(client, args)
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


def _upload(client: FilesClient, args: argparse.Namespace) -> dict[str, Any]:
    if args.single_request:
        single = SingleRequestUploader(
            client,
            expires_after_s=args.expires_after_s,
            checkpoint=JsonFileCheckpointStore(args.checkpoint, kind=SINGLE_CHECKPOINT_KIND)
            if args.checkpoint
            else None,
        )
        outcome = single.upload(
            args.path, purpose=args.purpose, filename=args.filename, mime_type=args.mime_type
        )
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
        checkpoint=JsonFileCheckpointStore(args.checkpoint) if args.checkpoint else None,
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
        result = uploader.upload(
            args.path, purpose=args.purpose, filename=args.filename, mime_type=args.mime_type
        )
    except UploadCancelledError:
        if interrupted.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    log.info(
        "uploaded %s as %s: %d parts sent, %d reused%s in %.1fs, md5 %s",
        args.path,
        result.file.id,
        result.parts_sent,
        result.parts_reused,
        " (file reused from the checkpoint)" if result.reused_file else "",
        result.elapsed_s,
        result.md5 or "not computed",
    )
    return result.file.to_dict()
