"""Gateway flavours: Azure (classic and v1), Respan, Portkey and LiteLLM headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import openai

from airflow_provider_files.emulator.config import EmulatorConfig
from airflow_provider_files.emulator.faults import ROUTES
from airflow_provider_files.emulator.routing import OPERATIONS
from airflow_provider_files.emulator.server import EmulatorApp
from airflow_provider_files.emulator.testing import EmulatorHandle

API_VERSION = "2024-10-21"


def test_azure_classic_requires_api_version_and_api_key(emulator: EmulatorHandle) -> None:
    root = emulator.root_url
    missing_version = httpx.get(f"{root}/openai/files", headers={"api-key": "k"})
    assert missing_version.status_code == 400
    assert "api-version" in missing_version.json()["error"]["message"]
    unauthenticated = httpx.get(f"{root}/openai/files", params={"api-version": API_VERSION})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "401"


def test_azure_classic_create_is_201_with_location(emulator: EmulatorHandle) -> None:
    root = emulator.root_url
    emulator.set_processing_delay(60)
    response = httpx.post(
        f"{root}/openai/files",
        params={"api-version": API_VERSION},
        headers={"api-key": "k"},
        data={"purpose": "batch"},
        files={"file": ("a.jsonl", b"{}")},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"].endswith(f"/openai/files/{body['id']}?api-version={API_VERSION}")
    assert body["status"] == "pending"  # Azure's name for a file being processed
    listed = httpx.get(
        f"{root}/openai/files", params={"api-version": API_VERSION}, headers={"api-key": "k"}
    ).json()
    assert [f["id"] for f in listed["data"]] == [body["id"]]
    assert "has_more" not in listed
    vision = httpx.post(
        f"{root}/openai/files",
        params={"api-version": API_VERSION},
        headers={"api-key": "k"},
        data={"purpose": "vision"},
        files={"file": ("a.png", b"png")},
    )
    assert vision.status_code == 400 and vision.json()["error"]["target"] == "purpose"


def test_azure_openai_sdk_client_works_for_uploads(emulator: EmulatorHandle) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=emulator.root_url, api_key="azure-key", api_version=API_VERSION
    )
    upload = client.uploads.create(
        filename="a.jsonl", purpose="batch", bytes=4, mime_type="application/jsonl"
    )
    part = client.uploads.parts.create(upload_id=upload.id, data=b"abcd")
    done = client.uploads.complete(upload_id=upload.id, part_ids=[part.id])
    assert done.status == "completed" and done.file is not None
    assert client.files.content(done.file.id).read() == b"abcd"
    parts = [e for e in emulator.request_log() if e["route"] == "add_part"]
    assert parts[0]["query"] == {"api-version": API_VERSION} and "api-key" in parts[0]["headers"]


def test_azure_v1_is_openai_shaped(emulator: EmulatorHandle) -> None:
    client = openai.OpenAI(base_url=f"{emulator.root_url}/openai/v1", api_key="azure-key")
    created = client.files.create(file=("a.jsonl", b"{}"), purpose="batch")
    assert client.files.list().data[0].id == created.id
    api_key_header = httpx.get(f"{emulator.root_url}/openai/v1/files", headers={"api-key": "k"})
    assert api_key_header.status_code == 200 and "has_more" in api_key_header.json()


def test_respan_paths_need_trailing_slash_and_have_no_uploads(emulator: EmulatorHandle) -> None:
    base = f"{emulator.root_url}/api"
    auth = {"Authorization": "Bearer respan-key"}
    created = httpx.post(
        f"{base}/files/", headers=auth, data={"purpose": "batch"}, files={"file": ("a.jsonl", b"{}")}
    )
    assert created.status_code == 200
    file_id = created.json()["id"]
    assert httpx.get(f"{base}/files/{file_id}/", headers=auth).json()["id"] == file_id
    assert httpx.get(f"{base}/files/{file_id}/content/", headers=auth).content == b"{}"
    assert httpx.get(f"{base}/files/{file_id}", headers=auth).status_code == 404
    assert httpx.get(f"{base}/files/", headers=auth).json() == {
        "object": "list",
        "data": [httpx.get(f"{base}/files/{file_id}/", headers=auth).json()],
    }
    uploads = httpx.post(f"{base}/uploads/", headers=auth, json={})
    assert uploads.status_code == 404
    wrong_purpose = httpx.post(
        f"{base}/files/", headers=auth, data={"purpose": "fine-tune"}, files={"file": ("a", b"{}")}
    )
    assert wrong_purpose.status_code == 400
    unauthenticated = httpx.get(f"{base}/files/")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"error": "Authentication credentials were not provided."}


def test_portkey_headers(emulator: EmulatorHandle) -> None:
    url = f"{emulator.base_url}/files"
    no_provider = httpx.get(url, headers={"x-portkey-api-key": "pk"})
    assert no_provider.status_code == 400
    assert no_provider.json() == {
        "status": "failure",
        "message": "Either x-portkey-config or x-portkey-provider header is required",
    }
    for extra in (
        {"x-portkey-provider": "@openai-prod"},
        {"x-portkey-config": "cfg"},
    ):
        response = httpx.get(url, headers={"x-portkey-api-key": "pk", **extra})
        assert response.status_code == 200
    # A virtual key alone is refused, as the self-hosted gateway refuses it.
    virtual_key_only = httpx.get(url, headers={"x-portkey-api-key": "pk", "x-portkey-virtual-key": "vk"})
    assert virtual_key_only.status_code == 400
    assert virtual_key_only.json() == no_provider.json()
    logged = emulator.request_log()[1]
    assert logged["header_values"]["x-portkey-provider"] == "@openai-prod"
    assert "x-portkey-api-key" in logged["headers"] and "x-portkey-api-key" not in logged["header_values"]


def test_portkey_key_is_the_one_checked(emulator_factory: Callable[..., EmulatorHandle]) -> None:
    handle = emulator_factory(api_key="pk-right")
    headers = {"x-portkey-provider": "openai", "Authorization": "Bearer OPENAI_API_KEY"}
    wrong = httpx.get(f"{handle.base_url}/files", headers={**headers, "x-portkey-api-key": "pk-wrong"})
    assert wrong.status_code == 401
    right = httpx.get(f"{handle.base_url}/files", headers={**headers, "x-portkey-api-key": "pk-right"})
    assert right.status_code == 200


def test_portkey_self_hosted_checks(emulator_factory: Callable[..., EmulatorHandle]) -> None:
    handle = emulator_factory(api_key="sk-upstream")
    url = f"{handle.base_url}/files"

    def get(**headers: str) -> httpx.Response:
        return httpx.get(url, headers=headers)

    upstream = {"Authorization": "Bearer sk-upstream"}
    assert get(**{"x-portkey-provider": "openai"}, **upstream).status_code == 200
    custom_host = {"x-portkey-custom-host": "http://127.0.0.1:1/v1"}
    assert get(**{"x-portkey-provider": "openai"}, **custom_host, **upstream).status_code == 200
    # the self-hosted gateway ignores x-portkey-api-key: the upstream key must be in Authorization
    assert get(**{"x-portkey-provider": "openai", "x-portkey-custom-host": "http://h/v1"}).status_code == 401
    slug = get(**{"x-portkey-provider": "@openai-prod"}, **upstream)
    assert slug.status_code == 400 and slug.json()["message"] == "Invalid provider passed"
    assert get(**{"x-portkey-virtual-key": "vk"}, **upstream).status_code == 400
    bad_config = get(**{"x-portkey-config": "pc-id"}, **upstream)
    assert bad_config.status_code == 400 and "valid json" in bad_config.json()["message"]
    config = get(**{"x-portkey-config": '{"provider": "openai"}'}, **upstream)
    assert config.status_code == 200
    with_credentials = get(
        **{"x-portkey-provider": "openai", "x-portkey-custom-host": "http://u:p@h/v1"}, **upstream
    )
    assert with_credentials.status_code == 400
    # hosted: a raw provider name needs the provider key too
    hosted = get(**{"x-portkey-api-key": "sk-upstream", "x-portkey-provider": "openai"})
    assert hosted.status_code == 401


def test_litellm_unknown_provider_is_refused(emulator: EmulatorHandle) -> None:
    response = httpx.get(
        f"{emulator.base_url}/files", headers={"x-litellm-api-key": "k", "custom-llm-provider": "bogus"}
    )
    assert response.status_code == 400
    assert "not a valid LlmProviders" in response.json()["error"]["message"]


def test_litellm_key_header_and_provider_header(emulator: EmulatorHandle) -> None:
    response = httpx.get(
        f"{emulator.base_url}/files",
        headers={"x-litellm-api-key": "sk-litellm", "custom-llm-provider": "azure"},
    )
    assert response.status_code == 200
    logged = emulator.request_log()[-1]
    assert logged["header_values"]["custom-llm-provider"] == "azure"
    assert "sk-litellm" not in str(logged)


def test_routing_405_and_404_per_flavour(emulator: EmulatorHandle) -> None:
    root = emulator.root_url
    wrong_method = httpx.put(
        f"{root}/openai/batches", params={"api-version": API_VERSION}, headers={"api-key": "k"}
    )
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()["error"]) >= {"code", "target", "details"}  # Microsoft shape
    bearer = {"Authorization": "Bearer k"}
    assert httpx.head(f"{emulator.base_url}/files", headers=bearer).status_code == 405
    assert httpx.get(f"{emulator.base_url}/batches/b/cancel", headers=bearer).status_code == 405
    assert httpx.delete(f"{emulator.base_url}/batches/b", headers=bearer).status_code == 405
    assert httpx.get(f"{emulator.base_url}/files//content", headers=bearer).status_code == 404
    assert httpx.get(f"{root}/openai/v1/uploads", headers=bearer).status_code == 405
    assert httpx.get(f"{root}/api/uploads/", headers=bearer).status_code == 404  # Respan has none
    assert [e["route"] for e in emulator.request_log()] == [None] * 7


def test_every_operation_has_a_handler_and_a_fault_route(tmp_path: Path) -> None:
    app = EmulatorApp(EmulatorConfig(data_dir=tmp_path))
    operations = {name for methods in OPERATIONS.values() for name in methods.values()}
    assert operations == set(app.handlers) == set(ROUTES)
