"""Helpers of the batch-rule tests: a client on the emulator, request files, waiting on a batch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

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


# -- results collection ---------------------------------------------------------------------------

LONG_DURATION_S = 100.0


def request_line(custom_id: str, **extra: Any) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"hello {custom_id}"}], **extra}
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}) + b"\n"


def ids(count: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{index}" for index in range(count)]


def upload_ids(client: FilesClient, custom_ids: Iterable[str], **extra: Any) -> str:
    """Upload one chat request per ``custom_id``, in that order; returns the file id."""
    payload = b"".join(request_line(custom_id, **extra) for custom_id in custom_ids)
    return client.create_file(payload, "batch", filename="requests.jsonl").id


def wait_for(client: FilesClient, batch_id: str, done: Callable[[Batch], bool] | None = None) -> Batch:
    """The batch once ``done`` says so (default: once it has ended)."""
    done = done or (lambda batch: batch.is_terminal)
    deadline = time.monotonic() + WAIT_S
    while True:
        batch = client.retrieve_batch(batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} stuck in {batch.status}"
        time.sleep(POLL_S)


def run_batch(client: FilesClient, custom_ids: Iterable[str], **extra: Any) -> Batch:
    """Upload the requests (``extra`` goes into each body), create the batch, wait until it ends."""
    return wait_for(client, client.create_batch(upload_ids(client, custom_ids, **extra), CHAT).id)


def checked(client: FilesClient, batch_id: str) -> Batch:
    """The batch once its input is checked (it names its model), on a long-running emulator batch."""
    return wait_for(client, batch_id, lambda b: b.model is not None or b.is_terminal)


def jsonl_ids(data: bytes) -> list[str]:
    return [orjson.loads(line)["custom_id"] for line in data.splitlines()]


def jsonl(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines()]


class Folder:
    """``open_dest`` for a local folder, remembering what was opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened: list[str] = []

    def __call__(self, name: str) -> Any:
        self.opened.append(name)
        return (self.path / name).open("wb")

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()
