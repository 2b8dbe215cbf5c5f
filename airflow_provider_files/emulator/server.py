"""The emulator's ASGI application (Starlette request/response types on uvicorn).

One instance holds one :class:`~airflow_provider_files.emulator.store.Store` and one
:class:`~airflow_provider_files.emulator.batches.BatchStore`; the flavours of
:mod:`~airflow_provider_files.emulator.flavours` only change paths, auth and response shapes, and
:mod:`~airflow_provider_files.emulator.routing` maps a path to a flavour and an operation.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from airflow_provider_files.emulator.batch_api import BatchRoutes
from airflow_provider_files.emulator.batches import BatchStore
from airflow_provider_files.emulator.config import RUNTIME_SETTINGS, EmulatorConfig, check_runtime_setting
from airflow_provider_files.emulator.errors import ApiError, bad_request
from airflow_provider_files.emulator.faults import FaultPlan, FaultSpecError
from airflow_provider_files.emulator.file_api import FileRoutes
from airflow_provider_files.emulator.flavours import Flavour, PortkeyHeaderError
from airflow_provider_files.emulator.http_io import (
    ClientDisconnected,
    RequestContext,
    json_response,
    parse_query,
    read_json,
)
from airflow_provider_files.emulator.routing import match_request
from airflow_provider_files.emulator.store import Store

Handler = Callable[[RequestContext, dict[str, str]], Awaitable[Response]]

REQUEST_LOG_MAX_ENTRIES = 100_000
MAX_TRACKED_CONNECTIONS = 4096
# Sleeping for less than this is not worth a timer; the debt is carried to the next chunk.
MIN_THROTTLE_SLEEP_S = 0.004
# A timer wakes up late (a millisecond or more on a busy loop). When a connection's virtual clock
# is behind the real one by no more than this, the lateness is the timer's, not an idle link, so
# the clock carries on from where it was instead of restarting at now: without that, every late
# wake-up is lost link time and a capped connection runs 10-20% under its cap. A connection idle
# for longer restarts at now, so it never gets more than this much time as a burst.
THROTTLE_CARRY_S = 0.05
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


@dataclass
class Connection:
    """Per-TCP-connection state for the bandwidth cap."""

    next_free_at: float = 0.0
    last_used_at: float = field(default_factory=time.monotonic)

    def pace(self, now: float, transfer_s: float) -> float:
        """Book ``transfer_s`` seconds of the link from ``now``; the seconds to wait before going on."""
        start = self.next_free_at if now - self.next_free_at <= THROTTLE_CARRY_S else now
        self.next_free_at = start + transfer_s
        return self.next_free_at - now


class EmulatorApp:
    """The ASGI application.

    :param config: settings; the runtime ones may be changed through ``/_emulator/config``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config)
        self.batches = BatchStore(self.store)
        files = FileRoutes(self.store)
        batches = BatchRoutes(self.batches)
        self.handlers: dict[str, Handler] = {
            "create_file": files.create_file,
            "list_files": files.list_files,
            "retrieve_file": files.retrieve_file,
            "delete_file": files.delete_file,
            "file_content": files.file_content,
            "create_upload": files.create_upload,
            "add_part": files.add_part,
            "complete_upload": files.complete_upload,
            "cancel_upload": files.cancel_upload,
            "create_batch": batches.create,
            "list_batches": batches.list,
            "retrieve_batch": batches.retrieve,
            "cancel_batch": batches.cancel,
        }
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
            query=parse_query(scope.get("query_string", b"")),
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
            matched = match_request(context.scope)
            flavour, route, params = matched.flavour, matched.operation, matched.params
            context.flavour = flavour
            entry["flavour"] = flavour.name
            if route is None:
                raise ApiError(405, f"Method {context.method} is not allowed on this path.")
            entry["route"] = route
            handler = self.handlers[route]
            flavour.check_query(context.query)
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
        except PortkeyHeaderError as refusal:
            response = json_response({"status": "failure", "message": str(refusal)}, status=400)
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
        delay = connection.pace(time.monotonic(), size_bytes / (mbps * BYTES_PER_MEGABYTE))
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
        return json_response(body, status=error.status, headers=error.headers)

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

    # -- admin / introspection -----------------------------------------------------------------------

    def _check_admin_key(self, headers: dict[str, str]) -> None:
        """With ``--api-key``, the admin routes (all but ``/health``) take the same key, as
        ``Authorization: Bearer <key>`` or ``api-key: <key>``."""
        expected = self.config.api_key
        if expected is None:
            return
        given = headers.get("api-key", "")
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            given = authorization[7:].strip()
        if not secrets.compare_digest(given.encode("latin-1"), expected.encode("utf-8", "replace")):
            raise ApiError(
                401,
                "The emulator's admin routes need its API key (Authorization: Bearer <key>).",
                code="invalid_api_key",
            )

    async def _admin(self, context: RequestContext, path: str) -> Response:
        method = context.method
        try:
            if path == "/health":
                return json_response({"status": "ok"})
            self._check_admin_key(context.headers)
            if path == "/requests" and method == "GET":
                return json_response({"data": list(self.request_log)})
            if path == "/stats" and method == "GET":
                stats = self.store.stats()
                stats.update(self.batches.stats())
                stats["body_bytes_received"] = self.body_bytes_received
                stats["request_count"] = len(self.request_log)
                stats["faults_injected"] = dict(self.faults.injected)
                return json_response(stats)
            if path == "/reset" and method == "POST":
                self.batches.reset()
                self.store.reset()
                self.request_log.clear()
                self.body_bytes_received = 0
                return json_response({"reset": True})
            if path == "/faults":
                if method == "GET":
                    return json_response(self.faults.describe())
                if method == "DELETE":
                    self.faults = FaultPlan()
                    return json_response(self.faults.describe())
                if method == "POST":
                    body = await read_json(context, frozenset({"spec", "seed"}))
                    try:
                        self.faults = FaultPlan.parse(str(body.get("spec", "")), body.get("seed"))
                    except FaultSpecError as error:
                        raise bad_request(str(error), param="spec") from None
                    return json_response(self.faults.describe())
            if path == "/config":
                if method == "POST":
                    body = await read_json(context, frozenset(RUNTIME_SETTINGS))
                    checked: dict[str, object] = {}
                    for name, value in body.items():
                        try:
                            checked[name] = check_runtime_setting(name, value)
                        except ValueError as error:
                            raise bad_request(str(error), param=name) from None
                    for name, value in checked.items():  # all or nothing
                        setattr(self.config, name, value)
                return json_response(self.config.public_settings())
            if path == "/clock" and method == "POST":
                body = await read_json(context, frozenset({"advance_s"}))
                self.store.clock_offset_s += float(body.get("advance_s", 0))
                return json_response({"clock_offset_s": self.store.clock_offset_s, "now": self.store.now()})
            parts = path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "files" and parts[2] == "md5" and method == "GET":
                return json_response({"id": parts[1], "md5": await self.store.file_md5(parts[1])})
            if len(parts) == 3 and parts[0] == "uploads" and parts[2] == "expire" and method == "POST":
                upload = self.store.expire_upload(parts[1])
                return json_response(self.store.upload_object(upload))
            raise ApiError(404, f"Unknown emulator admin route {method} {ADMIN_PREFIX}{path}")
        except ApiError as error:
            return self._error_response(error, None)
