"""Shared helpers of the API-layer tests (imported by the test modules of this folder)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx

from airflow_provider_files.api import ClientSettings
from airflow_provider_files.api.gateways import USER_AGENT


@dataclass(frozen=True)
class FormPart:
    """One part of a ``multipart/form-data`` body as the server sees it."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(request: httpx.Request) -> list[FormPart]:
    """Split a multipart request body into its parts, checking the framing on the way."""
    content_type = request.headers["content-type"]
    prefix = "multipart/form-data; boundary="
    assert content_type.startswith(prefix), content_type
    boundary = content_type[len(prefix) :].encode()
    body = request.content
    if "content-length" in request.headers:
        assert request.headers["content-length"] == str(len(body))
    else:  # a stream of unknown length
        assert request.headers["transfer-encoding"] == "chunked"
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    inner = body[len(boundary) + 4 : -(len(boundary) + 8)]
    parts = []
    for raw in inner.split(b"\r\n--" + boundary + b"\r\n"):
        head, _, data = raw.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers["content-disposition"]
        params = {}
        for item in disposition.split(";")[1:]:
            key, _, value = item.strip().partition("=")
            params[key] = value.strip('"')
        parts.append(FormPart(params["name"], params.get("filename"), headers.get("content-type"), data))
    return parts


@dataclass
class Recorder:
    """A ``MockTransport`` handler that keeps every request (body read) and answers with ``respond``."""

    respond: Callable[[httpx.Request], httpx.Response]
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append(request)
        self.bodies.append(body)
        return self.respond(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def last(self) -> httpx.Request:
        assert self.requests, "no request was sent"
        return self.requests[-1]


Reply = Callable[[bytes, threading.Event], Iterator[bytes]]


class RawHttpServer:
    """A tiny server on 127.0.0.1 that answers each connection with the bytes ``reply`` yields.

    ``reply(request, stop)`` gets what the client sent (the request head and body, or a TLS
    hello) and yields the answer chunk by chunk, pausing as it likes (a trickling server sleeps
    between chunks and ends when ``stop`` is set). The connection is closed after the reply.
    Use as a context manager; ``port``, ``connections`` and ``sent_bytes`` tell what happened.

    :param reply: the answer of every connection.
    """

    def __init__(self, reply: Reply) -> None:
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        self.sent_bytes = 0
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> RawHttpServer:
        accepter = threading.Thread(target=self._accept, daemon=True)
        accepter.start()
        self._threads.append(accepter)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)  # closing the socket does not wake accept(): look at stop often
        while not self.stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                request = _read_request(connection)
                for chunk in self._reply(request, self.stop):
                    connection.sendall(chunk)
                    self.sent_bytes += len(chunk)
            except OSError:  # the client hung up: what a client under test is expected to do
                return


def _read_request(connection: socket.socket) -> bytes:
    """The request head and body (by its Content-Length), or the first bytes of anything else."""
    data = connection.recv(65536)
    if not data[:1].isalpha():  # not HTTP (a TLS hello): answer at once
        return data
    while b"\r\n\r\n" not in data:
        more = connection.recv(65536)
        if not more:
            return data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        more = connection.recv(65536)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


def http_head(
    status: str = "200 OK", content_type: str = "application/json", length: int | None = None
) -> bytes:
    """A response head that closes the connection after the body."""
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle(data: bytes, interval_s: float, stop: threading.Event) -> Iterator[bytes]:
    """``data`` one byte at a time, ``interval_s`` apart, until it ends or ``stop`` is set."""
    for byte in data:
        if stop.wait(interval_s):
            return
        yield bytes([byte])


# -- what each gateway profile puts on the wire (the request-shape tests of files and batches) --

KEY = "sk-test-0123456789abcdef"


@dataclass(frozen=True)
class Expected:
    """What one profile must put on the wire."""

    settings: ClientSettings
    origin: str  # scheme://host[:port]
    root: str  # path prefix before /files or /uploads
    auth: tuple[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    absent_headers: tuple[str, ...] = ()
    query: dict[str, str] = field(default_factory=dict)
    slash: str = ""
    paginates: bool = True
    uploads: bool = True
    create_status: int = 200


PROFILES: dict[str, Expected] = {
    "openai": Expected(
        ClientSettings(api_key=KEY, organization="org-42", project="proj_7"),
        "https://api.openai.com",
        "/v1",
        ("authorization", f"Bearer {KEY}"),
        headers={"openai-organization": "org-42", "openai-project": "proj_7"},
        absent_headers=("api-key", "x-portkey-api-key"),
    ),
    "azure": Expected(
        ClientSettings(api_key=KEY, gateway="azure", base_url="https://my-res.openai.azure.com"),
        "https://my-res.openai.azure.com",
        "/openai",
        ("api-key", KEY),
        absent_headers=("authorization",),
        query={"api-version": "2024-10-21"},
        paginates=False,
        create_status=201,
    ),
    "portkey": Expected(
        ClientSettings(
            api_key=KEY,
            gateway="portkey",
            portkey_provider="openai",
            portkey_virtual_key="vk-secret-portkey-9",
            portkey_config="pc-cfg-1",
        ),
        "https://api.portkey.ai",
        "/v1",
        ("x-portkey-api-key", KEY),
        headers={
            "x-portkey-provider": "openai",
            "x-portkey-virtual-key": "vk-secret-portkey-9",
            "x-portkey-config": "pc-cfg-1",
        },
        absent_headers=("authorization", "api-key"),
    ),
    "respan": Expected(
        ClientSettings(api_key=KEY, gateway="respan"),
        "https://api.respan.ai",
        "/api",
        ("authorization", f"Bearer {KEY}"),
        slash="/",
        paginates=False,
        uploads=False,
    ),
    "litellm": Expected(
        ClientSettings(
            api_key=KEY, gateway="litellm", base_url="http://127.0.0.1:4000/v1", litellm_provider="azure"
        ),
        "http://127.0.0.1:4000",
        "/v1",
        ("authorization", f"Bearer {KEY}"),
        headers={"custom-llm-provider": "azure"},
        paginates=False,
        uploads=False,
    ),
    "custom": Expected(
        ClientSettings(
            api_key=KEY,
            gateway="custom",
            base_url="https://llm.example.test/gw/openai/v1/",
            headers={"X-Tenant": "team-a", "X-Gateway-Token": "tok-secret-xyz"},
        ),
        "https://llm.example.test",
        "/gw/openai/v1",
        ("authorization", f"Bearer {KEY}"),
        headers={"x-tenant": "team-a", "x-gateway-token": "tok-secret-xyz"},
    ),
}


def check_request(
    request: httpx.Request,
    expected: Expected,
    method: str,
    route: str,
    query: dict[str, str] | None = None,
) -> None:
    """Method, URL (origin, path, exact query) and the headers every call carries."""
    assert request.method == method
    url = request.url
    assert f"{url.scheme}://{url.netloc.decode()}" == expected.origin
    assert url.path == expected.root + route + expected.slash
    params = list(url.params.multi_items())
    assert sorted(params) == sorted({**expected.query, **(query or {})}.items())
    headers = request.headers
    auth_name, auth_value = expected.auth
    assert headers.get(auth_name) == auth_value
    for name, value in expected.headers.items():
        assert headers.get(name) == value, name
    for name in expected.absent_headers:
        assert name not in headers, name
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("airflow-provider-files/")
