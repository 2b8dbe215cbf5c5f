"""Downloads to a path: each writes a temporary file of its own, renamed over the path at the end."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_files.api import ClientSettings, FilesClient, ServerError

from .support import RawHttpServer, Recorder, http_head

KEY = "sk-test-downloads-0123456789"
A_BYTES = b"A" * 3000
B_BYTES = b"B" * 500


def test_two_downloads_to_one_path_each_leave_a_whole_file(tmp_path: Path) -> None:
    """The second download starts and ends while the first is half written (same thread, so the
    interleaving is exact): both succeed and the path holds the one that ended last, whole."""
    destination = tmp_path / "results.jsonl"
    client: FilesClient
    written_b: list[int] = []

    def a_body() -> Iterator[bytes]:
        yield A_BYTES[:1000]
        written_b.append(client.download_file("file-B", destination))
        assert destination.read_bytes() == B_BYTES
        yield A_BYTES[1000:]

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/files/file-A/content":
            return httpx.Response(200, content=a_body())
        return httpx.Response(200, content=B_BYTES)

    client = FilesClient(ClientSettings(api_key=KEY), transport=httpx.MockTransport(respond))
    with client:
        assert client.download_file("file-A", destination) == len(A_BYTES)
    assert written_b == [len(B_BYTES)]
    assert destination.read_bytes() == A_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_parallel_downloads_over_http_to_one_path(tmp_path: Path) -> None:
    """Threads and a real server: whatever the interleaving, the path ends as one whole file."""
    contents = {f"/v1/files/file-{n}/content".encode(): bytes([65 + n]) * 200_000 for n in range(4)}

    def reply(request: bytes, stop: threading.Event) -> Iterator[bytes]:
        path = request.split(b" ", 2)[1]
        body = contents[path]
        yield http_head(content_type="application/octet-stream", length=len(body))
        for start in range(0, len(body), 20_000):  # in pieces, so that the writers overlap
            if stop.wait(0.002):
                return
            yield body[start : start + 20_000]

    destination = tmp_path / "out.bin"
    errors: list[BaseException] = []
    with (
        RawHttpServer(reply) as server,
        FilesClient(ClientSettings(api_key=KEY, base_url=server.url)) as client,
    ):

        def download(n: int) -> None:
            try:
                client.download_file(f"file-{n}", destination)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=download, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert destination.read_bytes() in contents.values()
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_failed_download_leaves_the_path_as_it_was_and_no_temporary_file(tmp_path: Path) -> None:
    destination = tmp_path / "kept.jsonl"
    destination.write_bytes(b"old")
    recorder = Recorder(lambda r: httpx.Response(500, json={"error": {"message": "boom"}}))
    settings = ClientSettings(api_key=KEY, max_retries=0)
    with FilesClient(settings, transport=recorder.transport) as client, pytest.raises(ServerError):
        client.download_file("file-1", destination)
    assert destination.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.jsonl"]


def test_a_downloaded_file_gets_the_mode_of_a_new_file(tmp_path: Path) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, content=b"x"))
    previous = os.umask(0o027)
    try:
        with FilesClient(ClientSettings(api_key=KEY), transport=recorder.transport) as client:
            client.download_file("file-1", tmp_path / "a")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
