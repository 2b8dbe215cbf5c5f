"""Batches over real HTTP with the unmodified official openai SDK: the lifecycle and its results.

Phases are driven by the emulator's clock: tests either use a short ``batch_duration_s`` and poll,
or a long one and move the clock with ``advance_clock`` (deterministic, no sleeping).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
import openai
import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle

CHAT: Final = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
POLL_S = 0.02
WAIT_S = 15.0
LONG_DURATION_S = 100.0


@pytest.fixture
def client(emulator: EmulatorHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0)


def request_line(custom_id: str, url: str = CHAT, model: str = MODEL, **body: Any) -> bytes:
    if url == "/v1/embeddings":
        body.setdefault("input", ["one", "two"])
    elif url == "/v1/responses":
        body.setdefault("input", f"hello {custom_id}")
    elif url == "/v1/completions":
        body.setdefault("prompt", "hello")
    elif url == "/v1/moderations":
        body.setdefault("input", "hello")
    else:
        body.setdefault("messages", [{"role": "user", "content": f"hello {custom_id}"}])
    line = {"custom_id": custom_id, "method": "POST", "url": url, "body": {"model": model, **body}}
    return json.dumps(line).encode() + b"\n"


def upload(client: openai.OpenAI, count: int, url: str = CHAT, prefix: str = "r") -> str:
    payload = b"".join(request_line(f"{prefix}{i}", url) for i in range(count))
    return client.files.create(file=("requests.jsonl", payload), purpose="batch").id


def wait_for(client: openai.OpenAI, batch_id: str, done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        batch = client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.status}"
        time.sleep(POLL_S)


def wait_until_checked(client: openai.OpenAI, batch_id: str) -> Any:
    """The input check is done once the batch names its model (or has failed)."""
    return wait_for(client, batch_id, lambda b: b.model is not None or b.status == "failed")


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).read().splitlines()]


def test_full_lifecycle_completes_with_output_file(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=0.5)
    file_id = upload(client, 5)
    created = client.batches.create(
        input_file_id=file_id,
        endpoint=CHAT,
        completion_window="24h",
        metadata={"dag_id": "d", "run_key": "k" * 512},
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert created.id.startswith("batch_") and len(created.id) == len("batch_") + 32
    assert created.status == "validating" and created.object == "batch"
    assert created.expires_at == created.created_at + 24 * 3600
    assert created.metadata == {"dag_id": "d", "run_key": "k" * 512}

    seen: list[str] = []

    def completed(batch: Any) -> bool:
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        return bool(batch.status == "completed")

    batch = wait_for(client, created.id, completed)
    assert set(seen) <= {"validating", "in_progress", "finalizing", "completed"}
    assert seen[0] == "validating" and seen[-1] == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        5,
        5,
        0,
    )
    assert batch.model == MODEL and batch.errors is None and batch.error_file_id is None
    assert batch.in_progress_at is not None and batch.finalizing_at is not None
    assert batch.completed_at is not None and batch.completed_at >= batch.created_at

    lines = read_lines(client, batch.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == [f"r{i}" for i in range(5)]
    usage = {"input": 0, "cached": 0, "output": 0}
    for line in lines:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        response = line["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion" and body["model"] == MODEL
        assert line["custom_id"] in body["choices"][0]["message"]["content"]
        line_usage = body["usage"]
        assert line_usage["total_tokens"] == line_usage["prompt_tokens"] + line_usage["completion_tokens"]
        usage["input"] += line_usage["prompt_tokens"]
        usage["cached"] += line_usage["prompt_tokens_details"]["cached_tokens"]
        usage["output"] += line_usage["completion_tokens"]
    assert batch.usage is not None
    assert batch.usage.input_tokens == usage["input"] > 0
    assert batch.usage.input_tokens_details.cached_tokens == usage["cached"] > 0
    assert batch.usage.output_tokens == usage["output"] > 0
    assert batch.usage.total_tokens == usage["input"] + usage["output"]

    output = client.files.retrieve(batch.output_file_id)
    assert output.purpose == "batch_output" and output.status == "processed"
    assert output.filename == f"{batch.id}_output.jsonl"
    assert output.expires_at == output.created_at + 7200
    assert [f.id for f in client.files.list(purpose="batch_output")] == [output.id]
    assert emulator.stats()["batches_created"] == 1


def test_phases_follow_the_clock(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S)
    batch = client.batches.create(input_file_id=upload(client, 8), endpoint=CHAT, completion_window="24h")
    assert wait_until_checked(client, batch.id).status == "validating"
    emulator.advance_clock(50)  # in_progress runs from 10 to 90: half the requests are done
    current = client.batches.retrieve(batch.id)
    assert current.status == "in_progress" and current.in_progress_at is not None
    assert current.request_counts is not None and current.request_counts.completed == 4
    assert current.output_file_id is None and current.usage is not None and current.usage.input_tokens > 0
    emulator.advance_clock(42)
    assert client.batches.retrieve(batch.id).status == "finalizing"
    emulator.advance_clock(10)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert done.request_counts.completed == 8
    assert len(read_lines(client, done.output_file_id)) == 8


@pytest.mark.parametrize(
    ("endpoint", "check"),
    [
        ("/v1/responses", lambda body: body["object"] == "response" and body["usage"]["input_tokens"] > 0),
        (
            "/v1/embeddings",
            lambda body: (
                [len(item["embedding"]) for item in body["data"]] == [8, 8]
                and abs(sum(v * v for v in body["data"][0]["embedding"]) - 1) < 1e-3
            ),
        ),
        ("/v1/completions", lambda body: body["object"] == "text_completion" and body["choices"][0]["text"]),
        ("/v1/moderations", lambda body: body["results"][0]["flagged"] is False),
    ],
)
def test_fake_bodies_per_endpoint_are_deterministic(
    client: openai.OpenAI, emulator: EmulatorHandle, endpoint: Any, check: Callable[[dict[str, Any]], bool]
) -> None:
    emulator.configure(batch_duration_s=0)
    bodies = []
    for _ in range(2):
        batch = client.batches.create(
            input_file_id=upload(client, 2, url=endpoint), endpoint=endpoint, completion_window="24h"
        )
        batch = wait_for(client, batch.id, lambda b: b.status == "completed")
        lines = sorted(read_lines(client, batch.output_file_id), key=lambda line: line["custom_id"])
        assert len(lines) == 2 and all(check(line["response"]["body"]) for line in lines)
        bodies.append([line["response"]["body"] for line in lines])
    strip = ("created", "created_at")
    first, second = ([{k: v for k, v in b.items() if k not in strip} for b in run] for run in bodies)
    assert first == second


def test_bad_input_file_fails_naming_the_lines(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=0.2)
    payload = (
        request_line("a")
        + b"{not json\n"
        + request_line("a")
        + request_line("b", url="/v1/embeddings")
        + request_line("c", model="gpt-4o")
    )
    file_id = client.files.create(file=("bad.jsonl", payload), purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    failed = wait_for(client, batch.id, lambda b: b.status in ("failed", "completed"))
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.errors is not None and failed.errors.data is not None
    found = [(error.line, error.code, error.param) for error in failed.errors.data]
    assert found == [
        (2, "invalid_json_line", None),
        (3, "duplicate_custom_id", "custom_id"),
        (4, "mismatched_endpoint", "url"),
        (5, "mismatched_model", "body.model"),
    ]
    assert all(
        error.message and error.message.startswith(f"Line {error.line}:") for error in failed.errors.data
    )
    assert failed.output_file_id is None and failed.error_file_id is None
    assert failed.request_counts is not None and failed.request_counts.total == 0


def test_create_refuses_bad_arguments(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    file_id = upload(client, 1)
    other = client.files.create(file=("notes.txt", b"x"), purpose="user_data").id

    def refused(error: type[openai.APIStatusError], param: str, **arguments: Any) -> None:
        kwargs: dict[str, Any] = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
        kwargs.update(arguments)
        with pytest.raises(error) as raised:
            client.batches.create(**kwargs)
        body = raised.value.body
        assert isinstance(body, dict) and body["param"] == param, body
        if raised.value.status_code == 400:
            assert body["type"] == "invalid_request_error"

    refused(openai.NotFoundError, "input_file_id", input_file_id="file-missing")
    refused(openai.BadRequestError, "input_file_id", input_file_id=other)
    refused(openai.BadRequestError, "endpoint", endpoint="/v1/audio/speech")
    refused(openai.BadRequestError, "completion_window", completion_window="1h")
    refused(openai.BadRequestError, "metadata", metadata={f"k{i}": "v" for i in range(17)})
    refused(openai.BadRequestError, "metadata", metadata={"k" * 65: "v"})
    refused(openai.BadRequestError, "metadata", metadata={"k": "v" * 513})
    refused(
        openai.BadRequestError,
        "output_expires_after.seconds",
        output_expires_after={"anchor": "created_at", "seconds": 60},
    )
    emulator.set_processing_delay(60)
    refused(openai.BadRequestError, "input_file_id", input_file_id=upload(client, 1))
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    assert emulator.stats()["batches_created"] == 0


def test_cancel_keeps_results_of_requests_done_before(
    client: openai.OpenAI, emulator: EmulatorHandle
) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S)
    batch = client.batches.create(input_file_id=upload(client, 10), endpoint=CHAT, completion_window="24h")
    wait_until_checked(client, batch.id)
    emulator.advance_clock(50)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    assert client.batches.cancel(batch.id).status == "cancelling"  # idempotent
    emulator.advance_clock(11)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None
    assert (cancelled.request_counts.total, cancelled.request_counts.completed) == (10, 5)
    assert sorted(line["custom_id"] for line in read_lines(client, cancelled.output_file_id)) == [
        f"r{i}" for i in range(5)
    ]
    assert cancelled.error_file_id is None


def test_cancel_while_validating_gives_no_results(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S)
    batch = client.batches.create(input_file_id=upload(client, 3), endpoint=CHAT, completion_window="24h")
    assert client.batches.cancel(batch.id).status == "cancelling"
    emulator.advance_clock(30)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output_file_id is None and cancelled.error_file_id is None
    assert cancelled.request_counts is not None and cancelled.request_counts.completed == 0


def test_cancel_of_a_completed_batch_is_refused(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=0)
    batch = client.batches.create(input_file_id=upload(client, 1), endpoint=CHAT, completion_window="24h")
    wait_for(client, batch.id, lambda b: b.status == "completed")
    with pytest.raises(openai.BadRequestError) as raised:
        client.batches.cancel(batch.id)
    assert "completed" in raised.value.message


def test_expiry_puts_unfinished_requests_in_the_error_file(
    client: openai.OpenAI, emulator: EmulatorHandle
) -> None:
    emulator.configure(batch_duration_s=LONG_DURATION_S, batch_expire_after_s=50)
    batch = client.batches.create(input_file_id=upload(client, 10), endpoint=CHAT, completion_window="24h")
    assert batch.expires_at == batch.created_at + 50
    wait_until_checked(client, batch.id)
    emulator.advance_clock(50)
    expired = client.batches.retrieve(batch.id)
    assert expired.status == "expired" and expired.expired_at is not None
    assert expired.request_counts is not None
    assert (expired.request_counts.completed, expired.request_counts.failed) == (5, 5)
    outputs = read_lines(client, expired.output_file_id)
    errors = read_lines(client, expired.error_file_id)
    assert sorted(line["custom_id"] for line in outputs) == [f"r{i}" for i in range(5)]
    assert sorted(line["custom_id"] for line in errors) == [f"r{i}" for i in range(5, 10)]
    assert all(line["response"] is None and line["error"]["code"] == "batch_expired" for line in errors)


def test_request_error_rate_is_deterministic_per_custom_id(
    client: openai.OpenAI, emulator: EmulatorHandle
) -> None:
    emulator.configure(batch_duration_s=0, batch_request_error_rate=0.3, batch_seed=7)
    failed_sets = []
    for _ in range(2):
        batch = client.batches.create(
            input_file_id=upload(client, 40), endpoint=CHAT, completion_window="24h"
        )
        batch = wait_for(client, batch.id, lambda b: b.status == "completed")
        outputs = read_lines(client, batch.output_file_id)
        errors = read_lines(client, batch.error_file_id)
        assert 0 < len(errors) < 40
        assert sorted(line["custom_id"] for line in outputs + errors) == sorted(f"r{i}" for i in range(40))
        assert batch.request_counts is not None and batch.request_counts.failed == len(errors)
        for line in errors:
            status = line["response"]["status_code"]
            expected = {429: "rate_limit_exceeded", 500: "server_error"}[status]
            assert line["error"]["code"] == expected == line["response"]["body"]["error"]["code"]
        failed_sets.append({line["custom_id"] for line in errors})
    assert failed_sets[0] == failed_sets[1]
    error_file = client.files.retrieve(batch.error_file_id or "")
    assert error_file.purpose == "batch_output" and error_file.filename == f"{batch.id}_error.jsonl"


def test_enqueued_token_limit_fails_the_batch_over_it(
    client: openai.OpenAI, emulator: EmulatorHandle
) -> None:
    line_tokens = len(request_line("r0")) // 4
    emulator.configure(batch_duration_s=LONG_DURATION_S, batch_enqueued_token_limit=line_tokens * 3)
    first = client.batches.create(input_file_id=upload(client, 2), endpoint=CHAT, completion_window="24h")
    assert wait_until_checked(client, first.id).status == "validating"
    second = client.batches.create(input_file_id=upload(client, 2), endpoint=CHAT, completion_window="24h")
    wait_until_checked(client, second.id)
    emulator.advance_clock(15)
    assert client.batches.retrieve(first.id).status == "in_progress"
    refused = client.batches.retrieve(second.id)
    assert refused.status == "failed" and refused.errors is not None and refused.errors.data is not None
    assert [(e.code, e.line) for e in refused.errors.data] == [("token_limit_exceeded", None)]
    assert "Enqueued token limit" in (refused.errors.data[0].message or "")


def test_list_pages_newest_first(client: openai.OpenAI, emulator: EmulatorHandle) -> None:
    file_id = upload(client, 1)
    ids = [
        client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id
        for _ in range(5)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more is True
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # the SDK follows the cursor
    raw = httpx.get(
        f"{emulator.base_url}/batches",
        params={"limit": 3, "after": ids[3]},
        headers={"Authorization": "Bearer k"},
    ).json()
    assert [b["id"] for b in raw["data"]] == ids[2::-1] and raw["has_more"] is False
    assert (raw["first_id"], raw["last_id"]) == (ids[2], ids[0])
    too_many = httpx.get(
        f"{emulator.base_url}/batches", params={"limit": 101}, headers={"Authorization": "Bearer k"}
    )
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"
    assert emulator.stats()["batches_created"] == 5


# -- gateways ------------------------------------------------------------------------------------------

AZURE_API_VERSION = "2024-10-21"


def test_azure_classic_batches_through_the_azure_sdk_client(emulator: EmulatorHandle) -> None:
    emulator.configure(batch_duration_s=0)
    azure = openai.AzureOpenAI(
        azure_endpoint=emulator.root_url, api_key="azure-key", api_version=AZURE_API_VERSION, max_retries=0
    )
    file_id = azure.files.create(file=("a.jsonl", request_line("a") + request_line("b")), purpose="batch").id
    batch = azure.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    deadline = time.monotonic() + WAIT_S
    while (batch := azure.batches.retrieve(batch.id)).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    assert [b.id for b in azure.batches.list()] == [batch.id]
    assert batch.output_file_id is not None
    assert len(azure.files.content(batch.output_file_id).read().splitlines()) == 2
    logged = [e for e in emulator.request_log() if e["route"] == "create_batch"]
    assert logged[0]["path"] == "/openai/batches" and logged[0]["query"] == {"api-version": AZURE_API_VERSION}
    assert "api-key" in logged[0]["headers"]

    root = emulator.root_url
    missing_version = httpx.get(f"{root}/openai/batches", headers={"api-key": "k"})
    assert missing_version.status_code == 400
    assert missing_version.json()["error"]["code"] == "MissingApiVersionParameter"
    bad_window = httpx.post(
        f"{root}/openai/batches",
        params={"api-version": AZURE_API_VERSION},
        headers={"api-key": "k"},
        json={"input_file_id": file_id, "endpoint": CHAT, "completion_window": "48h"},
    )
    assert bad_window.status_code == 400 and bad_window.json()["error"]["target"] == "completion_window"


def test_azure_v1_batches_are_openai_shaped(emulator: EmulatorHandle) -> None:
    client = openai.OpenAI(base_url=f"{emulator.root_url}/openai/v1", api_key="azure-key", max_retries=0)
    batch = client.batches.create(input_file_id=upload(client, 1), endpoint=CHAT, completion_window="24h")
    assert client.batches.retrieve(batch.id).id == batch.id
    assert client.batches.cancel(batch.id).status == "cancelling"
    assert emulator.request_log()[-1]["flavour"] == "azure_v1"


def test_respan_batches_need_trailing_slash_and_chat_endpoint(emulator: EmulatorHandle) -> None:
    base = f"{emulator.root_url}/api"
    auth = {"Authorization": "Bearer respan-key"}
    file_id = httpx.post(
        f"{base}/files/",
        headers=auth,
        data={"purpose": "batch"},
        files={"file": ("a.jsonl", request_line("a"))},
    ).json()["id"]
    body = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    created = httpx.post(f"{base}/batches/", headers=auth, json=body)
    assert created.status_code == 200 and created.json()["status"] == "validating"
    assert (
        httpx.get(f"{base}/batches/{created.json()['id']}/", headers=auth).json()["id"]
        == created.json()["id"]
    )
    assert httpx.post(f"{base}/batches", headers=auth, json=body).status_code == 404
    embeddings = httpx.post(f"{base}/batches/", headers=auth, json={**body, "endpoint": "/v1/embeddings"})
    assert embeddings.status_code == 400 and embeddings.json()["error"]["param"] == "endpoint"


def test_portkey_and_litellm_headers_apply_to_batches(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    handle = emulator_factory(api_key="gw-key")
    url = f"{handle.base_url}/batches"
    no_provider = httpx.get(url, headers={"x-portkey-api-key": "gw-key"})
    assert no_provider.status_code == 400 and no_provider.json()["status"] == "failure"
    # hosted Portkey with a raw provider name forwards the provider key from Authorization
    provider_key = {"Authorization": "Bearer sk-provider"}
    portkey = httpx.get(
        url, headers={"x-portkey-api-key": "gw-key", "x-portkey-provider": "openai", **provider_key}
    )
    assert portkey.status_code == 200 and portkey.json()["data"] == []
    wrong_key = httpx.get(url, headers={"x-portkey-api-key": "nope", "x-portkey-provider": "openai"})
    assert wrong_key.status_code == 401
    litellm = httpx.get(url, headers={"x-litellm-api-key": "gw-key", "custom-llm-provider": "openai"})
    assert litellm.status_code == 200


def test_lost_response_to_create_still_creates_exactly_one_batch(
    client: openai.OpenAI, emulator: EmulatorHandle
) -> None:
    file_id = upload(client, 1)
    emulator.set_faults("create_batch:drop_after=x1,retrieve_batch:429=x1")
    with pytest.raises(openai.APIConnectionError):
        client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert emulator.stats()["batches_created"] == 1
    (listed,) = client.batches.list().data
    with pytest.raises(openai.RateLimitError):
        client.batches.retrieve(listed.id)
    assert client.batches.retrieve(listed.id).input_file_id == file_id
    assert emulator.faults()["injected"] == {"drop_after": 1, "429": 1}


def test_max_tokens_sets_the_length_of_the_fake_answer(
    client: openai.OpenAI, emulator: EmulatorHandle
) -> None:
    emulator.configure(batch_duration_s=0)
    payload = request_line("long", max_tokens=500) + request_line("short")
    file_id = client.files.create(file=("r.jsonl", payload), purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    batch = wait_for(client, batch.id, lambda b: b.status == "completed")
    bodies = {
        line["custom_id"]: line["response"]["body"] for line in read_lines(client, batch.output_file_id)
    }
    assert bodies["long"]["usage"]["completion_tokens"] == 500
    assert len(bodies["long"]["choices"][0]["message"]["content"]) == 2000
    assert bodies["long"]["choices"][0]["message"]["content"].startswith(
        f"Emulated reply from {MODEL} to request long."
    )
    assert bodies["short"]["usage"]["completion_tokens"] < 40
