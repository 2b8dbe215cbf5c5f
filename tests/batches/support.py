"""Helpers of the batch tests: a client on the emulator, request files, batches run to their end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import orjson

from airflow_provider_files.api import Batch, ClientSettings, FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle

CHAT: Final = "/v1/chat/completions"
MODEL: Final = "gpt-4o-mini"
POLL_S: Final = 0.02
WAIT_S: Final = 20.0
LONG_DURATION_S: Final = 100.0


def client_for(emulator: EmulatorHandle) -> FilesClient:
    return FilesClient(ClientSettings(api_key=emulator.api_key, base_url=emulator.base_url, max_retries=2))


def request_line(custom_id: str) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"hello {custom_id}"}]}
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}) + b"\n"


def ids(count: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{index}" for index in range(count)]


def upload_requests(client: FilesClient, custom_ids: Iterable[str]) -> str:
    payload = b"".join(request_line(custom_id) for custom_id in custom_ids)
    return client.create_file(payload, "batch", filename="requests.jsonl").id


def wait_for(client: FilesClient, batch_id: str, done: Callable[[Batch], bool] | None = None) -> Batch:
    done = done or (lambda batch: batch.is_terminal)
    deadline = time.monotonic() + WAIT_S
    while True:
        batch = client.retrieve_batch(batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} stuck in {batch.status}"
        time.sleep(POLL_S)


def run_batch(client: FilesClient, custom_ids: Iterable[str]) -> Batch:
    """Upload the requests, create the batch and wait until it ends."""
    batch = client.create_batch(upload_requests(client, custom_ids), CHAT)
    return wait_for(client, batch.id)


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
