"""The one retry policy: decisions per status and header, delays, bounds, and replaying bodies."""

from __future__ import annotations

import email.utils
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_files.api import (
    ApiConnectionError,
    ApiStatusError,
    ApiTimeoutError,
    AsyncFilesClient,
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    FileRange,
    FilesClient,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SourceNotReplayableError,
)
from airflow_provider_files.api.errors import FilesApiError, error_from_response
from airflow_provider_files.api.retry import is_transient, parse_retry_after

from .support import Recorder, parse_multipart

KEY = "sk-retry-test-key-0001"
FILE_JSON = {"id": "file-1", "object": "file", "bytes": 3, "filename": "a.jsonl", "purpose": "batch"}
PART_JSON = {"id": "part_1", "object": "upload.part", "upload_id": "upload_1"}

NO_JITTER = RetryPolicy(max_attempts=6, initial_delay_s=0.5, max_delay_s=8.0, random_fraction=lambda: 0.0)


def status_error(
    status: int, body: Any = None, headers: dict[str, str] | None = None, *, now: float | None = None
) -> ApiStatusError:
    request = httpx.Request("POST", "https://api.openai.com/v1/files")
    response = httpx.Response(status, json=body if body is not None else {}, headers=headers, request=request)
    return error_from_response(response, retry_after_s=parse_retry_after(response.headers, now=now))


def first_delay(
    error: FilesApiError, policy: RetryPolicy = NO_JITTER, should_retry: str | None = None
) -> float | None:
    return policy.start().next_delay(error, should_retry_header=should_retry)


# -- decisions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retried(status: int) -> None:
    assert first_delay(status_error(status)) == 0.5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    error = status_error(status)
    assert not is_transient(error)
    assert first_delay(error) is None


def test_quota_429_is_not_retried_but_rate_limit_429_is() -> None:
    quota = status_error(
        429, {"error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}}
    )
    rate = status_error(429, {"error": {"code": "rate_limit_exceeded", "message": "Rate limit reached"}})
    assert type(quota) is QuotaExceededError
    assert type(rate) is RateLimitError
    assert first_delay(quota) is None
    assert first_delay(rate) == 0.5


def test_connection_errors_and_timeouts_are_transient() -> None:
    assert first_delay(ApiConnectionError("refused")) == 0.5
    assert first_delay(ApiTimeoutError("read timeout")) == 0.5
    assert first_delay(FilesApiError("something else")) is None


@pytest.mark.parametrize(
    ("status", "header", "retried"),
    [
        (400, "true", True),
        (401, "TRUE", True),
        (503, "false", False),
        (429, "false", False),
        (500, " False ", False),
        (404, "maybe", False),
        (500, "maybe", True),
    ],
)
def test_x_should_retry_overrides_the_status(status: int, header: str, retried: bool) -> None:
    assert (first_delay(status_error(status), should_retry=header) is not None) is retried


# -- server delays ---------------------------------------------------------------------------------


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    in_30_s = email.utils.formatdate(now + 30, usegmt=True)
    in_30_s_minus_zero = email.utils.formatdate(now + 30).replace("+0000", "-0000")
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "2.5"})) == 2.5
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "soon", "retry-after": "9"})) == 9.0
    assert parse_retry_after(httpx.Headers({"retry-after": in_30_s}), now=now) == pytest.approx(30.0)
    assert parse_retry_after(httpx.Headers({"retry-after": in_30_s_minus_zero}), now=now) == pytest.approx(
        30.0
    )
    assert parse_retry_after(httpx.Headers({"retry-after": in_30_s}), now=now + 60) == 0.0
    assert parse_retry_after(httpx.Headers({"retry-after": "-4"})) == 0.0
    assert parse_retry_after(httpx.Headers({"retry-after": "not a date"})) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "nan"})) is None
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "inf"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


def test_server_delay_replaces_backoff() -> None:
    assert first_delay(status_error(429, headers={"retry-after-ms": "1200"})) == 1.2
    assert first_delay(status_error(503, headers={"retry-after": "7"})) == 7.0


def test_server_delay_above_the_cap_ends_retries() -> None:
    policy = RetryPolicy(max_retry_after_s=60.0, random_fraction=lambda: 0.0)
    assert first_delay(status_error(429, headers={"retry-after": "61"}), policy) is None
    assert first_delay(status_error(429, headers={"retry-after": "60"}), policy) == 60.0


# -- bounds and jitter -----------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=6, initial_delay_s=0.5, max_delay_s=3.0, random_fraction=lambda: 0.0)
    state = policy.start()
    delays = [state.next_delay(status_error(500)) for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, None]


def test_total_wait_is_bounded() -> None:
    policy = RetryPolicy(
        max_attempts=50, initial_delay_s=1.0, max_total_wait_s=4.0, random_fraction=lambda: 0.0
    )
    state = policy.start()
    delays = [state.next_delay(status_error(503)) for _ in range(4)]
    assert delays == [1.0, 2.0, None, None]  # a third wait of 4 s would bring the total to 7 s
    assert state.waited_s == 3.0
    server = RetryPolicy(max_total_wait_s=10.0).start()
    assert server.next_delay(status_error(429, headers={"retry-after": "6"})) == 6.0
    assert server.next_delay(status_error(429, headers={"retry-after": "6"})) is None


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, 2.0), (0.5, 1.75), (1.0, 1.5)])
def test_jitter_removes_up_to_its_fraction(fraction: float, expected: float) -> None:
    policy = RetryPolicy(initial_delay_s=2.0, jitter=0.25, random_fraction=lambda: fraction)
    assert policy.backoff_s(1) == pytest.approx(expected)


def test_default_jitter_stays_in_range() -> None:
    policy = RetryPolicy(initial_delay_s=1.0, max_delay_s=100.0)
    for retry in range(1, 6):
        for _ in range(50):
            delay = policy.backoff_s(retry)
            assert 0.75 * 2 ** (retry - 1) <= delay <= 2 ** (retry - 1)


def test_policy_validation_and_settings() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    assert RetryPolicy.from_max_retries(0).max_attempts == 1
    assert ClientSettings(max_retries=2).effective_retry_policy().max_attempts == 3
    custom = RetryPolicy(max_attempts=9)
    assert ClientSettings(max_retries=2).with_retry_policy(custom).effective_retry_policy() is custom


# -- end to end through FilesClient ----------------------------------------------------------------


Step = httpx.Response | Exception


def scripted(*steps: Step, then: Callable[[httpx.Request], httpx.Response] | None = None) -> Recorder:
    """Answers each request with the next step (raising exceptions), then with ``then``."""
    queue = list(steps)

    def respond(request: httpx.Request) -> httpx.Response:
        if queue:
            step = queue.pop(0)
            if isinstance(step, Exception):
                raise step
            return step
        assert then is not None, "more requests than scripted"
        return then(request)

    return Recorder(respond)


def make_client(
    recorder: Recorder, sleeps: list[float], policy: RetryPolicy = NO_JITTER, **settings: Any
) -> FilesClient:
    base = ClientSettings(api_key=KEY, retry_policy=policy, **settings)
    return FilesClient(base, transport=recorder.transport, sleep=sleeps.append)


def ok_file(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=FILE_JSON)


def test_rate_limit_then_success_waits_as_the_server_says() -> None:
    sleeps: list[float] = []
    recorder = scripted(
        httpx.Response(
            429, headers={"retry-after-ms": "250"}, json={"error": {"code": "rate_limit_exceeded"}}
        ),
        httpx.Response(503, headers={"retry-after": "2"}),
        then=ok_file,
    )
    with make_client(recorder, sleeps) as client:
        assert client.retrieve_file("file-1").id == "file-1"
    assert sleeps == [0.25, 2.0]
    assert len(recorder.requests) == 3


def test_backoff_until_attempts_run_out() -> None:
    sleeps: list[float] = []
    recorder = scripted(then=lambda r: httpx.Response(502, text="bad gateway"))
    policy = RetryPolicy(max_attempts=4, initial_delay_s=0.1, random_fraction=lambda: 0.0)
    with make_client(recorder, sleeps, policy) as client, pytest.raises(ServerError) as caught:
        client.list_files()
    assert len(recorder.requests) == 4
    assert sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert caught.value.status_code == 502
    assert "bad gateway" in str(caught.value)


def test_max_retries_setting_bounds_attempts() -> None:
    sleeps: list[float] = []
    recorder = scripted(then=lambda r: httpx.Response(500))
    settings = ClientSettings(api_key=KEY, max_retries=2)
    client = FilesClient(settings, transport=recorder.transport, sleep=sleeps.append)
    with client, pytest.raises(ServerError):
        client.retrieve_file("file-1")
    assert len(recorder.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        (
            httpx.Response(401, json={"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}),
            AuthenticationError,
        ),
        (
            httpx.Response(400, json={"error": {"message": "bad purpose", "param": "purpose"}}),
            BadRequestError,
        ),
        (
            httpx.Response(429, json={"error": {"message": "quota", "code": "insufficient_quota"}}),
            QuotaExceededError,
        ),
        (httpx.Response(503, headers={"x-should-retry": "false"}), ServerError),
        (httpx.Response(429, headers={"retry-after": "3600"}), RateLimitError),
    ],
    ids=["401", "400", "quota", "should-retry-false", "retry-after-too-long"],
)
def test_terminal_failures_are_sent_once(response: httpx.Response, error_class: type[Exception]) -> None:
    sleeps: list[float] = []
    recorder = scripted(response, then=ok_file)
    with make_client(recorder, sleeps) as client, pytest.raises(error_class):
        client.retrieve_file("file-1")
    assert len(recorder.requests) == 1
    assert sleeps == []


def test_should_retry_true_retries_a_client_error() -> None:
    sleeps: list[float] = []
    recorder = scripted(httpx.Response(400, headers={"x-should-retry": "true"}), then=ok_file)
    with make_client(recorder, sleeps) as client:
        assert client.retrieve_file("file-1").id == "file-1"
    assert len(recorder.requests) == 2


def test_connection_errors_and_timeouts_are_retried() -> None:
    sleeps: list[float] = []
    recorder = scripted(
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        then=ok_file,
    )
    with make_client(recorder, sleeps) as client:
        assert client.retrieve_file("file-1").id == "file-1"
    assert sleeps == [0.5, 1.0, 2.0]


def test_timeouts_raise_api_timeout_error_when_retries_run_out() -> None:
    sleeps: list[float] = []
    recorder = scripted(then=lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("read timed out")))
    policy = RetryPolicy(max_attempts=2, random_fraction=lambda: 0.0)
    with make_client(recorder, sleeps, policy) as client, pytest.raises(ApiTimeoutError, match="ReadTimeout"):
        client.retrieve_file("file-1")
    assert len(recorder.requests) == 2


def test_connect_error_raises_api_connection_error_naming_the_request() -> None:
    recorder = scripted(then=lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")))
    policy = RetryPolicy(max_attempts=1)
    client = make_client(recorder, [], policy, context="connection 'x'")
    with client, pytest.raises(ApiConnectionError) as caught:
        client.retrieve_file("file-1")
    assert not isinstance(caught.value, ApiTimeoutError)
    expected = (
        "GET https://api.openai.com/v1/files/file-1 (connection 'x') failed: ConnectError: refused; "
        "the server at https://api.openai.com could not be reached, so nothing was sent"
    )
    assert str(caught.value) == expected


# -- replaying bodies ------------------------------------------------------------------------------


def part_then_ok(*failures: Step) -> Recorder:
    return scripted(*failures, then=lambda r: httpx.Response(200, json=PART_JSON))


def sent_parts(recorder: Recorder) -> list[bytes]:
    return [parse_multipart(request)[0].data for request in recorder.requests]


def test_retried_file_range_resends_the_same_bytes(tmp_path: Path) -> None:
    content = bytes(range(256)) * 64
    path = tmp_path / "source.bin"
    path.write_bytes(content)
    recorder = part_then_ok(httpx.Response(500), httpx.ConnectError("reset"))
    with make_client(recorder, []) as client:
        part = client.add_upload_part("upload_1", FileRange(path, 1000, 5000))
    assert part.id == "part_1"
    assert sent_parts(recorder) == [content[1000:6000]] * 3
    assert recorder.bodies[0] == recorder.bodies[1] == recorder.bodies[2]


def test_retried_seekable_file_object_restarts_from_its_start_offset() -> None:
    content = b"HEADER--" + b"payload-bytes-" * 100
    handle = io.BytesIO(content)
    handle.seek(8)
    recorder = part_then_ok(httpx.Response(503), httpx.Response(429))
    with make_client(recorder, []) as client:
        client.add_upload_part("upload_1", handle)
    assert sent_parts(recorder) == [content[8:]] * 3
    assert recorder.bodies[0] == recorder.bodies[1] == recorder.bodies[2]


def test_retried_create_file_resends_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 1000)
    recorder = scripted(httpx.Response(429), then=ok_file)
    with make_client(recorder, []) as client:
        client.create_file(path, "batch")
    first, second = (parse_multipart(r) for r in recorder.requests)
    assert first == second
    assert first[-1].data == path.read_bytes()


class OneShotStream(io.RawIOBase):
    """A pipe-like stream: readable once, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def test_one_shot_stream_is_not_retried() -> None:
    recorder = part_then_ok(httpx.Response(500))
    with make_client(recorder, []) as client, pytest.raises(SourceNotReplayableError) as caught:
        client.add_upload_part("upload_1", OneShotStream(b"abc"))  # type: ignore[arg-type]
    assert len(recorder.requests) == 1
    assert isinstance(caught.value.__cause__, ServerError)
    assert "one-shot stream" in str(caught.value)


def test_one_shot_stream_reports_a_terminal_error_as_itself() -> None:
    recorder = part_then_ok(httpx.Response(400, json={"error": {"message": "part too big"}}))
    with make_client(recorder, []) as client, pytest.raises(BadRequestError, match="part too big"):
        client.add_upload_part("upload_1", OneShotStream(b"abc"))  # type: ignore[arg-type]


def test_one_shot_stream_succeeds_when_nothing_fails() -> None:
    recorder = part_then_ok()
    with make_client(recorder, []) as client:
        assert client.add_upload_part("upload_1", OneShotStream(b"abc")).id == "part_1"  # type: ignore[arg-type]
    assert sent_parts(recorder) == [b"abc"]


class BrokenStream(httpx.SyncByteStream):
    """A response body that breaks after its first chunk."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset mid-body")


def test_download_interrupted_midway_is_retried_from_the_start(tmp_path: Path) -> None:
    content = b"0123456789" * 50
    sleeps: list[float] = []
    recorder = scripted(
        httpx.Response(200, stream=BrokenStream(b"garbage-partial-body")),
        then=lambda r: httpx.Response(200, content=content),
    )
    handle = io.BytesIO(b"keep:")
    handle.seek(5)
    target = tmp_path / "out.bin"
    with make_client(recorder, sleeps) as client:
        assert client.download_file("file-1", handle) == len(content)
        assert client.download_file("file-1", target) == len(content)
    assert handle.getvalue() == b"keep:" + content
    assert target.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    assert sleeps == [0.5]


def test_failed_download_leaves_no_file(tmp_path: Path) -> None:
    recorder = scripted(then=lambda r: httpx.Response(404, json={"error": {"message": "No such File"}}))
    target = tmp_path / "out.bin"
    with make_client(recorder, []) as client, pytest.raises(ApiStatusError):
        client.download_file("file-1", target)
    assert list(tmp_path.iterdir()) == []


def test_create_file_does_not_duplicate_a_file_stored_by_a_failed_attempt() -> None:
    content = b'{"a": 1}\n'
    stored = {**FILE_JSON, "filename": "in.jsonl", "bytes": len(content), "created_at": 4_000_000_000}
    listing = {"object": "list", "data": [stored], "has_more": False}

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=content)
        if request.method == "GET":
            return httpx.Response(200, json=listing)
        return httpx.Response(500)

    recorder = Recorder(respond)
    with make_client(recorder, []) as client:
        file = client.create_file(content, "batch", filename="in.jsonl")
    assert file.id == "file-1"
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/v1/files"),
        ("GET", "/v1/files"),
        ("GET", "/v1/files/file-1/content"),
    ]
    assert dict(recorder.requests[1].url.params) == {"purpose": "batch", "order": "desc", "limit": "100"}


def test_create_file_recovery_ignores_a_same_name_file_with_other_content() -> None:
    content = b'{"a": 1}\n'
    other = {**FILE_JSON, "filename": "in.jsonl", "bytes": len(content), "created_at": 4_000_000_000}
    posts = 0

    def respond(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=b'{"b": 2}\n')
        if request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [other], "has_more": False})
        posts += 1
        if posts == 1:
            return httpx.Response(500)
        return httpx.Response(200, json={**other, "id": "file-mine"})

    recorder = Recorder(respond)
    with make_client(recorder, []) as client:
        file = client.create_file(content, "batch", filename="in.jsonl")
    assert file.id == "file-mine"
    assert posts == 2


# -- async -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_client_retries_with_the_same_policy_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_provider_files.api.async_client as client_module

    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)
    recorder = part_then_ok(
        httpx.Response(429, headers={"retry-after-ms": "100"}), httpx.ConnectError("reset")
    )

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return recorder(request)

    handle = io.BytesIO(b"xxpart-content")
    handle.seek(2)
    settings = ClientSettings(api_key=KEY, retry_policy=NO_JITTER)
    async with AsyncFilesClient(settings, transport=httpx.MockTransport(handler)) as client:
        part = await client.add_upload_part("upload_1", handle)
        with pytest.raises(AuthenticationError):
            recorder.respond = lambda r: httpx.Response(401)
            await client.retrieve_file("file-1")
    assert part.id == "part_1"
    assert sleeps == [0.1, 1.0]  # backoff counts the retry number, whatever caused the first one
    assert sent_parts(Recorder(recorder.respond, recorder.requests[:3])) == [b"part-content"] * 3
    assert len(recorder.requests) == 4
