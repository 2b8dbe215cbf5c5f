"""The official openai SDK, unmodified, against the emulator: every Files and Uploads call."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import openai
import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle


@pytest.fixture
def client(emulator: EmulatorHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0)


def _batch_lines(count: int) -> bytes:
    return b"".join(
        b'{"custom_id": "r%d", "method": "POST", "url": "/v1/chat/completions", '
        b'"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n' % i
        for i in range(count)
    )


def test_files_create_retrieve_content_delete(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    payload = _batch_lines(50)
    created = client.files.create(file=("requests.jsonl", io.BytesIO(payload)), purpose="batch")

    assert created.id.startswith("file-")
    assert created.bytes == len(payload)
    assert created.filename == "requests.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert created.expires_at == created.created_at + 30 * 24 * 3600  # batch default
    assert created._request_id is not None and created._request_id.startswith("req_")

    retrieved = client.files.retrieve(created.id)
    assert retrieved.id == created.id and retrieved.bytes == len(payload)

    content = client.files.content(created.id).read()
    assert hashlib.md5(content).hexdigest() == hashlib.md5(payload).hexdigest()
    assert emulator.file_md5(created.id) == hashlib.md5(payload).hexdigest()

    deleted = client.files.delete(created.id)
    assert deleted.id == created.id and deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


def test_files_create_with_expires_after(client: openai.OpenAI) -> None:
    created = client.files.create(
        file=("notes.txt", b"hello"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert created.expires_at == created.created_at + 7200


def test_files_list_paginates_with_sdk_cursor(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"f{i}.jsonl", _batch_lines(1)), purpose="batch").id for i in range(7)]
    client.files.create(file=("other.txt", b"x"), purpose="user_data")

    first_page = client.files.list(purpose="batch", limit=3, order="asc")
    assert [f.id for f in first_page.data] == ids[:3]
    assert first_page.has_more is True

    every = [f.id for f in client.files.list(purpose="batch", limit=3, order="asc")]  # auto-paging
    assert every == ids
    newest_first = [f.id for f in client.files.list(purpose="batch", limit=2)]
    assert newest_first == list(reversed(ids))
    assert len(client.files.list().data) == 8


def test_uploads_create_parts_complete(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    chunks = [os.urandom(1000), os.urandom(1000), os.urandom(123)]
    whole = b"".join(chunks)
    upload = client.uploads.create(
        filename="big.jsonl", purpose="batch", bytes=len(whole), mime_type="text/jsonl"
    )
    assert upload.status == "pending" and upload.id.startswith("upload_") and upload.file is None
    assert upload.expires_at - upload.created_at == 3600

    # Parts sent out of order; part_ids order defines the file.
    part_ids = {}
    for index in (2, 0, 1):
        part = client.uploads.parts.create(upload_id=upload.id, data=chunks[index])
        assert part.object == "upload.part" and part.upload_id == upload.id
        part_ids[index] = part.id
    completed = client.uploads.complete(
        upload_id=upload.id,
        part_ids=[part_ids[0], part_ids[1], part_ids[2]],
        md5=hashlib.md5(whole).hexdigest(),
    )
    assert completed.status == "completed"
    assert completed.file is not None and completed.file.bytes == len(whole)
    assert client.files.content(completed.file.id).read() == whole
    assert emulator.stats()["uploads"][upload.id]["bytes_received"] == len(whole)


def test_uploads_cancel(client: openai.OpenAI) -> None:
    upload = client.uploads.create(filename="x.jsonl", purpose="batch", bytes=10, mime_type="text/jsonl")
    cancelled = client.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled" and cancelled.file is None
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=upload.id, data=b"0123456789")


def test_upload_file_chunked(client: openai.OpenAI, tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_bytes(_batch_lines(200))
    payload = source.read_bytes()

    upload = client.uploads.upload_file_chunked(
        file=source,
        mime_type="text/jsonl",
        purpose="batch",
        part_size=4096,
        md5=hashlib.md5(payload).hexdigest(),
    )

    assert upload.status == "completed"
    assert upload.file is not None and upload.file.bytes == len(payload)
    assert upload.file.filename == "requests.jsonl"
    assert client.files.content(upload.file.id).read() == payload


def test_upload_file_chunked_from_bytes(client: openai.OpenAI) -> None:
    payload = os.urandom(10_000)
    upload = client.uploads.upload_file_chunked(
        file=payload,
        filename="blob.bin",
        bytes=len(payload),
        mime_type="application/octet-stream",
        purpose="user_data",
        part_size=3000,
    )
    assert upload.file is not None
    assert client.files.content(upload.file.id).read() == payload


def test_sdk_error_carries_request_id(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.files.retrieve("file-doesnotexist")
    assert raised.value.request_id is not None and raised.value.request_id.startswith("req_")
    assert raised.value.body is not None
