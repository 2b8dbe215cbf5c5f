"""Shared helpers of the API-layer tests (imported by the test modules of this folder)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


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
