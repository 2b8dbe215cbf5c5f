"""Helpers of the batch-rule tests: a client on the emulator, request files, waiting on a batch."""

from __future__ import annotations

import json
import time
from typing import Any

from airflow_provider_files.api import Batch, ClientSettings, FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
WAIT_S = 20.0
POLL_S = 0.05


def client_for(emulator: EmulatorHandle, *, max_retries: int = 3, gateway: str = "openai") -> FilesClient:
    settings = ClientSettings(
        api_key=emulator.api_key, gateway=gateway, base_url=emulator.base_url, max_retries=max_retries
    )
    return FilesClient(settings, sleep=lambda _s: None)


def requests_jsonl(count: int, *, prefix: str = "r", url: str = CHAT) -> bytes:
    lines = (
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": url,
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"hello {i}"}]},
        }
        for i in range(count)
    )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def upload_requests(
    client: FilesClient, count: int = 3, *, purpose: str = "batch", data: bytes | None = None
) -> str:
    payload = requests_jsonl(count) if data is None else data
    return client.create_file(payload, purpose, filename="requests.jsonl").id


def wait_until_done(client: FilesClient, batch: Batch) -> Batch:
    deadline = time.monotonic() + WAIT_S
    while not batch.is_terminal:
        assert time.monotonic() < deadline, f"batch {batch.id} stuck in {batch.status}"
        time.sleep(POLL_S)
        batch = client.retrieve_batch(batch.id)
    return batch


def created_count(emulator: EmulatorHandle) -> int:
    return int(emulator.stats()["batches_created"])


def batch_statuses(emulator: EmulatorHandle) -> list[Any]:
    return [b["status"] for b in emulator.stats()["batches"].values()]
