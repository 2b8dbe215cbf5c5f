"""Request plumbing shared by the handlers: the request context, body readers, JSON answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope

from airflow_provider_files.emulator.errors import ApiError, bad_request
from airflow_provider_files.emulator.multipart import (
    MultipartError,
    MultipartParser,
    PartSink,
    boundary_from_content_type,
)

if TYPE_CHECKING:
    from airflow_provider_files.emulator.flavours import Flavour

MAX_JSON_BODY_BYTES = 1024 * 1024


class ClientDisconnected(Exception):
    """The client went away while its request body was being read."""


@dataclass
class RequestContext:
    """What one request carries through the pipeline."""

    request_id: str
    scope: Scope
    raw_receive: Receive
    receive: Receive
    headers: dict[str, str]
    query: dict[str, str]
    flavour: Flavour | None = None
    bytes_received: int = 0

    @property
    def method(self) -> str:
        return str(self.scope["method"])


def json_response(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json")


def parse_query(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


class FileSink:
    """Streams one form field to a file, refusing more than ``limit_bytes``.

    :param path: where the bytes go (a generated id, never the client's name).
    :param limit_bytes: the size limit; exceeding it raises 413 at once.
    :param param: the field name, for the error.
    :param on_write: called with the size of every block once it is written.
    """

    def __init__(
        self, path: Path, limit_bytes: int, param: str, on_write: Callable[[int], None] | None = None
    ) -> None:
        self.path = path
        self.limit_bytes = limit_bytes
        self.param = param
        self.on_write = on_write
        self.size_bytes = 0
        self._handle = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in finish()/discard()

    def write(self, data: bytes | memoryview) -> None:
        self.size_bytes += len(data)
        if self.size_bytes > self.limit_bytes:
            raise ApiError(
                413,
                f"'{self.param}' is larger than the limit of {self.limit_bytes} bytes.",
                param=self.param,
            )
        self._handle.write(data)
        if self.on_write is not None:
            self.on_write(len(data))

    def finish(self) -> None:
        self._handle.close()

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


async def body_chunks(context: RequestContext) -> AsyncIterator[bytes]:
    while True:
        message = await context.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def read_json(context: RequestContext, allowed: frozenset[str]) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in body_chunks(context):
        size += len(chunk)
        if size > MAX_JSON_BODY_BYTES:
            raise ApiError(413, f"The JSON body is larger than {MAX_JSON_BODY_BYTES} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. The body must be a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The JSON body of the request must be an object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    return body


async def read_multipart(
    context: RequestContext, open_sink: Callable[[str, str | None, str | None], PartSink]
) -> None:
    try:
        parser = MultipartParser(
            boundary_from_content_type(context.headers.get("content-type", "")), open_sink
        )
        async for chunk in body_chunks(context):
            parser.feed(chunk)
        parser.close()
    except MultipartError as error:
        raise bad_request(f"Invalid multipart/form-data body: {error}") from None
