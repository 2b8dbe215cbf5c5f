"""``airflow-files upload`` makes the choices of ``UploadJsonlOperator``: the file a checkpoint holds
is handed on before any validation; else a batch file is validated first (messages and exit code of
``validate``), one ``POST /files`` up to the operator's threshold. Over real HTTP against the
emulator."""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files import upload_cli
from airflow_provider_files.api import ClientSettings, FilesClient
from airflow_provider_files.cli import main
from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.jsonl.cli import EXIT_INVALID
from airflow_provider_files.operators.files import UploadJsonlOperator
from airflow_provider_files.uploads.limits import SINGLE_REQUEST_MAX_BYTES, uses_single_request
from airflow_provider_files.uploads.progress import UploadProgress, format_bytes, format_rate, plural
from tests.support import BAD_REQUESTS, chat_requests
from tests.support import request_routes as routes

pytestmark = pytest.mark.timeout(60)


def upload(capsys: pytest.CaptureFixture[str], emulator: EmulatorHandle, *args: str) -> tuple[int, str, str]:
    """``airflow-files upload ARGS --base-url <emulator>`` in this process: status, stdout, stderr."""
    try:
        status = main(["upload", *args, "--base-url", emulator.base_url, "--api-key-env", "EMULATOR_KEY"])
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(autouse=True)
def emulator_key(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMULATOR_KEY", emulator.api_key)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the command validated: a spy on its validation entry point (which still runs)."""
    validated: list[Path] = []
    validate = upload_cli.validate_batch_file

    def spy(path: Path, **kwargs: Any) -> Any:
        validated.append(Path(path))
        return validate(path, **kwargs)

    monkeypatch.setattr(upload_cli, "validate_batch_file", spy)
    return validated


#: The two ways of sending a file, each with its own kind of checkpoint.
WAYS = {"single-request": ("--single-request",), "chunked": ("--chunked", "--part-size", "1MiB")}
#: The requests that begin an upload.
UPLOAD_ROUTES = {"create_file", "create_upload"}


def test_a_bad_batch_file_is_refused_with_the_validate_message_and_nothing_is_sent(
    emulator: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(BAD_REQUESTS)
    validate_status = main(["validate", str(bad)])
    validate_message = capsys.readouterr().out.strip()

    status, out, err = upload(capsys, emulator, str(bad), "--purpose", "batch")

    assert status == validate_status == EXIT_INVALID
    assert out == ""
    assert f"error: nothing was uploaded: {validate_message}" in err
    assert "line 2" in err and "line 3" in err
    assert emulator.request_log() == []


def test_no_validate_sends_the_file_as_it_is(
    emulator: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(BAD_REQUESTS)

    status, out, err = upload(capsys, emulator, str(bad), "--purpose", "batch", "--no-validate")

    assert status == 0, err
    assert json.loads(out)["bytes"] == len(BAD_REQUESTS)
    assert routes(emulator) == ["create_file"]


def test_other_purposes_are_not_validated(
    emulator: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "notes.txt"
    data.write_bytes(b"not a batch file\n")

    status, out, err = upload(capsys, emulator, str(data), "--purpose", "user_data")

    assert status == 0, err
    assert json.loads(out)["purpose"] == "user_data"


def test_a_small_valid_file_goes_in_one_post_files(
    emulator: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_bytes(chat_requests(1000))

    status, out, err = upload(capsys, emulator, str(source), "--purpose", "batch")

    assert status == 0, err
    assert json.loads(out)["bytes"] == source.stat().st_size
    assert routes(emulator) == ["create_file"]
    assert "is a valid batch file: 1,000 requests to /v1/chat/completions" in err


def test_chunked_forces_the_uploads_api_and_the_log_counts_one_part(
    emulator: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_bytes(chat_requests(1000))

    status, _, err = upload(
        capsys, emulator, str(source), "--purpose", "batch", "--chunked", "--concurrency", "1"
    )

    assert status == 0, err
    assert routes(emulator) == ["create_upload", "add_part", "complete_upload"]
    assert f"1 part of {format_bytes(source.stat().st_size)}" in err and "1 parts" not in err
    assert "1 part sent" in err


def test_above_the_threshold_the_uploads_api_is_used(
    emulator: EmulatorHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI asks the operator's decision; with a lower threshold a small file is above it."""
    source = tmp_path / "requests.jsonl"
    source.write_bytes(chat_requests(1000))
    monkeypatch.setattr(
        upload_cli,
        "uses_single_request",
        functools.partial(uses_single_request, single_request_max_bytes=1000),
    )

    status, _, err = upload(capsys, emulator, str(source), "--purpose", "batch")

    assert status == 0, err
    assert "create_file" not in routes(emulator) and "create_upload" in routes(emulator)


def test_the_threshold_is_the_operators() -> None:
    default = inspect.signature(UploadJsonlOperator.__init__).parameters["single_request_max_bytes"].default
    assert default == SINGLE_REQUEST_MAX_BYTES == 100 * 2**20
    assert uses_single_request(SINGLE_REQUEST_MAX_BYTES) and not uses_single_request(
        SINGLE_REQUEST_MAX_BYTES + 1
    )


def test_sizes_rates_and_counts_in_one_unit_system() -> None:
    assert format_bytes(16 * 2**20) == "16 MiB"
    assert format_bytes(64 * 2**10) == "64 KiB"
    assert format_bytes(1.5 * 2**30) == "1.5 GiB"
    assert format_bytes(548_000) == "535 KiB"
    assert format_bytes(900) == "900 B"
    assert format_rate(85.3 * 2**20) == "85.3 MiB/s"
    assert (plural(1, "part"), plural(2, "part"), plural(1000, "part")) == (
        "1 part",
        "2 parts",
        "1,000 parts",
    )
    progress = UploadProgress(
        bytes_done=8 * 2**20, total_bytes=16 * 2**20, parts_done=1, parts_total=2, elapsed_s=1.0,
        rate_bytes_per_s=8 * 2**20, eta_s=1.0,
    )  # fmt: skip
    assert progress.describe() == "50% 8 MiB of 16 MiB, 8.0 MiB/s, ETA 1s"


@dataclass(frozen=True)
class FirstRun:
    """A batch file uploaded with ``--checkpoint``: the command's arguments and what it printed."""

    source: Path
    checkpoint: Path
    args: tuple[str, ...]
    file: dict[str, Any]


@pytest.fixture(params=sorted(WAYS))
def first_run(
    request: pytest.FixtureRequest,
    emulator: EmulatorHandle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    validations: list[Path],
) -> FirstRun:
    """A valid batch file uploaded one way or the other (validated once), with a checkpoint."""
    source, checkpoint = tmp_path / "requests.jsonl", tmp_path / "ckpt.json"
    source.write_bytes(chat_requests(1000))
    args = (str(source), "--purpose", "batch", "--checkpoint", str(checkpoint), *WAYS[request.param])
    status, out, err = upload(capsys, emulator, *args)
    assert status == 0, err
    assert validations == [source]
    return FirstRun(source, checkpoint, args, json.loads(out))


def test_a_rerun_with_the_checkpoint_hands_on_the_file_without_validating_or_sending_it(
    emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str], validations: list[Path], first_run: FirstRun
) -> None:
    before = len(routes(emulator))

    status, out, err = upload(capsys, emulator, *first_run.args)

    assert status == 0, err
    assert validations == [first_run.source]  # not validated again
    assert json.loads(out)["id"] == first_run.file["id"]
    assert "(from the checkpoint, not validated again); not uploading again" in err
    assert routes(emulator)[before:] == ["retrieve_file"]  # asked whether the file still exists, no more
    assert emulator.stats()["file_count"] == 1


def test_a_changed_file_is_validated_again_and_a_bad_line_sends_nothing(
    emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str], validations: list[Path], first_run: FirstRun
) -> None:
    source, recorded = first_run.source, first_run.checkpoint.read_text()
    before = len(routes(emulator))

    source.write_bytes(BAD_REQUESTS)
    status, out, err = upload(capsys, emulator, *first_run.args)

    assert status == EXIT_INVALID
    assert out == "" and "error: nothing was uploaded" in err and "line 2" in err
    assert validations == [source, source]
    assert not UPLOAD_ROUTES & set(routes(emulator)[before:])
    # the checkpoint of the other content is left alone
    assert first_run.checkpoint.read_text() == recorded

    source.write_bytes(chat_requests(900))
    status, out, err = upload(capsys, emulator, *first_run.args)

    assert status == 0, err
    assert validations == [source] * 3
    assert json.loads(out)["id"] != first_run.file["id"]
    assert json.loads(out)["bytes"] == source.stat().st_size


def test_a_file_gone_from_the_server_is_validated_and_uploaded_again(
    emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str], validations: list[Path], first_run: FirstRun
) -> None:
    """The operator's reuse rules: the checkpoint's file must still exist on the server."""
    with FilesClient(ClientSettings(api_key=emulator.api_key, base_url=emulator.base_url)) as client:
        client.delete_file(first_run.file["id"])
    before = len(routes(emulator))

    status, out, err = upload(capsys, emulator, *first_run.args)

    assert status == 0, err
    assert validations == [first_run.source] * 2
    assert "no longer exists; uploading again" in err
    assert json.loads(out)["id"] != first_run.file["id"]
    assert sum(route in UPLOAD_ROUTES for route in routes(emulator)[before:]) == 1  # one upload again
