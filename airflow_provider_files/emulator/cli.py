"""``airflow-files emulator``: run the local Files/Uploads/Batches API emulator.

Also reachable as ``python -m airflow_provider_files.emulator`` with the same options.
Prints one line with the base URL once it listens; stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from airflow_provider_files.emulator.config import (
    DEFAULT_BATCH_DURATION_S,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PART_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_UPLOAD_EXPIRY_S,
    EmulatorConfig,
)
from airflow_provider_files.emulator.faults import FaultPlan, FaultSpecError
from airflow_provider_files.emulator.protocol import uvicorn_http_options

STARTUP_POLL_S = 0.01
GRACEFUL_SHUTDOWN_S = 3


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default 8000)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where stored bytes go (default: a temp dir)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("AIRFLOW_FILES_EMULATOR_API_KEY"),
        help="the only accepted key (default: any non-empty key; env AIRFLOW_FILES_EMULATOR_API_KEY)",
    )
    parser.add_argument(
        "--faults", default="", metavar="SPEC", help="fault spec, e.g. '429=0.1,parts:drop=0.05'"
    )
    parser.add_argument("--fault-seed", type=int, default=None, help="seed of the fault dice")
    parser.add_argument(
        "--bandwidth-per-connection",
        type=float,
        default=None,
        metavar="MBPS",
        help="cap each TCP connection at MBPS megabytes (10**6 bytes) per second, both directions",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="added to every response")
    parser.add_argument(
        "--processing-delay-s",
        type=float,
        default=0.0,
        metavar="S",
        help="how long a new file stays 'uploaded' before 'processed' (default 0)",
    )
    parser.add_argument("--max-file-bytes", type=int, default=DEFAULT_MAX_FILE_BYTES)
    parser.add_argument("--max-upload-bytes", type=int, default=DEFAULT_MAX_UPLOAD_BYTES)
    parser.add_argument("--max-part-bytes", type=int, default=DEFAULT_MAX_PART_BYTES)
    parser.add_argument("--upload-expiry-s", type=float, default=DEFAULT_UPLOAD_EXPIRY_S)
    parser.add_argument(
        "--validate-batch",
        action="store_true",
        help="check purpose=batch files line by line and mark invalid ones 'error'",
    )
    batches = parser.add_argument_group("batches")
    batches.add_argument(
        "--batch-duration-s",
        type=float,
        default=DEFAULT_BATCH_DURATION_S,
        metavar="S",
        help="time from a batch's creation to 'completed': validating 10%%, in_progress 80%%, "
        f"finalizing 10%%; cancelling takes 10%% of it (default {DEFAULT_BATCH_DURATION_S:g})",
    )
    batches.add_argument(
        "--batch-request-error-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="share (0..1) of each batch's requests that land in the error file with a retryable "
        "error (429 rate_limit_exceeded or 500 server_error), drawn per custom_id (default 0)",
    )
    batches.add_argument(
        "--batch-seed", type=int, default=0, help="seed of the per-request error draw (default 0)"
    )
    batches.add_argument(
        "--batch-expire-after-s",
        type=float,
        default=None,
        metavar="S",
        help="a batch still running S seconds after creation becomes 'expired': finished requests "
        "in the output file, the rest in the error file as batch_expired (default: the 24h window)",
    )
    batches.add_argument(
        "--batch-enqueued-token-limit",
        type=int,
        default=None,
        metavar="TOKENS",
        help="enqueued-token limit per model (input tokens estimated as line bytes / 4): a batch "
        "over it fails validation with token_limit_exceeded (default: no limit)",
    )
    parser.add_argument(
        "--enable-introspection",
        action="store_true",
        help="serve the test-only /_emulator/... routes (request log, stats, faults, reset)",
    )
    parser.add_argument(
        "--port-file", type=Path, default=None, help="write the bound port here once listening"
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator settings the parsed options describe.

    :raises ValueError: for a bad fault spec or a non-positive limit, naming it.
    """
    try:
        FaultPlan.parse(args.faults, args.fault_seed)
    except FaultSpecError as error:
        raise ValueError(f"--faults: {error}") from None
    for option in ("max_file_bytes", "max_upload_bytes", "max_part_bytes", "upload_expiry_s"):
        if getattr(args, option) <= 0:
            raise ValueError(f"--{option.replace('_', '-')} must be positive")
    if args.batch_duration_s < 0:
        raise ValueError("--batch-duration-s must not be negative")
    if not 0 <= args.batch_request_error_rate <= 1:
        raise ValueError("--batch-request-error-rate must be between 0 and 1")
    if args.batch_expire_after_s is not None and args.batch_expire_after_s <= 0:
        raise ValueError("--batch-expire-after-s must be positive")
    if args.batch_enqueued_token_limit is not None and args.batch_enqueued_token_limit <= 0:
        raise ValueError("--batch-enqueued-token-limit must be positive")
    if args.bandwidth_per_connection is not None and args.bandwidth_per_connection <= 0:
        raise ValueError("--bandwidth-per-connection must be positive")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="airflow-files-emulator-"))
    return EmulatorConfig(
        data_dir=Path(data_dir),
        api_key=args.api_key or None,
        max_file_bytes=args.max_file_bytes,
        max_upload_bytes=args.max_upload_bytes,
        max_part_bytes=args.max_part_bytes,
        upload_expiry_s=args.upload_expiry_s,
        processing_delay_s=args.processing_delay_s,
        latency_ms=args.latency_ms,
        bandwidth_per_connection_mbps=args.bandwidth_per_connection,
        validate_batch=args.validate_batch,
        batch_duration_s=args.batch_duration_s,
        batch_request_error_rate=args.batch_request_error_rate,
        batch_seed=args.batch_seed,
        batch_expire_after_s=args.batch_expire_after_s,
        batch_enqueued_token_limit=args.batch_enqueued_token_limit,
        enable_introspection=args.enable_introspection,
        faults=args.faults,
        fault_seed=args.fault_seed,
    )


class _Stopped(BaseException):
    """Raised by the signal handlers once uvicorn has shut down."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stopped


def run(args: argparse.Namespace) -> int:
    """Run the emulator until SIGINT/SIGTERM; returns the process exit code."""
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"airflow-files emulator: {error}", file=sys.stderr)
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)
    temporary_data_dir = args.data_dir is None
    loop = _new_event_loop()
    # uvicorn handles SIGINT/SIGTERM (graceful shutdown), then re-raises the signal with the
    # previous handlers in place; these turn that into a normal exit.
    previous = {signum: signal.signal(signum, _raise_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return loop.run_until_complete(serve(config, args.host, args.port, args.port_file))
    except _Stopped:
        return 0
    finally:
        _close_loop(loop)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if temporary_data_dir:
            shutil.rmtree(config.data_dir, ignore_errors=True)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when installed, else asyncio's (``asyncio.Runner`` needs Python 3.11)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop``, let it finish, and close the loop."""
    try:
        remaining = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in remaining:
            task.cancel()
        if remaining:
            loop.run_until_complete(asyncio.gather(*remaining, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def serve(config: EmulatorConfig, host: str, port: int, port_file: Path | None = None) -> int:
    """Serve until uvicorn is told to stop; prints the base URL and writes ``port_file`` when ready."""
    import uvicorn

    from airflow_provider_files.emulator.server import EmulatorApp

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        print(f"airflow-files emulator: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            EmulatorApp(config),
            log_level="warning",
            access_log=False,
            # httptools when installed (fastest), else h11; both with a bounded request head
            **uvicorn_http_options(),
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            server_header=False,
        )
    )
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return 1
        await asyncio.sleep(STARTUP_POLL_S)
    if port_file is not None:
        temporary = port_file.with_name(port_file.name + ".tmp")
        temporary.write_text(str(bound_port))
        temporary.replace(port_file)
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"Files API emulator listening on http://{url_host}:{bound_port}/v1", flush=True)
    await task
    return 0
