"""1 GiB through the uploads API: the server's memory stays bounded and the bytes arrive intact."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_files.emulator.testing import run_emulator

MIB = 1024 * 1024
PART_BYTES = 64 * MIB
PART_COUNT = 16  # 1 GiB
BLOCK_BYTES = MIB
PEAK_RSS_LIMIT_BYTES = 150 * 1000 * 1000
BOUNDARY = "emulator-test-boundary-7d3f"


def part_blocks(index: int) -> Iterator[bytes]:
    """64 MiB of part data as 1 MiB blocks, distinct per part, without holding the part in memory."""
    base = bytearray(_SEED_BLOCK)
    base[:8] = index.to_bytes(8, "big")
    block = bytes(base)
    for _ in range(PART_BYTES // BLOCK_BYTES):
        yield block


_SEED_BLOCK = os.urandom(BLOCK_BYTES)


def multipart_head(index: int) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="part-{index}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_body(index: int) -> Iterator[bytes]:
    yield multipart_head(index)
    yield from part_blocks(index)
    yield MULTIPART_TAIL


def multipart_length(index: int) -> int:
    return len(multipart_head(index)) + PART_BYTES + len(MULTIPART_TAIL)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_bytes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        self.peak_bytes = max(self.peak_bytes, int(line.split()[1]) * 1024)
            self.stop.wait(0.05)


@pytest.mark.heavy
def test_one_gib_upload_keeps_server_rss_under_150_mb(capsys: pytest.CaptureFixture[str]) -> None:
    expected = hashlib.md5()
    for index in range(PART_COUNT):
        for block in part_blocks(index):
            expected.update(block)

    with run_emulator() as emulator:
        sampler = RssSampler(emulator.pid)
        sampler.start()
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=120) as client:
            upload = client.post(
                "/uploads",
                json={
                    "filename": "big.jsonl",
                    "purpose": "batch",
                    "bytes": PART_BYTES * PART_COUNT,
                    "mime_type": "text/jsonl",
                },
            ).json()

            def send(index: int) -> str:
                response = client.post(
                    f"/uploads/{upload['id']}/parts",
                    content=multipart_body(index),
                    headers={
                        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                        "content-length": str(multipart_length(index)),
                    },
                )
                assert response.status_code == 200, response.text
                return str(response.json()["id"])

            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                part_ids = list(pool.map(send, range(PART_COUNT)))
            parts_done = time.monotonic()
            completed = client.post(
                f"/uploads/{upload['id']}/complete",
                json={"part_ids": part_ids, "md5": expected.hexdigest()},
            )
            finished = time.monotonic()
        sampler.stop.set()
        sampler.join()
        peak_hwm = emulator.peak_rss_bytes()
        stats = emulator.stats()

    assert completed.status_code == 200, completed.text
    assert completed.json()["file"]["bytes"] == PART_BYTES * PART_COUNT
    assert stats["uploads"][upload["id"]]["bytes_received"] == PART_BYTES * PART_COUNT
    assert max(peak_hwm, sampler.peak_bytes) < PEAK_RSS_LIMIT_BYTES
    with capsys.disabled():
        total_mb = PART_BYTES * PART_COUNT / 1e6
        print(
            f"\n1 GiB via uploads: parts {total_mb / (parts_done - started):.0f} MB/s "
            f"(2 connections, httpx client), complete+md5 {finished - parts_done:.2f} s, "
            f"server peak RSS {max(peak_hwm, sampler.peak_bytes) / 1e6:.0f} MB"
        )
