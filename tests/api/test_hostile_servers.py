"""Hostile or broken servers over real HTTP: trickling, huge answers, echoed credentials, wrong scheme.

Each case ends in bounded time and memory with an error that says what happened and carries no
credential.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_files.api import (
    ApiConnectionError,
    ApiTimeoutError,
    AsyncFilesClient,
    ClientSettings,
    FilesClient,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
)
from airflow_provider_files.api.limits import MIB
from airflow_provider_files.api.readiness import evaluate_file
from airflow_provider_files.api.transfer import (
    MAX_JSON_RESPONSE_BYTES,
    MIN_TRANSFER_RATE_BYTES_PER_S,
    Deadline,
)
from airflow_provider_files.uploads import ChunkedUploader

from .support import RawHttpServer, Recorder, http_head, trickle

KEY = "sk-proj-HOSTILE-0f1e2d3c4b5a69788796"
FILE_JSON = b'{"id": "file-1", "object": "file", "bytes": 3}'
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
TRICKLE_INTERVAL_S = 0.2
TIMEOUT_S = 1.0


def settings(base_url: str, *, timeout_s: float = 30.0, policy: RetryPolicy = ONE_ATTEMPT) -> ClientSettings:
    return ClientSettings(api_key=KEY, base_url=base_url, timeout_s=timeout_s, retry_policy=policy)


def trickling_body(request: bytes, stop: threading.Event) -> Iterator[bytes]:
    """A whole head at once, then a valid file object one byte every 0.2 s (about 10 s in all)."""
    yield http_head(length=len(FILE_JSON))
    yield from trickle(FILE_JSON, TRICKLE_INTERVAL_S, stop)


def trickling_head(request: bytes, stop: threading.Event) -> Iterator[bytes]:
    """Even the head comes one byte every 0.2 s."""
    yield from trickle(http_head(length=len(FILE_JSON)) + FILE_JSON, TRICKLE_INTERVAL_S, stop)


# -- a whole-request deadline ---------------------------------------------------------------------


def test_a_trickling_answer_ends_at_the_deadline_not_when_the_server_is_done() -> None:
    with (
        RawHttpServer(trickling_body) as server,
        FilesClient(settings(server.url, timeout_s=TIMEOUT_S)) as client,
    ):
        started = time.monotonic()
        with pytest.raises(ApiTimeoutError, match="deadline") as caught:
            client.retrieve_file("file-1")
        elapsed = time.monotonic() - started
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 1.5, elapsed  # each byte came within the read timeout
    assert "timeout_s=1" in str(caught.value)


def test_a_trickling_download_ends_at_the_deadline() -> None:
    with (
        RawHttpServer(trickling_body) as server,
        FilesClient(settings(server.url, timeout_s=TIMEOUT_S)) as client,
    ):
        started = time.monotonic()
        with pytest.raises(ApiTimeoutError, match="deadline"):
            client.download_file("file-1", io.BytesIO())
        assert time.monotonic() - started < TIMEOUT_S + 1.5


@pytest.mark.asyncio
@pytest.mark.parametrize("reply", [trickling_body, trickling_head], ids=["body", "head"])
async def test_a_trickling_answer_ends_at_the_deadline_async(reply: object) -> None:
    with RawHttpServer(reply) as server:  # type: ignore[arg-type]
        async with AsyncFilesClient(settings(server.url, timeout_s=TIMEOUT_S)) as client:
            started = time.monotonic()
            with pytest.raises(ApiTimeoutError, match="deadline"):
                await client.retrieve_file("file-1")
            with pytest.raises(ApiTimeoutError, match="deadline"):
                await client.download_file("file-1", io.BytesIO())
            assert time.monotonic() - started < 2 * (TIMEOUT_S + 1.5)


@pytest.mark.parametrize("call", ["retrieve", "download", "upload part"])
def test_a_trickling_head_ends_at_the_deadline(call: str) -> None:
    """Each byte of the head comes well within the read timeout: only the whole-attempt deadline ends it."""
    with (
        RawHttpServer(trickling_head) as server,
        FilesClient(settings(server.url, timeout_s=TIMEOUT_S)) as client,
    ):
        started = time.monotonic()
        with pytest.raises(ApiTimeoutError, match="deadline"):
            if call == "retrieve":
                client.retrieve_file("file-1")
            elif call == "download":
                client.download_file("file-1", io.BytesIO())
            else:
                client.add_upload_part("upload_1", b"x" * 1000)
        elapsed = time.monotonic() - started
        assert server.sent_bytes < len(http_head(length=len(FILE_JSON)))  # cut off inside the head
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 1.5, elapsed


def test_a_trickling_head_after_a_stream_of_unknown_length_ends_at_the_deadline() -> None:
    with (
        RawHttpServer(trickling_head) as server,
        FilesClient(settings(server.url, timeout_s=TIMEOUT_S)) as client,
    ):
        started = time.monotonic()
        with pytest.raises(ApiTimeoutError, match="deadline"):
            client.create_file(SlowStream(b"x" * 100, 0.0, 3), "batch", filename="a.jsonl")  # type: ignore[arg-type]
        assert time.monotonic() - started < TIMEOUT_S + 1.5


@pytest.mark.asyncio
async def test_a_trickling_head_after_a_stream_of_unknown_length_ends_at_the_deadline_async() -> None:
    with RawHttpServer(trickling_head) as server:
        async with AsyncFilesClient(settings(server.url, timeout_s=TIMEOUT_S)) as client:
            started = time.monotonic()
            with pytest.raises(ApiTimeoutError, match="deadline"):
                await client.create_file(SlowStream(b"x" * 100, 0.0, 3), "batch", filename="a.jsonl")  # type: ignore[arg-type]
            assert time.monotonic() - started < TIMEOUT_S + 1.5


def test_a_silent_server_is_still_a_read_timeout_within_the_deadline() -> None:
    """A read that times out before the deadline is the usual read timeout, retried as before."""

    def late(request: bytes, stop: threading.Event) -> Iterator[bytes]:
        stop.wait(5)
        yield http_head(length=len(FILE_JSON)) + FILE_JSON

    with RawHttpServer(late) as server, FilesClient(settings(server.url, timeout_s=0.3)) as client:
        client._deadline = lambda spec: Deadline(30.0, 0)  # type: ignore[method-assign]
        with pytest.raises(ApiTimeoutError, match="ReadTimeout"):
            client.retrieve_file("file-1")


def test_each_attempt_has_its_own_deadline_and_a_timeout_is_retried() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay_s=0.01, random_fraction=lambda: 0.0)
    with RawHttpServer(trickling_body) as server:
        with FilesClient(settings(server.url, timeout_s=0.5, policy=policy)) as client:
            started = time.monotonic()
            with pytest.raises(ApiTimeoutError):
                client.retrieve_file("file-1")
            elapsed = time.monotonic() - started
        assert server.connections == 2
    assert 1.0 <= elapsed < 3.0, elapsed


def test_a_request_body_gets_time_in_proportion_to_its_size() -> None:
    client = FilesClient(settings("https://api.openai.com/v1", timeout_s=10))
    with client:
        part = client.operations.add_upload_part("upload_1", b"x" * (4 * MIB)).spec
        retrieve = client.operations.retrieve_file("file-1").spec
        assert client._deadline(retrieve).allowed_s() == 10
        assert part.body is not None and part.body.content_length is not None
        length = part.body.content_length
        assert client._deadline(part).allowed_s() == pytest.approx(
            10 + length / MIN_TRANSFER_RATE_BYTES_PER_S
        )
        assert client._deadline(part).allowed_s() > 10 + 4 * MIB / MIN_TRANSFER_RATE_BYTES_PER_S


# -- answers too large to be an answer of the API -------------------------------------------------


def huge_json(announce: bool, size: int = 48 * MIB):
    """A valid file object padded with spaces to ``size`` bytes, its length announced or not."""

    def reply(request: bytes, stop: threading.Event) -> Iterator[bytes]:
        yield http_head(length=size if announce else None)
        yield b'{"id": "file-1",'
        block = b" " * MIB
        for _ in range(size // MIB - 1):
            if stop.is_set():
                return
            yield block
        yield b" " * (MIB - 17) + b"}"

    return reply


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "unannounced"])
def test_a_json_answer_larger_than_the_cap_is_refused_without_reading_it_whole(announce: bool) -> None:
    with RawHttpServer(huge_json(announce)) as server, FilesClient(settings(server.url)) as client:
        with pytest.raises(UnexpectedResponseError, match="more than 8 MiB of JSON"):
            client.retrieve_file("file-1")
        time.sleep(0.2)
        # what the server got out before the client hung up: the cap and what sockets buffer
        assert server.sent_bytes < MAX_JSON_RESPONSE_BYTES + 8 * MIB
        assert server.connections == 1  # not retried


@pytest.mark.asyncio
async def test_a_json_answer_larger_than_the_cap_is_refused_async() -> None:
    with RawHttpServer(huge_json(False)) as server:
        async with AsyncFilesClient(settings(server.url)) as client:
            with pytest.raises(UnexpectedResponseError, match="more than 8 MiB of JSON"):
                await client.list_files()
        time.sleep(0.2)
        assert server.sent_bytes < MAX_JSON_RESPONSE_BYTES + 8 * MIB


def test_a_download_is_not_capped() -> None:
    with RawHttpServer(huge_json(True, size=12 * MIB)) as server, FilesClient(settings(server.url)) as client:
        target = io.BytesIO()
        assert client.download_file("file-1", target) == 12 * MIB


# -- a server that echoes what it received --------------------------------------------------------


def echoing(status: str, content_type: str, render: str):
    """A server that quotes the request's headers back in ``render`` (``{headers}``, ``{auth}``)."""

    def reply(request: bytes, stop: threading.Event) -> Iterator[bytes]:
        head = request.partition(b"\r\n\r\n")[0].decode()
        auth = next(line for line in head.split("\r\n") if line.lower().startswith("authorization:"))
        body = render.format(auth=auth, headers=head, auth_json=json.dumps(auth)).encode()
        yield http_head(status, content_type, len(body)) + body

    return reply


@pytest.mark.parametrize(
    ("content_type", "render", "expected"),
    [
        ("text/html", "<html><pre>You sent {auth}</pre><pre>{headers}</pre></html>", "not JSON"),
        ("application/json", '{{"echo": {auth_json}, "object": "file"}}', "without an 'id'"),
        ("application/json", '{{"object": "list", "data": [{{"echo": {auth_json}}}]}}', "without an 'id'"),
    ],
    ids=["html", "json-without-id", "list-item-without-id"],
)
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_success_answer_echoing_the_key_is_quoted_redacted(
    content_type: str, render: str, expected: str, use_async: bool
) -> None:
    with RawHttpServer(echoing("200 OK", content_type, render)) as server:
        call = "list_files" if "list" in render else "retrieve_file"
        args = () if call == "list_files" else ("file-1",)
        with pytest.raises(UnexpectedResponseError) as caught:
            if use_async:

                async def run() -> None:
                    async with AsyncFilesClient(settings(server.url)) as client:
                        await getattr(client, call)(*args)

                asyncio.run(run())
            else:
                with FilesClient(settings(server.url)) as client:
                    getattr(client, call)(*args)
    text = str(caught.value)
    assert expected in text
    assert "Bearer ***" in text  # the server's words are kept, the key is not
    assert KEY[:12] not in "".join(traceback.format_exception(caught.value))  # the chain included


def test_an_error_page_cut_at_the_excerpt_does_not_leave_part_of_the_key() -> None:
    render = "x" * 454 + " you sent {auth}"  # the key starts at 486: the 500-character excerpt cuts it
    server = RawHttpServer(echoing("502 Bad Gateway", "text/html", render))
    with server, FilesClient(settings(server.url)) as client, pytest.raises(ServerError) as caught:
        client.retrieve_file("file-1")
    for text in (str(caught.value), caught.value.server_message or ""):
        assert KEY[:12] not in text, text[-80:]


# -- the wrong scheme, and no server ---------------------------------------------------------------


def plain_http(request: bytes, stop: threading.Event) -> Iterator[bytes]:
    body = b"not TLS"
    yield http_head("400 Bad Request", "text/plain", len(body)) + body


@pytest.mark.asyncio
async def test_https_to_a_plain_http_server_is_not_retried_and_says_use_http() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=4)
    with RawHttpServer(plain_http) as server:
        https = f"https://127.0.0.1:{server.port}/v1"
        client = FilesClient(settings(https, policy=policy), sleep=sleeps.append)
        with client, pytest.raises(ApiConnectionError) as caught:
            client.retrieve_file("file-1")
        async with AsyncFilesClient(settings(https, policy=policy)) as aclient:
            with pytest.raises(ApiConnectionError) as caught_async:
                await aclient.list_files()
        assert server.connections == 2  # one per client: no retry
    assert sleeps == []
    for error in (caught.value, caught_async.value):
        assert "speaks plain HTTP" in str(error)
        assert f"use http://127.0.0.1:{server.port}" in str(error)
        assert not error.retryable and not error.reached_server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_says_the_server_could_not_be_reached_and_looks_for_nothing() -> None:
    port = free_port()
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=3, random_fraction=lambda: 0.0)
    client = FilesClient(settings(f"http://127.0.0.1:{port}/v1", policy=policy), sleep=sleeps.append)
    with client, pytest.raises(ApiConnectionError) as caught:
        client.create_file(b'{"a": 1}\n', "batch", filename="a.jsonl")
    message = str(caught.value)
    assert f"the server at http://127.0.0.1:{port} could not be reached, so nothing was sent" in message
    assert len(sleeps) == 2  # a server that is down may come up: retried
    assert not caught.value.reached_server


def test_a_refused_create_upload_does_not_report_a_possible_orphan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "a.jsonl"
    source.write_bytes(b'{"a": 1}\n' * 10)
    port = free_port()
    policy = RetryPolicy(max_attempts=2, initial_delay_s=0.01)
    with FilesClient(settings(f"http://127.0.0.1:{port}/v1", policy=policy)) as client:
        uploader = ChunkedUploader(client)
        with pytest.raises(ApiConnectionError, match="could not be reached"):
            uploader.upload(source, purpose="batch")
    assert uploader.possible_orphan_uploads == 0
    assert not any("may have created it anyway" in record.getMessage() for record in caplog.records)


class SlowStream(io.RawIOBase):
    """A one-shot stream (a pipe) giving ``chunk`` every ``interval_s``, ``count`` times."""

    def __init__(self, chunk: bytes, interval_s: float, count: int) -> None:
        super().__init__()
        self.chunk, self.interval_s, self.left = chunk, interval_s, count

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            return b""
        self.left -= 1
        time.sleep(self.interval_s)
        return self.chunk


def upload_from(stream: SlowStream, timeout_s: float) -> float:
    recorder = Recorder(lambda r: httpx.Response(200, content=FILE_JSON))
    started = time.monotonic()
    with FilesClient(
        settings("https://api.openai.com/v1", timeout_s=timeout_s), transport=recorder.transport
    ) as c:
        c.create_file(stream, "batch", filename="a.jsonl")  # type: ignore[arg-type]
    return time.monotonic() - started


def test_a_stream_of_unknown_length_is_given_time_as_it_is_sent() -> None:
    chunk = b"x" * (MIN_TRANSFER_RATE_BYTES_PER_S // 2)  # each chunk earns 0.5 s, and comes in 0.1 s
    assert upload_from(SlowStream(chunk, 0.1, 8), timeout_s=0.3) > 0.3  # longer than timeout_s: fine


def test_a_trickling_stream_of_unknown_length_meets_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(ApiTimeoutError, match="deadline"):
        upload_from(SlowStream(b"x", 0.05, 1000), timeout_s=0.3)
    assert time.monotonic() - started < 1.5


def test_the_deadline_of_a_body_of_known_length_does_not_grow_as_it_is_sent() -> None:
    known, unknown = Deadline(1.0, 100), Deadline(1.0, None)
    for deadline in (known, unknown):
        deadline.sent(MIN_TRANSFER_RATE_BYTES_PER_S * 10)
    assert known.allowed_s() == pytest.approx(1.0 + 100 / MIN_TRANSFER_RATE_BYTES_PER_S)
    assert unknown.allowed_s() == pytest.approx(11.0)
    assert known.fixed and not unknown.fixed


def test_a_file_or_batch_whose_messages_echo_the_key_is_read_with_them_masked() -> None:
    file_render = (
        '{{"id": "file-1", "object": "file", "filename": "a.jsonl", "status": "error", '
        '"status_details": {auth_json}}}'
    )
    batch_render = (
        '{{"id": "batch_1", "object": "batch", "status": "failed", "input_file_id": "file-1", '
        '"errors": {{"data": [{{"code": "invalid", "message": {auth_json}, "line": 1}}]}}}}'
    )
    server = RawHttpServer(echoing("200 OK", "application/json", file_render))
    with server, FilesClient(settings(server.url)) as client:
        file = client.retrieve_file("file-1")
    server = RawHttpServer(echoing("200 OK", "application/json", batch_render))
    with server, FilesClient(settings(server.url)) as client:
        batch = client.retrieve_batch("batch_1")
    assert (file.id, file.filename, file.status) == ("file-1", "a.jsonl", "error")
    assert file.status_details == "Authorization: Bearer ***"
    assert KEY not in repr(file.raw) and KEY not in repr(batch.raw)
    assert [error.message for error in batch.errors] == ["Authorization: Bearer ***"]
    reason = evaluate_file("file-1", file, now=time.time()).reason
    assert "failed processing: Authorization: Bearer ***" in reason
