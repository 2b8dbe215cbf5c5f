"""The upload operators check what the server says, say what a gateway refused, and show their
parameters: sizes against the source, ``send_md5``, explicit keyword parameters with docs."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle
from airflow_provider_files.operators import files as files_module
from airflow_provider_files.operators.files import ChunkedUploadOperator, UploadJsonlOperator
from airflow_provider_files.uploads import SourceChangedError, UploadError
from airflow_provider_files.uploads import engine as engine_module
from airflow_provider_files.uploads.limits import SINGLE_REQUEST_MAX_BYTES
from tests.support import FilesConnection, ProxiedCall, RewritingProxy, api_error

from .support import md5_of, run_task, task_context

PART_BYTES = 64 * 1024


def misreported_size(call: ProxiedCall) -> tuple[int, Any] | None:
    """Every file object the server sends says ``bytes: 1``."""
    if call.status != 200 or "/files" not in call.path or call.path.endswith("/content"):
        return None
    answer = json.loads(call.answer)
    if answer.get("object") == "file":
        return 200, {**answer, "bytes": 1}
    return None


def test_a_size_the_server_misreports_fails_the_task_even_with_a_wait(
    emulator: EmulatorHandle,
    files_connection: FilesConnection,
    batch_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    source = batch_file(200)
    with RewritingProxy(emulator, rewrite=misreported_size) as proxy:
        files_connection(proxy.base_url, password=emulator.api_key)
        operator = UploadJsonlOperator(
            task_id="upload",
            source=str(source),
            wait_for_completion=True,
            deferrable=False,
            poll_interval_s=0.2,
            timeout_s=10,
            checkpoint_folder=str(tmp_path / "ck"),
        )
        with pytest.raises(
            UploadError, match=f"reports 1 bytes .* but {source.stat().st_size} bytes were sent"
        ):
            run_task(operator, task_context())
    assert emulator.stats()["file_count"] == 0


def refuse_md5(method: str, path: str, body: bytes) -> tuple[int, Any] | None:
    if path.endswith("/complete") and b'"md5"' in body:
        return 400, api_error("Unrecognized request argument supplied: md5")
    return None


@pytest.mark.parametrize("operator_class", [ChunkedUploadOperator, UploadJsonlOperator])
def test_a_gateway_refusing_md5_is_named_and_send_md5_false_uploads(
    emulator: EmulatorHandle,
    files_connection: FilesConnection,
    batch_file: Callable[..., Path],
    tmp_path: Path,
    operator_class: type[ChunkedUploadOperator] | type[UploadJsonlOperator],
) -> None:
    source = batch_file(1000)  # about 280 KB: parts of 64 KiB
    extra: dict[str, Any] = {"single_request_max_bytes": 0} if operator_class is UploadJsonlOperator else {}
    if operator_class is ChunkedUploadOperator:
        extra["purpose"] = "batch"
    with RewritingProxy(emulator, refuse=refuse_md5) as proxy:
        files_connection(proxy.base_url, password=emulator.api_key)

        def operator(**kwargs: Any) -> Any:
            return operator_class(
                task_id="upload",
                source=str(source),
                part_size_bytes=PART_BYTES,
                checkpoint_folder=str(tmp_path / "ck"),
                **extra,
                **kwargs,
            )

        with pytest.raises(UploadError) as caught:
            run_task(operator(), task_context())
        assert "send_md5=False" in str(caught.value)
        assert "changed while it was being uploaded" not in str(caught.value)

        result = run_task(operator(send_md5=False), task_context())
    assert emulator.file_md5(result["id"]) == md5_of(source.read_bytes())


@pytest.mark.parametrize("operator_class", [ChunkedUploadOperator, UploadJsonlOperator])
def test_every_parameter_is_explicit_typed_and_documented(operator_class: type[Any]) -> None:
    signature = inspect.signature(operator_class.__init__)
    params = [p for p in signature.parameters.values() if p.name not in ("self", "kwargs")]
    assert signature.parameters["kwargs"].kind is inspect.Parameter.VAR_KEYWORD
    documented = set(re.findall(r":param (\w+):", operator_class.__doc__ or ""))
    names = {p.name for p in params}
    assert {"source", "purpose", "files_conn_id", "part_size_bytes", "send_md5", "timeout_s"} <= names
    for param in params:
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, param.name
        assert param.annotation is not inspect.Parameter.empty, param.name
        assert param.name in documented, f"{param.name} has no :param: in the docstring"
    assert not documented - names - {"kwargs"}, "documented parameters that do not exist"
    assert signature.parameters["send_md5"].default is True


# -- the bytes uploaded are the bytes validated -----------------------------------------------------


def rewrite_after_validation(monkeypatch: pytest.MonkeyPatch, source: Path) -> list[str | None]:
    """Once the operator has validated ``source``, rewrite it in place, same size: its last
    request takes the first one's custom_id, so the file on disk is no longer valid."""
    validated: list[str | None] = []
    validate = files_module.validate_batch_file

    def validate_then_rewrite(*args: Any, **kwargs: Any) -> Any:
        report = validate(*args, **kwargs)
        validated.append(getattr(report, "md5", None))
        data = source.read_bytes()
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        start = data.rindex(last)
        with source.open("r+b") as handle:  # in place: same inode, same size
            handle.seek(start)
            handle.write(re.sub(rb'"custom_id":"[^"]+"', b'"custom_id":"request-000000"', last, count=1))
        return report

    monkeypatch.setattr(files_module, "validate_batch_file", validate_then_rewrite)
    return validated


@pytest.mark.parametrize(
    ("single_request_max_bytes", "send_md5"),
    [(SINGLE_REQUEST_MAX_BYTES, True), (0, True), (0, False)],
    ids=["single-request", "chunked", "chunked-no-md5"],
)
def test_a_source_rewritten_after_validation_is_not_left_uploaded(
    files_conn: EmulatorHandle,
    batch_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    single_request_max_bytes: int,
    send_md5: bool,
) -> None:
    source = batch_file(1000)
    original = source.read_bytes()
    validated = rewrite_after_validation(monkeypatch, source)
    md5_option: dict[str, Any] = {} if send_md5 else {"send_md5": False}
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        single_request_max_bytes=single_request_max_bytes,
        part_size_bytes=PART_BYTES,
        checkpoint_folder=str(tmp_path / "ck"),
        **md5_option,
    )

    with pytest.raises(SourceChangedError, match="changed"):
        run_task(operator, task_context())

    assert validated == [md5_of(original)]  # the validation pass took the md5 of what it read
    assert source.stat().st_size == len(original) and source.read_bytes() != original
    assert files_conn.stats()["file_count"] == 0  # nothing unvalidated stays on the server


def test_the_upload_sends_the_md5_of_validation_without_hashing_again(
    files_conn: EmulatorHandle,
    batch_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = batch_file(1000)
    hashed: list[str] = []
    md5_of_source = engine_module.Md5Reader

    class CountingReader(md5_of_source):  # type: ignore[misc, valid-type]
        def run(self) -> None:
            hashed.append("read")
            super().run()

    monkeypatch.setattr(engine_module, "Md5Reader", CountingReader)
    operator = UploadJsonlOperator(
        task_id="upload",
        source=str(source),
        single_request_max_bytes=0,
        part_size_bytes=PART_BYTES,
        checkpoint_folder=str(tmp_path / "ck"),
    )

    result = run_task(operator, task_context())

    assert hashed == []  # one read of the file for validation and md5
    completes = [e for e in files_conn.request_log() if e["route"] == "complete_upload"]
    assert len(completes) == 1
    assert files_conn.file_md5(result["id"]) == md5_of(source.read_bytes())
