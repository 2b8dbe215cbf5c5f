"""Fault injection, latency and the per-connection bandwidth cap."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from airflow_provider_files.emulator.faults import FaultPlan, FaultSpecError
from airflow_provider_files.emulator.testing import EmulatorHandle

AUTH = {"Authorization": "Bearer sk-test"}


def make_upload(client: httpx.Client, size: int) -> str:
    response = client.post(
        "/uploads", json={"filename": "a.jsonl", "purpose": "batch", "bytes": size, "mime_type": "text/jsonl"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_429_has_retry_hints_and_no_side_effect(emulator: EmulatorHandle) -> None:
    emulator.set_faults("create_file:429=1,retry_after=2.5")
    with httpx.Client(base_url=emulator.base_url, headers=AUTH) as client:
        response = client.post("/files", data={"purpose": "batch"}, files={"file": ("a", b"{}")})
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert response.headers["retry-after-ms"] == "2500"
        assert response.headers["x-request-id"].startswith("req_")
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert client.get("/files").status_code == 200  # other routes unaffected
    assert emulator.stats()["file_count"] == 0


def test_insufficient_quota_429_has_no_retry_hint(emulator: EmulatorHandle) -> None:
    emulator.set_faults("quota=1")
    response = httpx.get(f"{emulator.base_url}/files", headers=AUTH)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert "retry-after" not in response.headers


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(emulator: EmulatorHandle, status: int) -> None:
    emulator.set_faults(f"{status}=1")
    response = httpx.get(f"{emulator.base_url}/files", headers=AUTH)
    assert response.status_code == status
    if status == 502:
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert response.json()["error"]["type"] == "server_error"


def test_counted_faults_then_success_with_sdk_retries(emulator: EmulatorHandle) -> None:
    emulator.set_faults("parts:429=x1,parts:503=x1")
    client = openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=3)
    upload = client.uploads.create(filename="a.jsonl", purpose="batch", bytes=3, mime_type="text/jsonl")
    part = client.uploads.parts.create(upload_id=upload.id, data=b"abc")
    assert part.upload_id == upload.id
    statuses = [entry["status"] for entry in emulator.request_log() if entry["route"] == "add_part"]
    assert statuses == [429, 503, 200]
    assert emulator.stats()["uploads"][upload.id]["part_count"] == 1


def test_drop_mid_body_is_a_connection_error_and_stores_nothing(emulator: EmulatorHandle) -> None:
    emulator.set_faults("parts:drop=1")
    with httpx.Client(base_url=emulator.base_url, headers=AUTH) as client:
        upload_id = make_upload(client, 4 * 1024 * 1024)
        with pytest.raises(httpx.TransportError):
            client.post(f"/uploads/{upload_id}/parts", files={"data": ("b", b"x" * 4 * 1024 * 1024)})
        emulator.clear_faults()
        # the pool recovers on a fresh connection
        assert client.post(f"/uploads/{upload_id}/parts", files={"data": ("b", b"y")}).status_code == 200
    upload_stats = emulator.stats()["uploads"][upload_id]
    assert upload_stats["part_count"] == 1 and upload_stats["bytes_received"] == 1
    dropped = [e for e in emulator.request_log() if e["status"] == "dropped"]
    assert len(dropped) == 1 and 0 < dropped[0]["bytes_received"] < 4 * 1024 * 1024


def test_drop_on_bodyless_request(emulator: EmulatorHandle) -> None:
    emulator.set_faults("list_files:drop=x1")
    with httpx.Client(base_url=emulator.base_url, headers=AUTH) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/files")
        assert client.get("/files").status_code == 200


def test_drop_after_processes_the_request_but_loses_the_response(emulator: EmulatorHandle) -> None:
    emulator.set_faults("create_file:drop_after=x1")
    with httpx.Client(base_url=emulator.base_url, headers=AUTH) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/files", data={"purpose": "batch"}, files={"file": ("a", b"{}")})
        listed = client.get("/files").json()["data"]
    assert len(listed) == 1  # the file exists although the client saw an error
    assert emulator.faults()["injected"] == {"drop_after": 1}


def test_seeded_probabilities_are_reproducible() -> None:
    first = FaultPlan.parse("429=0.3,500=0.2", seed=11)
    second = FaultPlan.parse("429=0.3,500=0.2", seed=11)
    decisions = [first.decide("add_part") for _ in range(200)]
    assert decisions == [second.decide("add_part") for _ in range(200)]
    share = sum(d is not None for d in decisions) / len(decisions)
    assert 0.35 < share < 0.65


def test_route_filter_and_groups() -> None:
    plan = FaultPlan.parse("uploads:500=1")
    assert plan.decide("add_part") == "500"
    assert plan.decide("complete_upload") == "500"
    assert plan.decide("create_file") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("429", "form"),
        ("418=0.1", "unknown key"),
        ("moon:429=0.1", "unknown route"),
        ("429=2", "probability"),
        ("429=lots", "not a number"),
    ],
)
def test_bad_fault_specs_name_the_item(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        FaultPlan.parse(spec)


def test_set_faults_rejects_bad_spec(emulator: EmulatorHandle) -> None:
    with pytest.raises(RuntimeError, match="unknown key"):
        emulator.set_faults("teapot=1")


def test_latency_is_added_to_every_response(emulator: EmulatorHandle) -> None:
    emulator.set_latency(150)
    with httpx.Client(base_url=emulator.base_url, headers=AUTH) as client:
        client.get("/files")  # connect outside the measurement
        started = time.monotonic()
        assert client.get("/files").status_code == 200
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        assert client.get("/files/file-nope").status_code == 404
        assert time.monotonic() - started >= 0.15


def test_route_latency_from_fault_spec(emulator: EmulatorHandle) -> None:
    emulator.set_faults("list_files:latency_ms=120")
    with httpx.Client(base_url=emulator.base_url, headers=AUTH) as client:
        client.get("/files/file-nope")
        started = time.monotonic()
        client.get("/files")
        assert time.monotonic() - started >= 0.12


def test_bandwidth_cap_throttles_request_and_response_bodies(emulator: EmulatorHandle) -> None:
    size = 3_000_000
    emulator.set_bandwidth(5.0)  # 5 MB/s: 3 MB takes >= ~0.6 s even with socket buffers absorbing some
    with httpx.Client(base_url=emulator.base_url, headers=AUTH, timeout=30) as client:
        client.get("/files")
        started = time.monotonic()
        created = client.post("/files", data={"purpose": "user_data"}, files={"file": ("a", b"z" * size)})
        upload_s = time.monotonic() - started
        assert created.status_code == 200
        started = time.monotonic()
        content = client.get(f"/files/{created.json()['id']}/content").content
        download_s = time.monotonic() - started
    assert len(content) == size
    assert upload_s >= 0.3
    assert download_s >= 0.3


def _paced_seconds(*, late_by_s: float, idle_s: float = 0.0) -> float:
    """Seconds a connection capped at 25 MB/s takes for 40 chunks of 256 KiB, on a simulated clock
    where every wait ends ``late_by_s`` late (as a busy event loop's timers do)."""
    from airflow_provider_files.emulator.server import MIN_THROTTLE_SLEEP_S, Connection

    now = 1000.0
    connection = Connection(next_free_at=now)
    for _ in range(40):
        now += idle_s
        delay = connection.pace(now, 256 * 1024 / 25e6)
        if delay >= MIN_THROTTLE_SLEEP_S:
            now += delay + late_by_s
    return max(now, connection.next_free_at) - 1000.0


CHUNK_S = 256 * 1024 / 25e6


def test_bandwidth_cap_reaches_its_rate_when_timers_wake_late() -> None:
    # Every wake-up 3 ms late (about a third of a chunk's time): the link still runs at its cap,
    # not about 30% under it as when each late wake-up was lost, and never faster than the cap.
    assert _paced_seconds(late_by_s=0.003) == pytest.approx(40 * CHUNK_S, abs=0.01)
    assert _paced_seconds(late_by_s=0.0) == pytest.approx(40 * CHUNK_S, abs=0.01)


def test_bandwidth_cap_gives_no_burst_after_an_idle_connection() -> None:
    # 0.2 s idle before every chunk: each chunk still takes its full time after the pause.
    assert _paced_seconds(late_by_s=0.0, idle_s=0.2) == pytest.approx(40 * (0.2 + CHUNK_S), abs=0.01)
