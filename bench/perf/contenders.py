"""One upload (or one batch-results download) per process, so that its peak RSS is its own:
``python -m bench.perf.contenders NAME ...``.

Prints one JSON object on stdout: ``elapsed_s`` (the upload call only, not interpreter start or
imports), ``file_id``, ``bytes`` and what the contender reported. The parent measures peak RSS
with ``os.wait4``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.connections import connection_env

PURPOSE_BINARY = "assistants"
MIME_BINARY = "application/octet-stream"
MIME_JSONL = "application/jsonl"


def _ours_settings(args: argparse.Namespace) -> Any:
    from airflow_provider_files.api import ClientSettings

    return ClientSettings(api_key=args.api_key, base_url=args.base_url, context="bench")


def ours_chunked(args: argparse.Namespace, *, send_md5: bool = True) -> dict[str, Any]:
    """The upload engine with its defaults, as ``ChunkedUploadOperator`` uses it."""
    from airflow_provider_files.api import FilesClient
    from airflow_provider_files.uploads import ChunkedUploader

    with FilesClient(_ours_settings(args)) as client:
        uploader = ChunkedUploader(client, send_md5=send_md5)
        started = time.perf_counter()
        result = uploader.upload(args.file, purpose=args.purpose, mime_type=args.mime_type)
        elapsed = time.perf_counter() - started
    return {
        "elapsed_s": elapsed,
        "file_id": result.file.id,
        "bytes": result.file.bytes,
        "parts": result.parts_total,
        "md5_sent": result.md5,
    }


def ours_chunked_without_md5(args: argparse.Namespace) -> dict[str, Any]:
    """The engine without computing and sending the md5 (the SDK sends none either)."""
    return ours_chunked(args, send_md5=False)


def ours_validate_upload(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the Batch JSONL file (all rules), then upload it with the engine, as the JSONL
    operator does; limits are widened so that a file above the API's 200 MB batch limit passes."""
    from airflow_provider_files.api import FilesClient
    from airflow_provider_files.jsonl import BatchLimits, ensure_valid_batch_file
    from airflow_provider_files.uploads import ChunkedUploader

    limits = BatchLimits(max_bytes=None, max_lines=None)
    with FilesClient(_ours_settings(args)) as client:
        uploader = ChunkedUploader(client)
        started = time.perf_counter()
        report = ensure_valid_batch_file(args.file, limits=limits)
        validated = time.perf_counter()
        result = uploader.upload(args.file, purpose=args.purpose, mime_type=args.mime_type)
        elapsed = time.perf_counter() - started
    return {
        "elapsed_s": elapsed,
        "validate_s": validated - started,
        "lines": report.lines,
        "file_id": result.file.id,
        "bytes": result.file.bytes,
    }


def sdk_chunked(args: argparse.Namespace) -> dict[str, Any]:
    """openai SDK ``uploads.upload_file_chunked``: sequential 64 MiB parts, each read into memory."""
    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
    started = time.perf_counter()
    upload = client.uploads.upload_file_chunked(
        file=Path(args.file), mime_type=args.mime_type, purpose=args.purpose
    )
    elapsed = time.perf_counter() - started
    client.close()
    assert upload.file is not None, f"upload {upload.id} ended {upload.status} without a file"
    return {"elapsed_s": elapsed, "file_id": upload.file.id, "bytes": upload.file.bytes}


def sdk_single(args: argparse.Namespace) -> dict[str, Any]:
    """openai SDK ``files.create`` with an open file handle (streamed by its multipart encoder)."""
    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
    started = time.perf_counter()
    with open(args.file, "rb") as handle:
        file = client.files.create(file=handle, purpose=args.purpose)
    elapsed = time.perf_counter() - started
    client.close()
    return {"elapsed_s": elapsed, "file_id": file.id, "bytes": file.bytes}


def _airflow_connection(conn_id: str, args: argparse.Namespace, conn_type: str = "openai_files") -> None:
    """Connection ``conn_id`` to the emulator, as an ``AIRFLOW_CONN_*`` variable of this process."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.update(connection_env(conn_id, args.base_url, args.api_key, conn_type=conn_type))


def _timed_upload_file(hook: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``hook.upload_file(path, purpose)``, timed (both hooks have that method)."""
    started = time.perf_counter()
    file = hook.upload_file(args.file, args.purpose)
    elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "file_id": file.id, "bytes": file.bytes}


def ours_hook_single(args: argparse.Namespace) -> dict[str, Any]:
    """``FilesHook.upload_file`` (one ``POST /files`` request) through an Airflow connection."""
    _airflow_connection("bench_files", args)
    from airflow_provider_files.hooks.files import FilesHook

    hook = FilesHook(files_conn_id="bench_files")
    hook.client  # noqa: B018 - connection lookup is not part of the upload
    return _timed_upload_file(hook, args)


def airflow_openai_hook_single(args: argparse.Namespace) -> dict[str, Any]:
    """``apache-airflow-providers-openai``'s ``OpenAIHook.upload_file``."""
    _airflow_connection("bench_openai", args, conn_type="openai")
    from airflow.providers.openai.hooks.openai import OpenAIHook

    hook = OpenAIHook(conn_id="bench_openai")
    hook.conn  # noqa: B018 - connection lookup is not part of the upload
    return _timed_upload_file(hook, args)


def ours_collect(args: argparse.Namespace) -> dict[str, Any]:
    """``collect_results`` through ``FilesHook``'s client: the output file streamed to the folder
    ``--file`` through the accounting, every ``custom_id`` of the input checked once."""
    _airflow_connection("bench_files", args)
    from airflow_provider_files.batches.collect import collect_results, output_name
    from airflow_provider_files.hooks.files import FilesHook

    hook = FilesHook(files_conn_id="bench_files")
    client = hook.client  # connection lookup is not part of the download
    dest = Path(args.file)
    (dest / "work").mkdir(parents=True, exist_ok=True)

    def open_dest(name: str) -> Any:
        return open(dest / name, "wb")

    started = time.perf_counter()
    batch = hook.get_batch(args.batch_id)
    collected = collect_results(client, batch, open_dest, work_dir=dest / "work")
    elapsed = time.perf_counter() - started
    summary = collected.summary
    written = dest / output_name(batch.id)
    return {
        "elapsed_s": elapsed,
        "bytes": written.stat().st_size,
        "lines": summary.output_lines + summary.error_lines,
        "duplicates": len(summary.duplicates),
        "missing": len(summary.missing),
        "problems": collected.problems(),
        "written_path": str(written),
    }


def sdk_content(args: argparse.Namespace) -> dict[str, Any]:
    """openai SDK: ``batches.retrieve``, ``files.content(output_file_id)`` written to a file, then
    ``json.loads`` per line and a set of the ``custom_id`` values."""
    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
    written = Path(args.file) / "output.jsonl"
    started = time.perf_counter()
    batch = client.batches.retrieve(args.batch_id)
    assert batch.output_file_id is not None
    content = client.files.content(batch.output_file_id)
    content.write_to_file(written)
    ids: set[str] = set()
    lines = 0
    for line in content.content.splitlines():
        if line:
            ids.add(json.loads(line)["custom_id"])
            lines += 1
    elapsed = time.perf_counter() - started
    client.close()
    return {
        "elapsed_s": elapsed,
        "bytes": len(content.content),
        "lines": lines,
        "duplicates": lines - len(ids),
        "written_path": str(written),
    }


def raw_download(args: argparse.Namespace) -> dict[str, Any]:
    """The ceiling: ``httpx`` streaming ``GET /files/{id}/content`` to ``/dev/null``, nothing else."""
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"}
    received = 0
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=300.0) as client:
        started = time.perf_counter()
        output_file_id = client.get(f"batches/{args.batch_id}").raise_for_status().json()["output_file_id"]
        with (
            client.stream("GET", f"files/{output_file_id}/content") as response,
            open(os.devnull, "wb") as sink,
        ):
            response.raise_for_status()
            for chunk in response.iter_raw():
                sink.write(chunk)
                received += len(chunk)
        elapsed = time.perf_counter() - started
    return {"elapsed_s": elapsed, "bytes": received}


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size (Linux ``VmHWM``), a cross-check of the outside figure."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


CONTENDERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "ours-chunked": ours_chunked,
    "ours-chunked-no-md5": ours_chunked_without_md5,
    "ours-validate-upload": ours_validate_upload,
    "sdk-chunked": sdk_chunked,
    "sdk-single": sdk_single,
    "ours-hook-single": ours_hook_single,
    "airflow-openai-hook-single": airflow_openai_hook_single,
    "ours-collect": ours_collect,
    "sdk-content": sdk_content,
    "raw-download": raw_download,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.contenders")
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--purpose", default=PURPOSE_BINARY)
    parser.add_argument("--mime-type", default=MIME_BINARY)
    parser.add_argument("--batch-id", default=None, help="the finished batch (batch-results contenders)")
    args = parser.parse_args(argv)
    outcome = CONTENDERS[args.contender](args)
    outcome["vm_hwm_bytes"] = peak_rss_bytes()
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
