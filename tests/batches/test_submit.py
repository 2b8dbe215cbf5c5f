"""submit_batch over real HTTP against the emulator: one batch per run key whatever goes wrong."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_files.api import (
    ConfigurationError,
    FilesClient,
    QuotaExceededError,
    UnsupportedOperationError,
)
from airflow_provider_files.api.gateways import PROFILES
from airflow_provider_files.batches import (
    DEFAULT_OUTPUT_EXPIRES_AFTER_S,
    RUN_KEY_METADATA_KEY,
    BatchCreateRateLimitedError,
    BatchInputError,
    SubmitResult,
    TokenLimitRetry,
    is_token_limit_failure,
    run_batch,
    run_key,
    submit_batch,
)
from airflow_provider_files.emulator.testing import EmulatorHandle

from .support import CHAT, batch_statuses, client_for, created_count, upload_requests, wait_until_done

KEY = run_key("dag", "task", "run-1", -1)


@pytest.fixture
def client(emulator: EmulatorHandle) -> Iterator[FilesClient]:
    with client_for(emulator) as files_client:
        yield files_client


def submit(client: FilesClient, file_id: str, key: str = KEY, **kwargs: Any) -> SubmitResult:
    kwargs.setdefault("min_create_interval_s", 0)
    return submit_batch(client, input_file_id=file_id, endpoint=CHAT, run_key=key, **kwargs)


def test_run_key_is_stable_short_and_tells_tasks_runs_and_indexes_apart() -> None:
    assert run_key("d", "t", "r", 0) == run_key("d", "t", "r", 0)
    assert len(KEY) == 32 and int(KEY, 16) >= 0
    keys = {
        run_key("d", "t", "r", 0),
        run_key("d", "t", "r", 1),
        run_key("d", "t", "r2", 0),
        run_key("d", "t2", "r", 0),
        run_key("d2", "t", "r", 0),
        run_key("d", "t", "r", 0, extra="round-2"),
    }
    assert len(keys) == 6
    assert run_key("d", "t", "r", None) == run_key("d", "t", "r", -1)


def test_creates_with_the_run_key_then_a_second_submit_reuses_it(
    client: FilesClient, emulator: EmulatorHandle
) -> None:
    file_id = upload_requests(client)
    first = submit(client, file_id, metadata={"team": "search"})
    assert not first.reused and not first.recovered
    assert first.batch.metadata == {"team": "search", RUN_KEY_METADATA_KEY: KEY}
    second = submit(client, file_id, metadata={"team": "search"})
    assert second.reused and second.batch.id == first.batch.id
    other = submit(client, file_id, key=run_key("dag", "task", "run-2", -1))
    assert not other.reused and other.batch.id != first.batch.id
    assert created_count(emulator) == 2


def test_a_batch_of_another_input_file_is_not_reused(client: FilesClient, emulator: EmulatorHandle) -> None:
    first = submit(client, upload_requests(client))
    second = submit(client, upload_requests(client))
    assert second.batch.id != first.batch.id and not second.reused
    assert created_count(emulator) == 2


def test_a_lost_answer_to_create_is_found_instead_of_creating_again(
    client: FilesClient, emulator: EmulatorHandle
) -> None:
    file_id = upload_requests(client)
    emulator.set_faults("create_batch:drop_after=x1")
    result = submit(client, file_id)
    assert result.recovered and not result.reused
    assert created_count(emulator) == 1
    assert emulator.faults()["injected"]  # the fault did happen
    assert submit(client, file_id).batch.id == result.batch.id
    assert created_count(emulator) == 1


def test_a_lost_answer_on_the_last_attempt_is_found_too(emulator: EmulatorHandle) -> None:
    with client_for(emulator, max_retries=0) as no_retry:
        file_id = upload_requests(no_retry)
        emulator.set_faults("create_batch:drop_after=x1")
        result = submit(no_retry, file_id)
    assert result.recovered
    assert created_count(emulator) == 1


def test_a_connection_dropped_before_the_create_creates_once(
    client: FilesClient, emulator: EmulatorHandle
) -> None:
    file_id = upload_requests(client)
    emulator.set_faults("create_batch:drop=x1,create_batch:500=x1")
    result = submit(client, file_id)
    assert not result.recovered
    assert created_count(emulator) == 1


def test_a_rate_limited_create_waits_the_retry_after_and_creates(emulator: EmulatorHandle) -> None:
    waits: list[float] = []
    with client_for(emulator, max_retries=0) as no_retry:
        file_id = upload_requests(no_retry)
        emulator.set_faults("create_batch:429=x2,retry_after=3")
        result = submit(no_retry, file_id, sleep=waits.append)
    assert waits == [3.0, 3.0]
    assert not result.reused
    assert created_count(emulator) == 1


def test_a_create_rate_limited_for_too_long_fails_and_creates_nothing(emulator: EmulatorHandle) -> None:
    waits: list[float] = []
    with client_for(emulator, max_retries=0) as no_retry:
        file_id = upload_requests(no_retry)
        emulator.set_faults("create_batch:429=x5,retry_after=4")
        with pytest.raises(BatchCreateRateLimitedError, match="rate limited after waiting 8 s"):
            submit(no_retry, file_id, sleep=waits.append, rate_limit_max_wait_s=10)
    assert waits == [4.0, 4.0]
    assert created_count(emulator) == 0


def test_out_of_quota_is_not_waited_for(emulator: EmulatorHandle) -> None:
    with client_for(emulator, max_retries=0) as no_retry:
        file_id = upload_requests(no_retry)
        emulator.set_faults("create_batch:quota=x1")
        with pytest.raises(QuotaExceededError):
            submit(no_retry, file_id, sleep=lambda _s: pytest.fail("waited for an empty quota"))
    assert created_count(emulator) == 0


def test_creates_of_one_process_are_spaced(client: FilesClient, emulator: EmulatorHandle) -> None:
    now = [time.time() + 1e6]  # long after any create of the tests before
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    file_id = upload_requests(client)
    for run in ("a", "b"):
        submit(
            client,
            file_id,
            key=run_key("d", "t", run, -1),
            clock=lambda: now[0],
            sleep=sleep,
            min_create_interval_s=1.8,
            lookup_window_s=1e12,
        )
    assert waits == [pytest.approx(1.8)]
    assert created_count(emulator) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"endpoint": "/v1/unknown"}, ConfigurationError, "endpoint '/v1/unknown' is not accepted"),
        ({"endpoint": "chat"}, ConfigurationError, "must be an API path"),
        ({"completion_window": "48h"}, ConfigurationError, "completion_window must be one of 24h"),
        ({"metadata": {RUN_KEY_METADATA_KEY: "mine"}}, BatchInputError, "reserved for the run key"),
        ({"metadata": {f"k{i}": "v" for i in range(16)}}, BatchInputError, "at most 15 pairs"),
        ({"output_expires_after_s": 60}, ConfigurationError, "output_expires_after_s"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(
    client: FilesClient,
    emulator: EmulatorHandle,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    file_id = upload_requests(client)
    before = len(emulator.request_log())
    arguments = {"input_file_id": file_id, "endpoint": CHAT, "run_key": KEY, **kwargs}
    with pytest.raises(error, match=message):
        submit_batch(client, **arguments)  # type: ignore[arg-type]
    assert len(emulator.request_log()) == before
    assert created_count(emulator) == 0


def test_a_file_of_another_purpose_is_refused(client: FilesClient, emulator: EmulatorHandle) -> None:
    file_id = upload_requests(client, purpose="user_data")
    with pytest.raises(BatchInputError, match=f"file {file_id} has purpose 'user_data'"):
        submit(client, file_id)
    assert created_count(emulator) == 0


def test_a_file_not_processed_yet_is_refused(client: FilesClient, emulator: EmulatorHandle) -> None:
    emulator.set_processing_delay(60)
    file_id = upload_requests(client)
    with pytest.raises(BatchInputError, match=f"file {file_id} is 'uploaded'.*not 'processed'"):
        submit(client, file_id)
    assert created_count(emulator) == 0


def test_a_gateway_without_batches_is_refused(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = dataclasses.replace(PROFILES["openai"], name="nobatch", supports_batches=False)
    monkeypatch.setitem(PROFILES, "nobatch", profile)
    refused = pytest.raises(UnsupportedOperationError, match="Batches API is not supported by the 'nobatch'")
    with client_for(emulator, gateway="nobatch") as nobatch, refused:
        submit(nobatch, "file-abc")
    assert emulator.request_log() == []


def test_a_token_limit_refusal_is_not_reused_and_the_batch_is_created_again(
    client: FilesClient, emulator: EmulatorHandle
) -> None:
    emulator.configure(batch_enqueued_token_limit=1, batch_duration_s=0.3)
    file_id = upload_requests(client)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        emulator.configure(batch_enqueued_token_limit=None)  # the queue drained meanwhile

    batch = run_batch(
        client,
        wait=lambda b: wait_until_done(client, b),
        token_limit=TokenLimitRetry(wait_s=120, max_wait_s=600),
        sleep=sleep,
        input_file_id=file_id,
        endpoint=CHAT,
        run_key=KEY,
        min_create_interval_s=0,
    )
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    output = client.retrieve_file(batch.output_file_id)  # the default lifetime was asked for
    assert output.expires_at is not None and output.created_at is not None
    assert output.expires_at - output.created_at == DEFAULT_OUTPUT_EXPIRES_AFTER_S
    assert waits == [120]
    assert created_count(emulator) == 2
    assert sorted(batch_statuses(emulator)) == ["completed", "failed"]


def test_token_limit_waits_are_bounded(client: FilesClient, emulator: EmulatorHandle) -> None:
    emulator.configure(batch_enqueued_token_limit=1, batch_duration_s=0.3)
    file_id = upload_requests(client)
    waits: list[float] = []
    batch = run_batch(
        client,
        wait=lambda b: wait_until_done(client, b),
        token_limit=TokenLimitRetry(wait_s=100, max_wait_s=250),
        sleep=waits.append,
        input_file_id=file_id,
        endpoint=CHAT,
        run_key=KEY,
        min_create_interval_s=0,
    )
    assert is_token_limit_failure(batch)
    assert waits == [100, 100]
    assert created_count(emulator) == 3
