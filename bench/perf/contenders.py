"""One upload (or one batch-results download) per process, so that its peak RSS is its own:
``python -m bench.perf.contenders NAME ...``.

Prints one JSON object on stdout: ``elapsed_s`` (the upload call only, not interpreter start or
imports), ``call_cpu_s`` (user + system CPU seconds of the call, every thread and waited-for child
included), ``file_id``, ``bytes`` and what the contender reported. The parent measures peak RSS.

Two contenders are whole processes instead, timed by the parent from process start to the JSON
printed (:func:`whole_process_command`): ``ours-cli`` (``airflow-files upload`` through an
``AIRFLOW_CONN_*`` connection) and ``sdk-script`` (:mod:`bench.perf.sdk_script`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.connections import connection_env

PURPOSE_BINARY = "assistants"
MIME_BINARY = "application/octet-stream"
MIME_JSONL = "application/jsonl"


def _cpu_s() -> float:
    """User + system CPU seconds of this process (all threads) and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def _stopwatch() -> Iterator[dict[str, float]]:
    """Fills ``elapsed_s`` (wall) and ``call_cpu_s`` (CPU) of the block into the dict it yields."""
    figures: dict[str, float] = {}
    started, cpu = time.perf_counter(), _cpu_s()
    yield figures
    figures["elapsed_s"] = time.perf_counter() - started
    figures["call_cpu_s"] = round(_cpu_s() - cpu, 3)


def _ours_settings(args: argparse.Namespace) -> Any:
    from airflow_provider_files.api import ClientSettings

    return ClientSettings(api_key=args.api_key, base_url=args.base_url, context="bench")


def ours_chunked(args: argparse.Namespace, *, send_md5: bool = True) -> dict[str, Any]:
    """The upload engine with its defaults, as ``ChunkedUploadOperator`` uses it."""
    from airflow_provider_files.api import FilesClient
    from airflow_provider_files.uploads import ChunkedUploader

    with FilesClient(_ours_settings(args)) as client:
        uploader = ChunkedUploader(client, send_md5=send_md5)
        with _stopwatch() as timing:
            result = uploader.upload(args.file, purpose=args.purpose, mime_type=args.mime_type)
    return {
        **timing,
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
    operator does: the md5 taken while validating is sent on complete, so the upload does not hash
    the file again. Limits are widened so that a file above the API's 200 MB batch limit passes."""
    from airflow_provider_files.api import FilesClient
    from airflow_provider_files.jsonl import BatchLimits, ensure_valid_batch_file
    from airflow_provider_files.uploads import ChunkedUploader

    limits = BatchLimits(max_bytes=None, max_lines=None)
    with FilesClient(_ours_settings(args)) as client:
        uploader = ChunkedUploader(client)
        with _stopwatch() as timing:
            started = time.perf_counter()
            report = ensure_valid_batch_file(args.file, limits=limits)
            validated = time.perf_counter()
            result = uploader.upload(
                args.file, purpose=args.purpose, mime_type=args.mime_type, expected_md5=report.md5
            )
    return {
        **timing,
        "validate_s": validated - started,
        "lines": report.lines,
        "file_id": result.file.id,
        "bytes": result.file.bytes,
    }


def sdk_chunked(args: argparse.Namespace) -> dict[str, Any]:
    """openai SDK ``uploads.upload_file_chunked``: sequential 64 MiB parts, each read into memory."""
    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
    with _stopwatch() as timing:
        upload = client.uploads.upload_file_chunked(
            file=Path(args.file), mime_type=args.mime_type, purpose=args.purpose
        )
    client.close()
    assert upload.file is not None, f"upload {upload.id} ended {upload.status} without a file"
    return {**timing, "file_id": upload.file.id, "bytes": upload.file.bytes}


def md5_alone(args: argparse.Namespace) -> dict[str, Any]:
    """The md5 of the file and nothing else (1 MiB reads): what hashing costs on this machine."""
    digest = hashlib.md5(usedforsecurity=False)
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    with _stopwatch() as timing, open(args.file, "rb", buffering=0) as source:
        while count := source.readinto(buffer):
            digest.update(view[:count])
    return {**timing, "md5": digest.hexdigest(), "bytes": os.path.getsize(args.file)}


def raw_upload(args: argparse.Namespace) -> dict[str, Any]:
    """The ceiling: the Uploads API driven over plain sockets, each part's bytes handed to the
    kernel with ``os.sendfile`` from the page cache, the engine's part size and number of
    connections, and nothing else (no md5, no retries, no checkpoint, no progress)."""
    from airflow_provider_files.uploads import DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE_BYTES

    size = os.path.getsize(args.file)
    parts = [
        (offset, min(DEFAULT_PART_SIZE_BYTES, size - offset))
        for offset in range(0, size, DEFAULT_PART_SIZE_BYTES)
    ]
    with _stopwatch() as timing:
        raw = _RawUploads(args.base_url, args.api_key)
        upload = raw.call("POST", "/uploads", {
            "filename": Path(args.file).name, "purpose": args.purpose, "bytes": size, "mime_type": args.mime_type,
        })  # fmt: skip
        part_ids = raw.send_parts(upload["id"], args.file, parts, DEFAULT_CONCURRENCY)
        done = raw.call("POST", f"/uploads/{upload['id']}/complete", {"part_ids": part_ids})
    return {**timing, "file_id": done["file"]["id"], "bytes": done["file"]["bytes"], "parts": len(parts)}


class _RawUploads:
    """Just enough HTTP/1.1 for :func:`raw_upload` (``http.client``, one connection per thread)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        from urllib.parse import urlsplit

        url = urlsplit(base_url)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        self._prefix = url.path.rstrip("/")
        self._auth = f"Bearer {api_key}"

    def _connection(self) -> Any:
        import http.client

        return http.client.HTTPConnection(self._host, self._port, timeout=600)

    def call(self, method: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        connection = self._connection()
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        connection.request(method, self._prefix + path, body=json.dumps(payload).encode(), headers=headers)
        return self._answer(connection)

    @staticmethod
    def _answer(connection: Any) -> dict[str, Any]:
        response = connection.getresponse()
        body = response.read()
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status}: {body[:300]!r}")
        return dict(json.loads(body))

    def send_parts(
        self, upload_id: str, path: str, parts: list[tuple[int, int]], connections: int
    ) -> list[str]:
        ids: list[str] = [""] * len(parts)
        queue = iter(range(len(parts)))
        lock = threading.Lock()
        failures: list[BaseException] = []

        def take() -> int | None:
            with lock:
                return next(queue, None)

        def sender() -> None:
            connection = self._connection()
            try:
                with open(path, "rb") as source:
                    while (index := take()) is not None and not failures:
                        ids[index] = self._send_part(connection, upload_id, source, *parts[index])
            except BaseException as error:  # reported by the caller
                failures.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=sender) for _ in range(min(connections, len(parts)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return ids

    def _send_part(self, connection: Any, upload_id: str, source: Any, offset: int, length: int) -> str:
        boundary = os.urandom(12).hex()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="part"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        connection.putrequest("POST", f"{self._prefix}/uploads/{upload_id}/parts")
        connection.putheader("Authorization", self._auth)
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(head) + length + len(tail)))
        connection.endheaders()
        sock = connection.sock
        sock.sendall(head)
        sock.sendfile(source, offset, length)  # os.sendfile underneath, waiting when the socket is full
        sock.sendall(tail)
        return str(self._answer(connection)["id"])


def sdk_single(args: argparse.Namespace) -> dict[str, Any]:
    """openai SDK ``files.create`` with an open file handle (streamed by its multipart encoder)."""
    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)
    with _stopwatch() as timing, open(args.file, "rb") as handle:
        file = client.files.create(file=handle, purpose=args.purpose)
    client.close()
    return {**timing, "file_id": file.id, "bytes": file.bytes}


def _airflow_connection(conn_id: str, args: argparse.Namespace, conn_type: str = "openai_files") -> None:
    """Connection ``conn_id`` to the emulator, as an ``AIRFLOW_CONN_*`` variable of this process."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.update(connection_env(conn_id, args.base_url, args.api_key, conn_type=conn_type))


def _timed_upload_file(hook: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``hook.upload_file(path, purpose)``, timed (both hooks have that method)."""
    with _stopwatch() as timing:
        file = hook.upload_file(args.file, args.purpose)
    return {**timing, "file_id": file.id, "bytes": file.bytes}


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
    "md5-alone": md5_alone,
    "raw-upload": raw_upload,
    "sdk-single": sdk_single,
    "ours-hook-single": ours_hook_single,
    "airflow-openai-hook-single": airflow_openai_hook_single,
    "ours-collect": ours_collect,
    "sdk-content": sdk_content,
    "raw-download": raw_download,
}


#: The CLI's connection in the ``ours-cli`` process's environment.
CLI_CONN_ID = "bench_cli"
#: Contenders run as whole processes (start to JSON printed), each a command of its own.
WHOLE_PROCESS_CONTENDERS = ("ours-cli", "sdk-script")


def whole_process_command(
    name: str, *, base_url: str, api_key: str, file: str, purpose: str, mime_type: str, airflow_home: Path
) -> tuple[list[str], dict[str, str]]:
    """The command of a whole-process contender and the variables to add to its environment."""
    if name == "ours-cli":
        script = Path(sys.executable).with_name("airflow-files")
        start = [str(script)] if script.exists() else [sys.executable, "-m", "airflow_provider_files.cli"]
        command = [
            *start, "upload", file, "--purpose", purpose, "--mime-type", mime_type,
            "--files-conn-id", CLI_CONN_ID, "--quiet",
        ]  # fmt: skip
        env = {"AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        return command, {**env, **connection_env(CLI_CONN_ID, base_url, api_key)}
    if name == "sdk-script":
        script = Path(__file__).with_name("sdk_script.py")
        command = [sys.executable, str(script), file, "--purpose", purpose, "--mime-type", mime_type]
        return command, {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": api_key}
    raise ValueError(f"{name} is not a whole-process contender")


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
