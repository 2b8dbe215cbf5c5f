"""A server others point at must not fall over: races, shared data folders, admin routes, request
heads, settings; and ``complete`` verifies md5 without re-reading parts hashed in flight."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle

MIB = 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024  # the emulator's bound on a request line and headers


@pytest.fixture
def api(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=60) as client:
        yield client


def create_upload(api: httpx.Client, size_bytes: int) -> str:
    response = api.post(
        "/uploads",
        json={"filename": "f.jsonl", "purpose": "batch", "bytes": size_bytes, "mime_type": "text/jsonl"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def add_part(api: httpx.Client, upload_id: str, data: bytes) -> str:
    response = api.post(f"/uploads/{upload_id}/parts", files={"data": ("part", data)})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def upload_parts(api: httpx.Client, parts: list[bytes]) -> tuple[str, list[str]]:
    """An upload with ``parts`` sent one after the other (so created in this order)."""
    upload_id = create_upload(api, sum(len(part) for part in parts))
    return upload_id, [add_part(api, upload_id, part) for part in parts]


def distinct_parts(count: int, size_bytes: int) -> list[bytes]:
    seed = os.urandom(size_bytes)
    return [index.to_bytes(4, "big") + seed[4:] for index in range(count)]


def assert_api_error(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    return dict(error)


# -- complete racing cancel (issue 12.13) ------------------------------------------------------------


def test_complete_racing_cancel_is_a_clean_4xx(emulator: EmulatorHandle, api: httpx.Client) -> None:
    parts = distinct_parts(4, 8 * MIB)
    expected_md5 = hashlib.md5(b"".join(parts)).hexdigest()
    cancel_won = 0
    for _ in range(3):
        upload_id, part_ids = upload_parts(api, parts)
        listed = list(reversed(part_ids))  # not the order hashed in flight: re-read at complete
        listed_md5 = hashlib.md5(b"".join(reversed(parts))).hexdigest()
        assert listed_md5 != expected_md5
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            completing = pool.submit(
                api.post, f"/uploads/{upload_id}/complete", json={"part_ids": listed, "md5": listed_md5}
            )
            time.sleep(0.02)
            cancelled = api.post(f"/uploads/{upload_id}/cancel")
            completed = completing.result()
        if completed.status_code == 200:
            assert_api_error(cancelled)  # too late to cancel a completed upload
        else:
            error = assert_api_error(completed)
            assert "cancelled" in error["message"]
            assert cancelled.status_code == 200, cancelled.text
            cancel_won += 1
    assert emulator.stats()["upload_count"] == 3
    print(f"cancel won {cancel_won} of 3 races")


def test_filename_star_with_unknown_charset_has_a_contract_test() -> None:
    source = (Path(__file__).parent / "test_emulator_contract.py").read_text()
    assert "filename*=x-unknown-charset''" in source


# -- reset, admin key, settings, request heads (issue 12.14) ------------------------------------------


def test_reset_deletes_only_the_files_it_created(emulator: EmulatorHandle, api: httpx.Client) -> None:
    foreign = [emulator.data_dir / "files" / "someone-elses.jsonl", emulator.data_dir / "parts" / "keep.bin"]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not the emulator's")
    created = api.post("/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", b"{}\n")})
    assert created.status_code == 200, created.text
    _, part_ids = upload_parts(api, [b"x" * 10, b"y" * 10])
    own = [emulator.data_dir / "files" / created.json()["id"]] + [
        emulator.data_dir / "parts" / part_id for part_id in part_ids
    ]
    assert all(path.exists() for path in own)

    emulator.reset()

    assert [path.exists() for path in own] == [False, False, False]
    assert [path.read_bytes() for path in foreign] == [b"not the emulator's"] * 2
    assert emulator.stats()["file_count"] == 0
    # and it still works afterwards
    assert (
        api.post("/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", b"{}\n")}).status_code == 200
    )


ADMIN_KEY = "sk-admin-routes-key-4242"


def test_admin_routes_need_the_api_key_when_one_is_set(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    handle = emulator_factory(api_key=ADMIN_KEY)
    root = handle.root_url + "/_emulator"
    assert httpx.get(root + "/health").status_code == 200  # readiness probes need no key
    for method, route in (("POST", "/reset"), ("GET", "/stats"), ("GET", "/requests"), ("POST", "/config")):
        for headers in ({}, {"Authorization": "Bearer sk-wrong-key-000000"}, {"api-key": "sk-wrong"}):
            response = httpx.request(method, root + route, headers=headers, json={})
            assert response.status_code == 401, (method, route, headers, response.text)
            assert ADMIN_KEY not in response.text
            assert_api_error(response)
    with_key = httpx.get(root + "/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert with_key.status_code == 200
    assert httpx.get(root + "/stats", headers={"api-key": ADMIN_KEY}).status_code == 200
    handle.reset()  # the testing handle sends the key


@pytest.mark.parametrize(
    ("settings", "param", "says"),
    [
        ({"max_part_bytes": "abc"}, "max_part_bytes", "integer"),
        ({"max_part_bytes": 1.5}, "max_part_bytes", "integer"),
        ({"max_part_bytes": True}, "max_part_bytes", "integer"),
        ({"max_part_bytes": 0}, "max_part_bytes", "greater than 0"),
        ({"max_file_bytes": None}, "max_file_bytes", "null"),
        ({"latency_ms": -1}, "latency_ms", "at least 0"),
        ({"latency_ms": "5"}, "latency_ms", "number"),
        ({"validate_batch": "yes"}, "validate_batch", "true or false"),
        ({"batch_request_error_rate": 1.5}, "batch_request_error_rate", "between 0 and 1"),
        ({"bandwidth_per_connection_mbps": 0}, "bandwidth_per_connection_mbps", "greater than 0"),
        ({"latency_ms": 7, "upload_expiry_s": []}, "upload_expiry_s", "number"),
    ],
)
def test_config_refuses_wrong_types_and_ranges(
    emulator: EmulatorHandle, settings: dict[str, Any], param: str, says: str
) -> None:
    before = emulator.settings()
    response = httpx.post(emulator.root_url + "/_emulator/config", json=settings)
    error = assert_api_error(response)
    assert response.status_code == 400
    assert error["param"] == param
    assert says in error["message"]
    assert emulator.settings() == before  # nothing applied, not even the valid ones


def test_config_takes_valid_settings(emulator: EmulatorHandle) -> None:
    changed = emulator.configure(latency_ms=3, max_part_bytes=1024, bandwidth_per_connection_mbps=None)
    assert (changed["latency_ms"], changed["max_part_bytes"]) == (3.0, 1024)
    assert changed["bandwidth_per_connection_mbps"] is None


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _send_huge_header(root_url: str, header_bytes: int) -> tuple[bytes, int]:
    """Send a request whose header is ``header_bytes`` long; the answer and the bytes sent."""
    host, port = root_url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /v1/files HTTP/1.1\r\nHost: emulator\r\nX-Huge: ")
        chunk = b"a" * (64 * 1024)
        try:
            while sent < header_bytes:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while block := sock.recv(65536):
                answer += block
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def test_huge_request_header_is_refused_without_holding_it(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    handle = emulator_factory()
    before = _rss_bytes(handle.pid)
    answer, sent = _send_huge_header(handle.root_url, 32 * MIB)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"invalid_request_error"' in answer
    assert sent > MAX_HEAD_BYTES  # the server read past its limit, and answered without holding it
    assert _rss_bytes(handle.pid) - before < 20 * 1000 * 1000
    # ordinary and moderately large headers still work, on new connections
    headers = {"Authorization": f"Bearer {handle.api_key}", "X-Trace": "t" * 16_000}
    assert httpx.get(handle.base_url + "/files", headers=headers).status_code == 200


def test_bodies_on_kept_alive_connections_do_not_count_as_request_heads(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    # small and large bodies, arriving with their headers or after them, on one connection
    for size_bytes in (10, 100 * 1024, 300 * 1024, 3 * MIB, 50 * 1024):
        created = api.post(
            "/files", data={"purpose": "user_data"}, files={"file": ("a.txt", b"x" * size_bytes)}
        )
        assert created.status_code == 200, created.text
        upload_id = create_upload(api, size_bytes)
        add_part(api, upload_id, b"y" * size_bytes)
    assert len({entry["connection"] for entry in emulator.request_log()}) == 1


# -- md5 without a serial tail (issue 15.1) -----------------------------------------------------------


def upload_stats(emulator: EmulatorHandle, upload_id: str) -> dict[str, Any]:
    return dict(emulator.stats()["uploads"][upload_id])


def test_complete_with_parts_in_creation_order_reads_no_part_again(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    parts = distinct_parts(6, 2 * MIB)
    upload_id, part_ids = upload_parts(api, parts)
    md5 = hashlib.md5(b"".join(parts)).hexdigest()
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": part_ids, "md5": md5})
    assert completed.status_code == 200, completed.text
    stats = upload_stats(emulator, upload_id)
    assert stats["md5_bytes_reread_at_complete"] == 0
    assert stats["md5_bytes_hashed_in_flight"] == 12 * MIB
    assert emulator.file_md5(completed.json()["file"]["id"]) == md5


def test_complete_in_another_order_rereads_from_the_first_difference_only(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    parts = distinct_parts(5, MIB)
    upload_id, part_ids = upload_parts(api, parts)
    order = [0, 1, 2, 4, 3]
    listed = [part_ids[index] for index in order]
    data = b"".join(parts[index] for index in order)
    md5 = hashlib.md5(data).hexdigest()
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": listed, "md5": md5})
    assert completed.status_code == 200, completed.text
    assert upload_stats(emulator, upload_id)["md5_bytes_reread_at_complete"] == 2 * MIB
    content = api.get(f"/files/{completed.json()['file']['id']}/content").content
    assert hashlib.md5(content).hexdigest() == md5


def test_complete_out_of_order_still_checks_the_md5_exactly(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    parts = distinct_parts(4, MIB)
    upload_id, part_ids = upload_parts(api, parts)
    in_creation_order = hashlib.md5(b"".join(parts)).hexdigest()
    reversed_ids = list(reversed(part_ids))
    wrong = api.post(
        f"/uploads/{upload_id}/complete", json={"part_ids": reversed_ids, "md5": in_creation_order}
    )
    assert assert_api_error(wrong)["param"] == "md5"
    right = hashlib.md5(b"".join(reversed(parts))).hexdigest()
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": reversed_ids, "md5": right})
    assert completed.status_code == 200, completed.text
    assert emulator.file_md5(completed.json()["file"]["id"]) == right


def test_complete_with_a_prefix_of_the_parts_reads_no_part_again(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    parts = distinct_parts(4, MIB)
    upload_id = create_upload(api, 3 * MIB)
    part_ids = [add_part(api, upload_id, part) for part in parts]  # one part too many
    md5 = hashlib.md5(b"".join(parts[:3])).hexdigest()
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": part_ids[:3], "md5": md5})
    assert completed.status_code == 200, completed.text
    assert upload_stats(emulator, upload_id)["md5_bytes_reread_at_complete"] == 0
    assert emulator.file_md5(completed.json()["file"]["id"]) == md5


def _start_streamed_parts(
    emulator: EmulatorHandle, upload_id: str, parts: list[bytes], releases: list[threading.Event]
) -> tuple[concurrent.futures.ThreadPoolExecutor, list[concurrent.futures.Future[httpx.Response]]]:
    """Start one request per part, in order, each created on the server before the next begins;
    each sends half its bytes, then the rest once its ``releases`` event is set."""
    boundary = "part-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="part"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def send(data: bytes, release: threading.Event) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield head + data[: len(data) // 2]
            assert release.wait(60)
            yield data[len(data) // 2 :] + tail

        headers = {
            "Authorization": f"Bearer {emulator.api_key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + len(data) + len(tail)),
        }
        with httpx.Client(base_url=emulator.base_url, timeout=60) as client:
            return client.post(f"/uploads/{upload_id}/parts", content=body(), headers=headers)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(parts))
    futures = []
    for index, (data, release) in enumerate(zip(parts, releases, strict=True)):
        futures.append(pool.submit(send, data, release))
        deadline = time.monotonic() + 30
        while sum(entry["route"] == "add_part" for entry in emulator.request_log()) <= index:
            assert time.monotonic() < deadline, "the part request did not reach the emulator"
            time.sleep(0.02)
    return pool, futures


def _finish_in_reverse(
    releases: list[threading.Event], futures: list[concurrent.futures.Future[httpx.Response]]
) -> list[str]:
    for release, future in zip(reversed(releases), reversed(futures), strict=True):
        release.set()
        response = future.result(60)
        assert response.status_code == 200, response.text
    return [str(future.result().json()["id"]) for future in futures]


def test_the_in_flight_hash_advances_as_parts_become_contiguous_in_creation_order(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    parts = distinct_parts(4, 2 * MIB)
    upload_id = create_upload(api, 8 * MIB)
    releases = [threading.Event() for _ in parts]
    pool, futures = _start_streamed_parts(emulator, upload_id, parts, releases)
    with pool:
        part_ids = _finish_in_reverse(releases, futures)  # the last created finishes first
    # once the first part is in, the hasher takes the ones stored after it from disk, before complete
    deadline = time.monotonic() + 30
    while upload_stats(emulator, upload_id)["md5_bytes_hashed_in_flight"] < 8 * MIB:
        assert time.monotonic() < deadline, upload_stats(emulator, upload_id)
        time.sleep(0.02)
    md5 = hashlib.md5(b"".join(parts)).hexdigest()
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": part_ids, "md5": md5})
    assert completed.status_code == 200, completed.text
    stats = upload_stats(emulator, upload_id)
    assert stats["md5_bytes_reread_at_complete"] == 0
    assert stats["md5_bytes_hashed_at_complete"] == 0
    assert stats["md5_parts_in_order_at_complete"] == 4
    assert emulator.file_md5(completed.json()["file"]["id"]) == md5


def test_a_corrupted_part_arriving_out_of_order_still_fails_the_md5(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    parts = distinct_parts(4, 2 * MIB)
    md5 = hashlib.md5(b"".join(parts)).hexdigest()
    sent = list(parts)
    sent[2] = sent[2][:-1] + bytes([sent[2][-1] ^ 0xFF])  # one byte of the third part flipped
    upload_id = create_upload(api, 8 * MIB)
    releases = [threading.Event() for _ in parts]
    pool, futures = _start_streamed_parts(emulator, upload_id, sent, releases)
    with pool:
        part_ids = _finish_in_reverse(releases, futures)
    wrong = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": part_ids, "md5": md5})
    assert assert_api_error(wrong)["param"] == "md5"
    assert upload_stats(emulator, upload_id)["status"] == "pending"


# -- Python 3.10 (no asyncio.Runner) --------------------------------------------------------------------


def test_emulator_starts_without_python_3_11_asyncio_apis(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = (
        "import asyncio, sys\n"
        "for name in ('Runner', 'TaskGroup', 'timeout', 'timeout_at'):\n"
        "    if hasattr(asyncio, name): delattr(asyncio, name)\n"
        "from airflow_provider_files.emulator.__main__ import main\n"
        "sys.exit(main())\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready_line = process.stdout.readline() if process.stdout else ""
        assert "listening on" in ready_line, ready_line + (process.stdout.read() if process.stdout else "")
        port = int(port_file.read_text())
        response = httpx.get(f"http://127.0.0.1:{port}/v1/files", headers={"Authorization": "Bearer sk-x"})
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_failed_part_between_good_ones_does_not_spoil_the_in_flight_hash(
    emulator: EmulatorHandle, api: httpx.Client
) -> None:
    emulator.configure(max_part_bytes=3 * MIB)
    parts = distinct_parts(3, 2 * MIB)
    upload_id = create_upload(api, 6 * MIB)
    first = add_part(api, upload_id, parts[0])
    too_big = api.post(f"/uploads/{upload_id}/parts", files={"data": ("part", os.urandom(5 * MIB))})
    assert too_big.status_code == 413, too_big.text
    rest = [add_part(api, upload_id, part) for part in parts[1:]]
    md5 = hashlib.md5(b"".join(parts)).hexdigest()
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [first, *rest], "md5": md5})
    assert completed.status_code == 200, completed.text
    assert upload_stats(emulator, upload_id)["md5_bytes_reread_at_complete"] == 0
    assert emulator.file_md5(completed.json()["file"]["id"]) == md5
