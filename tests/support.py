"""Helpers shared by every test folder; fixtures live in ``conftest.py`` files.

Layout of ``tests/``: every folder is a package; a folder's shared helpers live in its
``support.py`` (imported as ``from .support import ...``), its fixtures in its ``conftest.py``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import httpx
import pytest
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from airflow_provider_files.emulator.testing import EmulatorHandle

DEFAULT_CONN_ID = "openai_files_default"
TEST_API_KEY = "sk-files-tests"


#: The most a deadline of a test is stretched on a loaded machine.
MAX_LOAD_FACTOR = 6.0


def request_routes(emulator: EmulatorHandle) -> list[str]:
    """The route of every request the emulator has logged, in order."""
    return [str(entry["route"]) for entry in emulator.request_log()]


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted."""
    return sorted(path for path in folder.rglob("*") if path.is_file())


def load_factor() -> float:
    """How much slower than on an idle machine things run now: the 1-minute load average per core,
    at least 1, at most :data:`MAX_LOAD_FACTOR` (1 where the load average is unknown)."""
    try:
        per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(max(per_core, 1.0), MAX_LOAD_FACTOR)


def load_scaled_s(seconds: float) -> float:
    """A deadline of ``seconds`` on an idle machine, stretched by :func:`load_factor`: for bounds on
    how long a whole test may take, never for what a test measures."""
    return seconds * load_factor()


def connection_variable(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class FilesConnection:
    """Defines Airflow connections through their ``AIRFLOW_CONN_*`` variables for one test.

    ``files_connection(emulator)`` points the default connection at an emulator (with its key);
    ``files_connection("https://host/v1", conn_id="x", password="sk-...", gateway="portkey")``
    sets host, key and extras; ``files_connection.define(conn_id, value)`` takes any JSON
    fields or a URI. Each call returns the connection id.

    :param monkeypatch: the test's monkeypatch, which removes the variables afterwards.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __call__(
        self,
        host: str | EmulatorHandle | None,
        *,
        conn_id: str = DEFAULT_CONN_ID,
        password: str | None = None,
        **extra: Any,
    ) -> str:
        if isinstance(host, EmulatorHandle):
            password = password or host.api_key
            host = host.base_url
        value: dict[str, Any] = {"password": password or TEST_API_KEY}
        if host is not None:
            value["host"] = host
        if extra:
            value["extra"] = extra
        return self.define(conn_id, value)

    def define(self, conn_id: str, value: str | Mapping[str, Any]) -> str:
        """Connection ``conn_id`` from a URI or JSON fields (``conn_type`` defaults to ``openai_files``)."""
        text = value if isinstance(value, str) else json.dumps({"conn_type": "openai_files", **value})
        self._monkeypatch.setenv(connection_variable(conn_id), text)
        return conn_id

    def remove(self, conn_id: str) -> str:
        """Make sure no connection ``conn_id`` is defined."""
        self._monkeypatch.delenv(connection_variable(conn_id), raising=False)
        return conn_id


# -- batches ----------------------------------------------------------------------------------------

CHAT_ENDPOINT: Final = "/v1/chat/completions"


def chat_request_line(custom_id: str, model: str = "gpt-4o-mini") -> bytes:
    """One Batch JSONL line for the chat completions endpoint."""
    body = {"model": model, "messages": [{"role": "user", "content": f"hello {custom_id}"}]}
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT_ENDPOINT, "body": body}
    return json.dumps(line).encode() + b"\n"


def chat_requests(count: int, prefix: str = "r") -> bytes:
    """``count`` chat completion requests, ids ``r0``, ``r1`` ..."""
    return b"".join(chat_request_line(f"{prefix}{i}") for i in range(count))


# Lines 2 and 3 break the rules: invalid JSON, a custom_id seen before.
BAD_REQUESTS = chat_request_line("a") + b"{not json\n" + chat_request_line("a") + chat_request_line("b")


def start_batch(conn_id: str, payload: bytes) -> str:
    """Upload ``payload`` and create a chat completions batch of it through a hook; the batch id."""
    from airflow_provider_files.hooks.files import FilesHook

    hook = FilesHook(conn_id)
    try:
        file_id = hook.upload_file(payload, "batch", filename="requests.jsonl").id
        return hook.create_batch(file_id, CHAT_ENDPOINT).id
    finally:
        hook.close()


# -- a server in front of the emulator that changes its answers -----------------------------------


@dataclass(frozen=True)
class ProxiedCall:
    """One request the proxy forwarded, and the answer it got (before any rewrite)."""

    method: str
    path: str
    body: bytes
    status: int
    answer: bytes


# rewrite(call) -> None (send the emulator's answer) or (status, JSON value) to send instead
Rewrite = Callable[[ProxiedCall], "tuple[int, Any] | None"]


class RewritingProxy:
    """A real HTTP server on 127.0.0.1 that forwards every request to an emulator and lets a test
    change the answers: a server (or gateway) that misreports sizes, refuses a field, or answers
    a complete with a cancelled upload. The request reaches the emulator unless ``refuse`` says
    otherwise. Use as a context manager; ``base_url`` replaces the emulator's.

    :param emulator: where requests go.
    :param rewrite: ``rewrite(call)``: ``None`` keeps the answer, ``(status, value)`` replaces it.
    :param refuse: ``refuse(method, path, body)``: ``(status, value)`` answered without forwarding.
    """

    def __init__(
        self,
        emulator: EmulatorHandle,
        rewrite: Rewrite | None = None,
        refuse: Callable[[str, str, bytes], tuple[int, Any] | None] | None = None,
    ) -> None:
        self.upstream = emulator.root_url
        self.rewrite = rewrite
        self.refuse = refuse
        self.calls: list[ProxiedCall] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _handle(self) -> None:
                body = self._body()
                refused = proxy.refuse(self.command, self.path, body) if proxy.refuse else None
                if refused is not None:
                    self._answer(refused[0], json.dumps(refused[1]).encode(), "application/json")
                    return
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() not in ("host", "content-length", "transfer-encoding", "connection")
                }
                with httpx.Client(base_url=proxy.upstream, timeout=60) as client:
                    answer = client.request(self.command, self.path, content=body, headers=headers)
                call = ProxiedCall(self.command, self.path, body, answer.status_code, answer.content)
                proxy.calls.append(call)
                changed = proxy.rewrite(call) if proxy.rewrite else None
                if changed is None:
                    content_type = answer.headers.get("content-type", "application/json")
                    self._answer(answer.status_code, answer.content, content_type)
                else:
                    self._answer(changed[0], json.dumps(changed[1]).encode(), "application/json")

            def _answer(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def api_error(message: str, param: str | None = None) -> dict[str, Any]:
    """An error body in the API's shape."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


class RangeCountingFileSystem(AbstractFileSystem):
    """An in-memory fsspec filesystem that behaves like S3 for reads and counts what it serves.

    ``cat_file(path, start, end)`` answers exactly that range (as one ranged GET would); ``open``
    gives a buffered handle that, like s3fs's, reads ahead in blocks of
    :attr:`blocksize` (50 MiB, s3fs's default). ``bytes_fetched`` and ``requests`` add up both.
    """

    protocol = "countingrange"
    blocksize = 50 * 1024 * 1024
    cachable = False  # a fresh instance per test, not fsspec's cached one

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.objects: dict[str, bytes] = {}
        self.bytes_fetched = 0
        self.requests = 0
        #: a read of any byte from here on fails, as a connection reset mid-object would
        self.fail_from_byte: int | None = None
        #: a read of any byte from here on waits until ``released`` is set (30 s at most)
        self.hold_from_byte: int | None = None
        self.released = threading.Event()
        self._lock = threading.Lock()

    def fetched(self, start: int, end: int, path: str) -> bytes:
        if self.hold_from_byte is not None and end > self.hold_from_byte and not self.released.wait(30):
            raise TimeoutError(f"bytes {start}-{end - 1} were held and never released")
        if self.fail_from_byte is not None and end > self.fail_from_byte:
            raise ConnectionResetError(f"connection reset by peer reading bytes {start}-{end - 1}")
        data = self.objects[self._strip_protocol(path)][start:end]
        with self._lock:
            self.bytes_fetched += len(data)
            self.requests += 1
        return data

    def reset_counts(self) -> None:
        with self._lock:
            self.bytes_fetched = self.requests = 0

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        self.objects[self._strip_protocol(path)] = bytes(value)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        key = self._strip_protocol(path)
        if key not in self.objects:
            if any(name.startswith(key.rstrip("/") + "/") for name in self.objects):
                return {"name": key, "size": 0, "type": "directory"}
            raise FileNotFoundError(path)
        data = self.objects[key]
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return {"name": key, "size": len(data), "type": "file", "ETag": etag}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        prefix = self._strip_protocol(path).rstrip("/") + "/"
        names = [name for name in self.objects if name.startswith(prefix)]
        return [self.info(name) for name in names] if detail else names

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        size = len(self.objects[self._strip_protocol(path)])
        return self.fetched(start or 0, size if end is None else end, path)

    def _open(
        self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any
    ) -> AbstractBufferedFile:
        if mode != "rb":
            raise NotImplementedError("read-only")
        return _CountingFile(self, path, mode, block_size=block_size or self.blocksize, **kwargs)


class _CountingFile(AbstractBufferedFile):
    def _fetch_range(self, start: int, end: int) -> bytes:
        fs = cast(RangeCountingFileSystem, self.fs)
        return fs.fetched(start, end, self.path)
