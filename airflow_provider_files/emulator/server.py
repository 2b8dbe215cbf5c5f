"""The emulator's ASGI application (Starlette request/response types on uvicorn).

One instance holds one :class:`~airflow_provider_files.emulator.store.Store`; the flavours of
:mod:`~airflow_provider_files.emulator.flavours` only change paths, auth and response shapes.
Around every API request it applies, in this order: routing, auth, the fault decision (before
any side effect), the handler, the ``drop_after`` fault, added latency, and the per-connection
bandwidth cap on request and response bodies.
"""

from __future__ import annotations

import asyncio
import collections
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from airflow_provider_files.emulator.batch_api import BatchRoutes
from airflow_provider_files.emulator.batches import BatchStore
from airflow_provider_files.emulator.config import (
    FILE_EXPIRY_MAX_S,
    FILE_EXPIRY_MIN_S,
    RUNTIME_SETTINGS,
    EmulatorConfig,
)
from airflow_provider_files.emulator.errors import ApiError, bad_request
from airflow_provider_files.emulator.faults import FaultPlan, FaultSpecError
from airflow_provider_files.emulator.flavours import Flavour, PortkeyHeaderError, match_route
from airflow_provider_files.emulator.multipart import (
    MultipartError,
    MultipartParser,
    PartSink,
    TextSink,
    boundary_from_content_type,
)
from airflow_provider_files.emulator.store import FILE_PURPOSES, UPLOAD_PURPOSES, Store

MAX_JSON_BODY_BYTES = 1024 * 1024
CONTENT_CHUNK_BYTES = 1024 * 1024
REQUEST_LOG_MAX_ENTRIES = 100_000
MAX_TRACKED_CONNECTIONS = 4096
# Sleeping for less than this is not worth a timer; the debt is carried to the next chunk.
MIN_THROTTLE_SLEEP_S = 0.004
BYTES_PER_MEGABYTE = 1_000_000
ADMIN_PREFIX = "/_emulator"

# Header values that are safe to show in the request log; every other value is left out.
LOGGED_HEADER_VALUES = frozenset(
    {
        "accept",
        "content-type",
        "content-length",
        "transfer-encoding",
        "user-agent",
        "openai-organization",
        "openai-project",
        "x-portkey-provider",
        "x-portkey-trace-id",
        "custom-llm-provider",
        "x-stainless-retry-count",
        "idempotency-key",
    }
)

FILE_FIELDS = frozenset({"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"})
CREATE_UPLOAD_FIELDS = frozenset({"filename", "purpose", "bytes", "mime_type", "expires_after"})
COMPLETE_FIELDS = frozenset({"part_ids", "md5"})


class ClientDisconnected(Exception):
    """The client went away while its request body was being read."""


@dataclass
class Connection:
    """Per-TCP-connection state for the bandwidth cap."""

    next_free_at: float = 0.0
    last_used_at: float = field(default_factory=time.monotonic)


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


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json")


def _parse_query(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


class FileSink:
    """Streams one form field to a file, refusing more than ``limit_bytes``.

    :param path: where the bytes go (a generated id, never the client's name).
    :param limit_bytes: the size limit; exceeding it raises 413 at once.
    :param param: the field name, for the error.
    """

    def __init__(self, path: Path, limit_bytes: int, param: str) -> None:
        self.path = path
        self.limit_bytes = limit_bytes
        self.param = param
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

    def finish(self) -> None:
        self._handle.close()

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


class EmulatorApp:
    """The ASGI application.

    :param config: settings; the runtime ones may be changed through ``/_emulator/config``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config)
        self.batches = BatchStore(self.store)
        self.batch_routes = BatchRoutes(self.batches, self._json_body)
        self.faults = FaultPlan.parse(config.faults, config.fault_seed)
        self.request_log: collections.deque[dict[str, object]] = collections.deque(
            maxlen=REQUEST_LOG_MAX_ENTRIES
        )
        self.body_bytes_received = 0
        self._connections: dict[tuple[str, int], Connection] = {}
        self._prepared = False

    # -- ASGI entry -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self._prepared:
            self.store.prepare()
            self._prepared = True
        connection = self._connection(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        context = RequestContext(
            request_id="req_" + secrets.token_hex(16),
            scope=scope,
            raw_receive=receive,
            receive=receive,
            headers=headers,
            query=_parse_query(scope.get("query_string", b"")),
        )
        context.receive = self._counting_receive(context, connection)
        path: str = scope["path"]
        if path == ADMIN_PREFIX + "/health" or (
            path.startswith(ADMIN_PREFIX + "/") and self.config.enable_introspection
        ):
            response = await self._admin(context, path[len(ADMIN_PREFIX) :])
            await self._send(context, response, send, connection)
            return
        await self._api(context, send, connection)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.store.prepare()
                self._prepared = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _api(self, context: RequestContext, send: Send, connection: Connection) -> None:
        started = time.monotonic()
        entry: dict[str, object] = {
            "request_id": context.request_id,
            "time": time.time(),
            "method": context.method,
            "path": context.scope["path"],
            "query": dict(context.query),
            "route": None,
            "flavour": None,
            "headers": sorted(context.headers),
            "header_values": {k: v for k, v in context.headers.items() if k in LOGGED_HEADER_VALUES},
            "status": None,
            "bytes_received": 0,
            "fault": None,
            "connection": ":".join(str(item) for item in (context.scope.get("client") or ("?", 0))),
        }
        self.request_log.append(entry)
        fault: str | None = None
        route: str | None = None
        try:
            matched = match_route(context.scope["path"])
            if matched is None:
                raise ApiError(404, f"Invalid URL ({context.method} {context.scope['path']})")
            flavour, route_kind, params = matched
            context.flavour = flavour
            entry["flavour"] = flavour.name
            handler, route = self._handler(route_kind, context.method)
            entry["route"] = route
            if flavour.name == "azure" and "api-version" not in context.query:
                raise ApiError(
                    400,
                    "The api-version query parameter (?api-version=) is required for all requests.",
                    code="MissingApiVersionParameter",
                )
            flavour.authenticate(context.headers, self.config.api_key)
            fault = self.faults.decide(route)
            entry["fault"] = fault
            if fault == "drop":
                await self._drop(context, mid_body=True)
                entry["status"] = "dropped"
                entry["bytes_received"] = context.bytes_received
                return
            if fault is not None and fault != "drop_after":
                response = self._fault_response(fault, flavour)
            else:
                response = await handler(context, params)
        except PortkeyHeaderError:
            response = _json(
                {
                    "status": "failure",
                    "message": "Either x-portkey-config or x-portkey-provider header is required",
                },
                status=400,
            )
        except ApiError as error:
            response = self._error_response(error, context.flavour)
        except ClientDisconnected:
            entry["status"] = "client_disconnected"
            entry["bytes_received"] = context.bytes_received
            return
        entry["bytes_received"] = context.bytes_received
        if fault == "drop_after":
            await self._drop(context, mid_body=False)
            entry["status"] = "dropped_after"
            return
        latency_ms = self.config.latency_ms + (self.faults.added_latency_ms(route) if route else 0.0)
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)
        entry["status"] = response.status_code
        await self._send(context, response, send, connection)
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 3)

    def _handler(
        self, route_kind: str, method: str
    ) -> tuple[Callable[[RequestContext, dict[str, str]], Awaitable[Response]], str]:
        table: dict[
            tuple[str, str], tuple[Callable[[RequestContext, dict[str, str]], Awaitable[Response]], str]
        ]
        table = {
            ("files", "POST"): (self._create_file, "create_file"),
            ("files", "GET"): (self._list_files, "list_files"),
            ("file", "GET"): (self._retrieve_file, "retrieve_file"),
            ("file", "DELETE"): (self._delete_file, "delete_file"),
            ("file_content", "GET"): (self._file_content, "file_content"),
            ("create_upload", "POST"): (self._create_upload, "create_upload"),
            ("add_part", "POST"): (self._add_part, "add_part"),
            ("complete_upload", "POST"): (self._complete_upload, "complete_upload"),
            ("cancel_upload", "POST"): (self._cancel_upload, "cancel_upload"),
            ("batches", "POST"): (self.batch_routes.create, "create_batch"),
            ("batches", "GET"): (self.batch_routes.list, "list_batches"),
            ("batch", "GET"): (self.batch_routes.retrieve, "retrieve_batch"),
            ("cancel_batch", "POST"): (self.batch_routes.cancel, "cancel_batch"),
        }
        found = table.get((route_kind, method))
        if found is None:
            raise ApiError(405, f"Method {method} is not allowed on this path.")
        return found

    # -- sending, throttling, dropping ------------------------------------------------------------

    def _connection(self, scope: Scope) -> Connection:
        client = scope.get("client")
        key = (str(client[0]), int(client[1])) if client else ("?", 0)
        connection = self._connections.get(key)
        if connection is None:
            if len(self._connections) >= MAX_TRACKED_CONNECTIONS:
                oldest = sorted(self._connections.items(), key=lambda item: item[1].last_used_at)
                for stale_key, _ in oldest[: MAX_TRACKED_CONNECTIONS // 2]:
                    del self._connections[stale_key]
            connection = self._connections[key] = Connection()
        connection.last_used_at = time.monotonic()
        return connection

    async def _throttle(self, connection: Connection, size_bytes: int) -> None:
        mbps = self.config.bandwidth_per_connection_mbps
        if not mbps or size_bytes <= 0:
            return
        now = time.monotonic()
        start = max(now, connection.next_free_at)
        connection.next_free_at = start + size_bytes / (mbps * BYTES_PER_MEGABYTE)
        delay = connection.next_free_at - now
        if delay >= MIN_THROTTLE_SLEEP_S:
            await asyncio.sleep(delay)

    def _counting_receive(self, context: RequestContext, connection: Connection) -> Receive:
        raw_receive = context.raw_receive

        async def receive() -> Message:
            message = await raw_receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                context.bytes_received += size
                self.body_bytes_received += size
                await self._throttle(connection, size)
            return message

        return receive

    async def _send(
        self, context: RequestContext, response: Response, send: Send, connection: Connection
    ) -> None:
        response.headers["x-request-id"] = context.request_id

        async def throttled_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                await self._throttle(connection, len(message.get("body", b"")))
            await send(message)

        await response(context.scope, context.receive, throttled_send)

    async def _drop(self, context: RequestContext, *, mid_body: bool) -> None:
        """Close the TCP connection without a response (after reading about half the body)."""
        if mid_body:
            expected = int(context.headers.get("content-length", "0") or 0)
            while context.bytes_received < expected // 2:
                message = await context.receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        # uvicorn's request cycle is the receive callable's owner and holds the transport.
        cycle = getattr(context.raw_receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:  # pragma: no cover - other servers: fall back to an aborted response
            raise RuntimeError("dropped connection (fault injection)")
        transport.abort()
        for _ in range(100):
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0.001)

    # -- errors -------------------------------------------------------------------------------------

    def _error_response(self, error: ApiError, flavour: Flavour | None) -> Response:
        body = flavour.render_error(error) if flavour is not None else error.body()
        return _json(body, status=error.status, headers=error.headers)

    def _fault_response(self, fault: str, flavour: Flavour) -> Response:
        if fault == "429":
            delay_s = self.faults.retry_after_s
            error = ApiError(
                429,
                "Rate limit reached for requests (emulated). Please try again shortly.",
                error_type="requests",
                code="rate_limit_exceeded",
                headers={
                    "retry-after": str(max(1, math.ceil(delay_s))),
                    "retry-after-ms": str(round(delay_s * 1000)),
                    "x-ratelimit-remaining-requests": "0",
                },
            )
        elif fault == "429_quota":
            error = ApiError(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                error_type="insufficient_quota",
                code="insufficient_quota",
            )
        elif fault == "500":
            error = ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                error_type="server_error",
            )
        elif fault == "503":
            error = ApiError(
                503,
                "The engine is currently overloaded, please try again later.",
                error_type="server_error",
            )
        else:  # 502 comes from a load balancer: HTML, not JSON
            return Response(
                b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                b"</h1></center></body></html>\n",
                status_code=502,
                media_type="text/html",
            )
        return self._error_response(error, flavour)

    # -- body helpers -------------------------------------------------------------------------------

    async def _body_chunks(self, context: RequestContext) -> AsyncIterator[bytes]:
        while True:
            message = await context.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def _json_body(self, context: RequestContext, allowed: frozenset[str]) -> dict[str, Any]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in self._body_chunks(context):
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

    async def _multipart(
        self, context: RequestContext, open_sink: Callable[[str, str | None, str | None], PartSink]
    ) -> None:
        try:
            parser = MultipartParser(
                boundary_from_content_type(context.headers.get("content-type", "")), open_sink
            )
            async for chunk in self._body_chunks(context):
                parser.feed(chunk)
            parser.close()
        except MultipartError as error:
            raise bad_request(f"Invalid multipart/form-data body: {error}") from None

    # -- files ---------------------------------------------------------------------------------------

    def _check_purpose(self, purpose: str | None, allowed: frozenset[str], flavour: Flavour) -> str:
        if purpose is None:
            raise bad_request("Missing required parameter: 'purpose'.", param="purpose")
        accepted = flavour.purposes if flavour.purposes is not None else allowed
        if purpose not in accepted:
            raise bad_request(
                f"Invalid value for 'purpose': {purpose!r}; must be one of {sorted(accepted)}.",
                param="purpose",
            )
        return purpose

    @staticmethod
    def _expires_after_s(anchor: object, seconds: object) -> int:
        if anchor != "created_at":
            raise bad_request("expires_after.anchor must be 'created_at'.", param="expires_after.anchor")
        try:
            value = int(str(seconds)) if not isinstance(seconds, bool) else None
        except ValueError:
            value = None
        if value is None or not FILE_EXPIRY_MIN_S <= value <= FILE_EXPIRY_MAX_S:
            raise bad_request(
                f"expires_after.seconds must be an integer between {FILE_EXPIRY_MIN_S} and "
                f"{FILE_EXPIRY_MAX_S}.",
                param="expires_after.seconds",
            )
        return value

    async def _create_file(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        flavour = context.flavour
        file_id, path = self.store.new_file_slot()
        texts: dict[str, TextSink] = {}
        sink_holder: list[FileSink] = []
        filename_holder: list[str] = []

        def open_sink(name: str, filename: str | None, content_type: str | None) -> PartSink:
            if name not in FILE_FIELDS:
                raise bad_request(f"Unrecognized request argument supplied: {name}", param=name)
            if name in texts or (name == "file" and sink_holder):
                raise bad_request(f"The form field {name!r} is given more than once.", param=name)
            if name == "file":
                purpose_sink = texts.get("purpose")
                if purpose_sink is not None and purpose_sink.value is not None:
                    self._check_purpose(purpose_sink.value, FILE_PURPOSES, flavour)
                sink = FileSink(path, self.config.max_file_bytes, "file")
                sink_holder.append(sink)
                filename_holder.append(filename or "file")
                return sink
            text = TextSink(name)
            texts[name] = text
            return text

        try:
            await self._multipart(context, open_sink)
            if not sink_holder:
                raise bad_request("Missing required parameter: 'file'.", param="file")
            purpose = self._check_purpose(
                texts["purpose"].value if "purpose" in texts else None, FILE_PURPOSES, flavour
            )
            expires_after_s = None
            if "expires_after[anchor]" in texts or "expires_after[seconds]" in texts:
                expires_after_s = self._expires_after_s(
                    texts.get("expires_after[anchor]", TextSink("")).value,
                    texts.get("expires_after[seconds]", TextSink("")).value,
                )
        except BaseException:
            for sink in sink_holder:
                sink.discard()
            raise
        sink = sink_holder[0]
        stored = self.store.add_file(
            file_id,
            filename=filename_holder[0],
            purpose=purpose,
            size_bytes=sink.size_bytes,
            segments=[path],
            expires_after_s=expires_after_s,
        )
        body = self._file_object(stored.id, flavour)
        if flavour.name == "azure":
            root = self._root_url(context)
            location = f"{root}/openai/files/{stored.id}?api-version={context.query['api-version']}"
            return _json(body, status=201, headers={"location": location})
        return _json(body)

    def _root_url(self, context: RequestContext) -> str:
        host = context.headers.get("host")
        if not host:
            server = context.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"http://{host}"

    def _file_object(self, file_id: str, flavour: Flavour) -> dict[str, object]:
        body = self.store.file_object(self.store.get_file(file_id))
        body["status"] = flavour.file_status(str(body["status"]))
        return body

    async def _list_files(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        flavour = context.flavour
        query = context.query
        limit = 10_000
        order = "desc"
        after = None
        if flavour.paginates:
            if "limit" in query:
                try:
                    limit = int(query["limit"])
                except ValueError:
                    limit = 0
                if not 1 <= limit <= 10_000:
                    raise bad_request("limit must be an integer between 1 and 10000.", param="limit")
            order = query.get("order", "desc")
            if order not in ("asc", "desc"):
                raise bad_request("order must be 'asc' or 'desc'.", param="order")
            after = query.get("after") or None
        files, has_more = self.store.list_files(
            purpose=query.get("purpose") or None, limit=limit, order=order, after=after
        )
        data = [self._file_object(stored.id, flavour) for stored in files]
        body: dict[str, object] = {"object": "list", "data": data}
        if flavour.paginates:
            body.update(
                first_id=data[0]["id"] if data else None,
                last_id=data[-1]["id"] if data else None,
                has_more=has_more,
            )
        return _json(body)

    async def _retrieve_file(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        return _json(self._file_object(params["file_id"], context.flavour))

    async def _delete_file(self, context: RequestContext, params: dict[str, str]) -> Response:
        stored = self.store.delete_file(params["file_id"])
        return _json({"id": stored.id, "object": "file", "deleted": True})

    async def _file_content(self, context: RequestContext, params: dict[str, str]) -> Response:
        stored = self.store.get_file(params["file_id"])
        segments = list(stored.segments)

        async def content() -> AsyncIterator[bytes]:
            for segment in segments:
                with open(segment, "rb", buffering=0) as handle:
                    while block := handle.read(CONTENT_CHUNK_BYTES):
                        yield block

        return StreamingResponse(
            content(),
            media_type="application/octet-stream",
            headers={"content-length": str(stored.size_bytes)},
        )

    # -- uploads -------------------------------------------------------------------------------------

    async def _create_upload(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        body = await self._json_body(context, CREATE_UPLOAD_FIELDS)
        for name in ("filename", "purpose", "bytes", "mime_type"):
            if name not in body:
                raise bad_request(f"Missing required parameter: '{name}'.", param=name)
        filename = body["filename"]
        if not isinstance(filename, str) or not filename:
            raise bad_request("filename must be a non-empty string.", param="filename")
        purpose = self._check_purpose(
            body["purpose"] if isinstance(body["purpose"], str) else repr(body["purpose"]),
            UPLOAD_PURPOSES,
            context.flavour,
        )
        size = body["bytes"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request("bytes must be a non-negative integer.", param="bytes")
        if size > self.config.max_upload_bytes:
            raise bad_request(
                f"bytes={size} exceeds the upload limit of {self.config.max_upload_bytes} bytes.",
                param="bytes",
            )
        mime_type = body["mime_type"]
        if not isinstance(mime_type, str) or not mime_type:
            raise bad_request("mime_type must be a non-empty string.", param="mime_type")
        expires_after_s = None
        if body.get("expires_after") is not None:
            policy = body["expires_after"]
            if not isinstance(policy, dict):
                raise bad_request("expires_after must be an object.", param="expires_after")
            expires_after_s = self._expires_after_s(policy.get("anchor"), policy.get("seconds"))
        upload = self.store.create_upload(
            filename=filename,
            purpose=purpose,
            size_bytes=size,
            mime_type=mime_type,
            file_expires_after_s=expires_after_s,
        )
        return _json(self._upload_object(upload.id, context.flavour))

    def _upload_object(self, upload_id: str, flavour: Flavour) -> dict[str, object]:
        body = self.store.upload_object(self.store.get_upload(upload_id))
        if isinstance(body["file"], dict):
            body["file"]["status"] = flavour.file_status(str(body["file"]["status"]))
        return body

    async def _add_part(self, context: RequestContext, params: dict[str, str]) -> Response:
        upload = self.store.get_upload(params["upload_id"])
        attempt = self.store.begin_part(upload)
        sinks: list[FileSink] = []

        def open_sink(name: str, filename: str | None, content_type: str | None) -> PartSink:
            if name != "data":
                raise bad_request(f"Unrecognized request argument supplied: {name}", param=name)
            if sinks:
                raise bad_request("The form field 'data' is given more than once.", param="data")
            sink = FileSink(attempt.path, self.config.max_part_bytes, "data")
            sinks.append(sink)
            return sink

        try:
            await self._multipart(context, open_sink)
            if not sinks:
                raise bad_request("Missing required parameter: 'data'.", param="data")
        except BaseException:
            for sink in sinks:
                sink.discard()
            self.store.fail_part(attempt)
            raise
        part = self.store.finish_part(upload, attempt, sinks[0].size_bytes)
        body: dict[str, object] = {
            "id": part.id,
            "object": "upload.part",
            "created_at": part.created_at,
            "upload_id": upload.id,
        }
        assert context.flavour is not None
        if context.flavour.name == "azure":
            body["azure_block_id"] = part.id.removeprefix("part_")
        return _json(body)

    async def _complete_upload(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        upload = self.store.get_upload(params["upload_id"])
        body = await self._json_body(context, COMPLETE_FIELDS)
        part_ids = body.get("part_ids")
        if part_ids is None:
            raise bad_request("Missing required parameter: 'part_ids'.", param="part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise bad_request("part_ids must be an array of part id strings.", param="part_ids")
        md5 = body.get("md5")
        if md5 is not None and not isinstance(md5, str):
            raise bad_request("md5 must be a string.", param="md5")
        upload = self.store.get_upload(upload.id)  # re-check expiry after reading the body
        await self.store.complete_upload(upload, part_ids, md5)
        return _json(self._upload_object(upload.id, context.flavour))

    async def _cancel_upload(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        upload = self.store.get_upload(params["upload_id"])
        async for _ in self._body_chunks(context):
            pass
        self.store.cancel_upload(upload)
        return _json(self._upload_object(upload.id, context.flavour))

    # -- admin / introspection -----------------------------------------------------------------------

    async def _admin(self, context: RequestContext, path: str) -> Response:
        method = context.method
        try:
            if path == "/health":
                return _json({"status": "ok"})
            if path == "/requests" and method == "GET":
                return _json({"data": list(self.request_log)})
            if path == "/stats" and method == "GET":
                stats = self.store.stats()
                stats.update(self.batches.stats())
                stats["body_bytes_received"] = self.body_bytes_received
                stats["request_count"] = len(self.request_log)
                stats["faults_injected"] = dict(self.faults.injected)
                return _json(stats)
            if path == "/reset" and method == "POST":
                self.batches.reset()
                self.store.reset()
                self.request_log.clear()
                self.body_bytes_received = 0
                return _json({"reset": True})
            if path == "/faults":
                if method == "GET":
                    return _json(self.faults.describe())
                if method == "DELETE":
                    self.faults = FaultPlan()
                    return _json(self.faults.describe())
                if method == "POST":
                    body = await self._json_body(context, frozenset({"spec", "seed"}))
                    try:
                        self.faults = FaultPlan.parse(str(body.get("spec", "")), body.get("seed"))
                    except FaultSpecError as error:
                        raise bad_request(str(error), param="spec") from None
                    return _json(self.faults.describe())
            if path == "/config":
                if method == "POST":
                    body = await self._json_body(context, frozenset(RUNTIME_SETTINGS))
                    for name, value in body.items():
                        setattr(self.config, name, value)
                return _json(self.config.public_settings())
            if path == "/clock" and method == "POST":
                body = await self._json_body(context, frozenset({"advance_s"}))
                self.store.clock_offset_s += float(body.get("advance_s", 0))
                return _json({"clock_offset_s": self.store.clock_offset_s, "now": self.store.now()})
            parts = path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "files" and parts[2] == "md5" and method == "GET":
                return _json({"id": parts[1], "md5": await self.store.file_md5(parts[1])})
            if len(parts) == 3 and parts[0] == "uploads" and parts[2] == "expire" and method == "POST":
                upload = self.store.expire_upload(parts[1])
                return _json(self.store.upload_object(upload))
            raise ApiError(404, f"Unknown emulator admin route {method} {ADMIN_PREFIX}{path}")
        except ApiError as error:
            return self._error_response(error, None)
