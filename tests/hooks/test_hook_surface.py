"""The hook's public methods keep their signatures now that most are the client's own methods."""

from __future__ import annotations

import inspect

import pytest

from airflow_provider_files.hooks.files import AsyncFilesHook, FilesHook

# (method, parameter names) as they were before the client was split into one table of operations.
SYNC_SURFACE = [
    ("upload_file", ["path_or_fileobj", "purpose", "filename", "expires_after_s"]),
    ("list_files", ["purpose", "order", "page_size"]),
    ("get_file", ["file_id"]),
    ("delete_file", ["file_id"]),
    ("download_file", ["file_id", "destination"]),
    ("create_upload", ["filename", "purpose", "bytes", "mime_type", "expires_after_s"]),
    ("add_upload_part", ["upload_id", "data"]),
    ("complete_upload", ["upload_id", "part_ids", "md5"]),
    ("cancel_upload", ["upload_id"]),
]


@pytest.mark.parametrize(("name", "params"), SYNC_SURFACE)
def test_files_hook_methods_keep_their_parameters(name: str, params: list[str]) -> None:
    signature = inspect.signature(getattr(FilesHook("any"), name))
    assert list(signature.parameters)[: len(params)] == params
    extra = list(signature.parameters.values())[len(params) :]
    assert all(p.default is not inspect.Parameter.empty for p in extra), "new parameters must be optional"


def test_delegated_methods_carry_the_clients_docstring() -> None:
    hook = FilesHook("any")
    assert hook.get_file.__doc__ and "GET /files/{file_id}" in hook.get_file.__doc__
    assert hook.cancel_upload.__name__ == "cancel_upload"


def test_async_hook_get_file_keeps_its_signature() -> None:
    assert list(inspect.signature(AsyncFilesHook("any").get_file).parameters) == ["file_id"]
    assert inspect.iscoroutinefunction(AsyncFilesHook("any").get_file)
