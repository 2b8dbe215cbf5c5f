"""What the server says is checked, not trusted: sizes, a refused md5 field, a cancelled complete,
checkpoints that name another file or parts of another upload. Over real HTTP: the emulator,
behind a proxy that changes its answers where a case needs a server that misbehaves."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.api import ClientSettings, FilesClient, UnexpectedResponseError
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.uploads import (
    CheckpointState,
    ChunkedUploader,
    JsonFileCheckpointStore,
    LocalFileSource,
    SingleRequestUploader,
    SourceChangedError,
    UploadError,
)
from airflow_provider_files.uploads.checkpoint import SINGLE_CHECKPOINT_KIND
from airflow_provider_files.uploads.reuse import reusable_file
from tests.support import ProxiedCall, RewritingProxy, api_error

from .support import FAST_RETRIES, md5_file

PART = 256 * 1024
SIZE = 3 * PART + 1000


def proxied_client(proxy: RewritingProxy, emulator: EmulatorHandle) -> FilesClient:
    settings = ClientSettings(api_key=emulator.api_key, base_url=proxy.base_url, retry_policy=FAST_RETRIES)
    return FilesClient(settings, max_connections=16)


def with_bytes(value: int, *, route: str) -> Callable[[ProxiedCall], tuple[int, Any] | None]:
    """Answers of ``route`` (``files`` or ``complete``) with the file's ``bytes`` replaced by ``value``."""

    def rewrite(call: ProxiedCall) -> tuple[int, Any] | None:
        if call.status != 200 or call.method != "POST":
            return None
        answer = json.loads(call.answer)
        if route == "files" and call.path.rstrip("/").endswith("/files"):
            return 200, {**answer, "bytes": value}
        if route == "complete" and call.path.endswith("/complete"):
            return 200, {**answer, "file": {**answer["file"], "bytes": value}}
        return None

    return rewrite


# -- sizes the server reports ---------------------------------------------------------------------


def test_single_request_refuses_a_size_other_than_the_one_sent(
    emulator: EmulatorHandle, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(200_000)
    store = JsonFileCheckpointStore(tmp_path / "single.json", kind=SINGLE_CHECKPOINT_KIND)
    with (
        RewritingProxy(emulator, rewrite=with_bytes(1, route="files")) as proxy,
        proxied_client(proxy, emulator) as client,
        pytest.raises(UploadError, match=r"reports 1 bytes .* but 200000 bytes were sent"),
    ):
        SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")
    assert emulator.stats()["file_count"] == 0  # the file that cannot be trusted was deleted
    assert store.load() is None  # a rerun uploads again


def test_chunked_upload_refuses_a_size_other_than_the_one_sent(
    emulator: EmulatorHandle, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    with (
        RewritingProxy(emulator, rewrite=with_bytes(1, route="complete")) as proxy,
        proxied_client(proxy, emulator) as client,
        pytest.raises(UploadError, match=rf"reports 1 bytes .* but {SIZE} bytes were sent"),
    ):
        ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
    assert emulator.stats()["file_count"] == 0
    assert store.load() is None


def test_a_complete_answered_cancelled_without_a_file_says_so(
    emulator: EmulatorHandle, make_file: Callable[..., Path]
) -> None:
    def cancelled(call: ProxiedCall) -> tuple[int, Any] | None:
        if call.path.endswith("/complete") and call.status == 200:
            return 200, {**json.loads(call.answer), "status": "cancelled", "file": None}
        return None

    path = make_file(SIZE)
    with (
        RewritingProxy(emulator, rewrite=cancelled) as proxy,
        proxied_client(proxy, emulator) as client,
        pytest.raises(UnexpectedResponseError, match="status 'cancelled' and no file") as caught,
    ):
        ChunkedUploader(client, part_size_bytes=PART).upload(path, purpose="batch")
    assert "names no file" not in str(caught.value)


# -- a gateway that refuses the md5 field ---------------------------------------------------------


def refuse_md5(method: str, path: str, body: bytes) -> tuple[int, Any] | None:
    """What a gateway that passes on only the fields it knows answers to a complete with md5."""
    if path.endswith("/complete") and b'"md5"' in body:
        return 400, api_error("Unrecognized request argument supplied: md5")
    return None


def test_a_refused_md5_field_is_named_and_send_md5_false_completes(
    emulator: EmulatorHandle, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    with RewritingProxy(emulator, refuse=refuse_md5) as proxy, proxied_client(proxy, emulator) as client:
        with pytest.raises(UploadError) as caught:
            ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
        message = str(caught.value)
        assert "does not accept the md5 field" in message and "send_md5=False" in message
        assert "changed while it was being uploaded" not in message
        assert not isinstance(caught.value, SourceChangedError)

        # the upload was left pending for the checkpoint: the rerun without md5 sends no part again
        parts_before = len([c for c in proxy.calls if c.path.endswith("/parts")])
        result = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store, send_md5=False).upload(
            path, purpose="batch"
        )
        assert len([c for c in proxy.calls if c.path.endswith("/parts")]) == parts_before
    assert result.resumed and result.parts_sent == 0
    assert emulator.file_md5(result.file.id) == md5_file(path)


# -- checkpoints that do not describe this upload -------------------------------------------------


def test_a_checkpoint_naming_another_file_of_the_same_size_is_not_reused(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE, name="mine.jsonl", seed=1)
    other = make_file(SIZE, name="other.jsonl", seed=2)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    mine = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
    theirs = ChunkedUploader(client, part_size_bytes=PART).upload(
        other, purpose="batch", filename="mine.jsonl"
    )
    edited = store.load()
    assert edited is not None
    edited["file"] = theirs.file.to_dict()  # hand-edited: another file, same name and size
    store.save(edited)

    again = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")

    assert not again.reused_file and again.file.id not in (theirs.file.id, mine.file.id)
    assert again.restart_reason is not None and theirs.file.id in again.restart_reason
    assert emulator.file_md5(again.file.id) == md5_file(path)


def test_a_checkpoint_listing_parts_of_another_upload_says_which_checkpoint_to_delete(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(2 * PART)
    checkpoint = tmp_path / "ckpt.json"
    store = JsonFileCheckpointStore(checkpoint)
    # a pending upload of this file, and a checkpoint whose parts belong to another upload
    other = client.create_upload("x.jsonl", "batch", 2 * PART, "text/jsonl")
    foreign = {index: client.add_upload_part(other.id, b"x" * PART).id for index in range(2)}
    own = client.create_upload(path.name, "batch", 2 * PART, "text/jsonl")
    state = CheckpointState(
        upload_id=own.id,
        filename=path.name,
        purpose="batch",
        bytes=2 * PART,
        part_size=PART,
        fingerprint=LocalFileSource(path).fingerprint(),
        base_url=client.base_url,
        expires_at=time.time() + 3000,
        created_at=time.time(),
        parts=foreign,
    )
    store.save(state.to_dict())

    for _ in range(2):  # the same advice on every rerun
        with pytest.raises(UploadError, match=f"delete the checkpoint {checkpoint}"):
            ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")


def test_a_single_request_checkpoint_naming_another_file_of_the_same_size_is_not_reused(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(200_000, name="mine.jsonl", seed=1)
    other = make_file(200_000, name="other.jsonl", seed=2)
    store = JsonFileCheckpointStore(tmp_path / "single.json", kind=SINGLE_CHECKPOINT_KIND)
    first = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")
    theirs = SingleRequestUploader(client).upload(other, purpose="batch", filename="mine.jsonl")
    edited = store.load()
    assert edited is not None and edited["md5"] == md5_file(path)  # the md5 of the bytes sent
    edited["file"] = theirs.file.to_dict()
    store.save(edited)

    again = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")

    assert not again.reused_file and again.file.id not in (first.file.id, theirs.file.id)
    assert emulator.file_md5(again.file.id) == md5_file(path)


# -- reuse after success: the checkpoint's verified md5, nothing read back --------------------------


def content_reads(emulator: EmulatorHandle) -> int:
    return sum(1 for entry in emulator.request_log() if entry["route"] == "file_content")


@pytest.mark.parametrize("single_request", [False, True], ids=["chunked", "single request"])
def test_reuse_after_success_reads_nothing_back(
    emulator: EmulatorHandle,
    client: FilesClient,
    make_file: Callable[..., Path],
    tmp_path: Path,
    single_request: bool,
) -> None:
    path = make_file(SIZE, name="mine.jsonl", seed=3)
    if single_request:
        store = JsonFileCheckpointStore(tmp_path / "single.json", kind=SINGLE_CHECKPOINT_KIND)
        first = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch").file
        single = SingleRequestUploader(client, checkpoint=store).upload(path, purpose="batch")
        reused, again = single.reused_file, single.file
    else:
        store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
        first = (
            ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch").file
        )
        chunked = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(
            path, purpose="batch", expected_md5=md5_file(path)
        )
        reused, again = chunked.reused_file, chunked.file
    state = store.load()
    assert state is not None and state["file"]["verified_md5"] == md5_file(path) == state["md5"]
    assert reused and again.id == first.id
    assert content_reads(emulator) == 0  # handed on from the checkpoint, not downloaded again


def test_a_checkpoint_whose_verified_file_is_another_file_is_refused_without_reading_it(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    """Both the file and its verified md5 copied from another run's checkpoint: the md5 is not the
    checkpoint's, and not the source's."""
    path = make_file(SIZE, name="mine.jsonl", seed=1)
    other = make_file(SIZE, name="other.jsonl", seed=2)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    their_store = JsonFileCheckpointStore(tmp_path / "theirs.json")
    mine = ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
    theirs = ChunkedUploader(client, part_size_bytes=PART, checkpoint=their_store).upload(
        other, purpose="batch", filename="mine.jsonl"
    )
    edited, their_state = store.load(), their_store.load()
    assert edited is not None and their_state is not None
    edited["file"] = their_state["file"]
    store.save(edited)

    reused = reusable_file(
        client,
        store,
        fingerprint=LocalFileSource(path).fingerprint(),
        filename="mine.jsonl",
        purpose="batch",
        size=SIZE,
        source_md5=md5_file(path),
    )
    assert reused is None and store.load() is None  # refused, and the checkpoint cleared
    # the checkpoint names their file with its own verified md5: the binding to ours is missing,
    # so that file was read back (its md5 is theirs) rather than trusted
    assert content_reads(emulator) == 1
    assert emulator.file_md5(theirs.file.id) != md5_file(path) and mine.file.id != theirs.file.id


def test_a_source_whose_md5_is_not_the_verified_one_is_not_handed_the_file(
    emulator: EmulatorHandle, client: FilesClient, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_file(SIZE, name="mine.jsonl", seed=4)
    store = JsonFileCheckpointStore(tmp_path / "ckpt.json")
    ChunkedUploader(client, part_size_bytes=PART, checkpoint=store).upload(path, purpose="batch")
    arguments: dict[str, Any] = {
        "fingerprint": LocalFileSource(path).fingerprint(),
        "filename": "mine.jsonl",
        "purpose": "batch",
        "size": SIZE,
    }
    assert reusable_file(client, store, **arguments, source_md5=md5_file(path)) is not None
    assert reusable_file(client, store, **arguments, source_md5="0" * 32) is None
    assert content_reads(emulator) == 0
