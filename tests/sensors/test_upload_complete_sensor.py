"""UploadCompleteSensor and wait_for_files against a mocked API (respx)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import respx
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from airflow_provider_files.hooks.files import FilesHook
from airflow_provider_files.sensors.files import (
    FileProcessingFailedError,
    FileWaitError,
    FileWaitTimeoutError,
    UploadCompleteSensor,
    wait_for_files,
)
from airflow_provider_files.triggers.files import UploadCompleteTrigger

from .support import deferred_trigger


def file_json(file_id: str = "file-1", status: str | None = "processed", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": file_id,
        "object": "file",
        "bytes": 120,
        "created_at": 1_700_000_000,
        "filename": "batch.jsonl",
        "purpose": "batch",
        "status": status,
    }
    data.update(fields)
    return data


def ok(file_id: str = "file-1", status: str | None = "processed", **fields: Any) -> httpx.Response:
    return httpx.Response(200, json=file_json(file_id, status, **fields))


def sensor(conn_id: str, **kwargs: Any) -> UploadCompleteSensor:
    kwargs.setdefault("file_id", "file-1")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poke_interval", 0.05)
    return UploadCompleteSensor(task_id="wait", files_conn_id=conn_id, **kwargs)


# -- poke ------------------------------------------------------------------------------------


def test_poke_processed_returns_file_dict(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok())
    result = sensor(files_conn).poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    value: Any = result.xcom_value
    assert value["id"] == "file-1"
    assert value["status"] == "processed"


def test_poke_uploaded_is_not_done(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(status="uploaded"))
    assert not sensor(files_conn).poke({}).is_done


def test_poke_error_raises_with_status_details(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        return_value=ok(status="error", status_details="Line 2: 'custom_id' is missing.")
    )
    with pytest.raises(FileProcessingFailedError, match=r"Line 2: 'custom_id' is missing\.") as info:
        sensor(files_conn).poke({})
    assert isinstance(info.value, AirflowFailException)  # no pointless task retries


@pytest.mark.parametrize("status", ["deleted", "deleting"])
def test_poke_deleted_raises(files_conn: str, api: respx.MockRouter, status: str) -> None:
    api.get("/files/file-1").mock(return_value=ok(status=status))
    with pytest.raises(FileProcessingFailedError, match=status):
        sensor(files_conn).poke({})


def test_poke_expired_raises(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(expires_at=int(time.time()) - 5))
    with pytest.raises(FileProcessingFailedError, match="expired"):
        sensor(files_conn).poke({})


def test_poke_not_found_tolerated_within_grace_then_fails(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        return_value=httpx.Response(404, json={"error": {"message": "No such File"}})
    )
    task = sensor(files_conn, not_found_grace_s=60)
    assert not task.poke({}).is_done
    assert not task.poke({}).is_done
    # The grace runs from the first 404 this sensor saw.
    assert task._tracker is not None
    task._tracker.missing_since["file-1"] -= 61
    with pytest.raises(FileProcessingFailedError, match="not found"):
        task.poke({})


def test_poke_not_found_then_found(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        side_effect=[httpx.Response(404, json={"error": {"message": "No such File"}}), ok()]
    )
    task = sensor(files_conn)
    assert not task.poke({}).is_done
    assert task.poke({}).is_done


def test_poke_gateway_without_status(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=httpx.Response(200, json={"id": "file-1", "bytes": 120}))
    result = sensor(files_conn, file_id={"id": "file-1", "bytes": 120}).poke({})
    assert result.is_done
    value: Any = result.xcom_value
    assert value["id"] == "file-1"


def test_poke_gateway_without_status_waits_for_expected_size(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=httpx.Response(200, json={"id": "file-1", "bytes": 60}))
    assert not sensor(files_conn, file_id={"id": "file-1", "bytes": 120}).poke({}).is_done


def test_poke_list_returns_list_in_order(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-b").mock(return_value=ok("file-b"))
    api.get("/files/file-a").mock(side_effect=[ok("file-a", status="uploaded"), ok("file-a")])
    task = sensor(files_conn, file_id=[{"id": "file-b", "bytes": 120}, "file-a"])
    assert not task.poke({}).is_done
    result = task.poke({})
    assert result.is_done
    value: Any = result.xcom_value
    assert [f["id"] for f in value] == ["file-b", "file-a"]


def test_poke_transient_error_tolerated_then_raises(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=httpx.Response(503, json={"error": {"message": "overloaded"}}))
    task = sensor(files_conn, max_consecutive_errors=2)
    assert not task.poke({}).is_done
    assert not task.poke({}).is_done
    with pytest.raises(FileWaitError, match="overloaded"):
        task.poke({})


def test_poke_auth_error_raises_at_once_without_the_key(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        return_value=httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}})
    )
    with pytest.raises(FileWaitError, match="401") as info:
        sensor(files_conn).poke({})
    assert "sk-unit-secret" not in str(info.value)


# -- execute (poke mode) and input checks ------------------------------------------------------


def test_execute_poke_mode_waits_and_returns_file(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(side_effect=[ok(status="uploaded"), ok(status="uploaded"), ok()])
    result = sensor(files_conn).execute({})
    assert result["id"] == "file-1"


def test_execute_poke_mode_soft_fail_skips_on_error(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(status="error", status_details="bad"))
    with pytest.raises(AirflowSkipException):
        sensor(files_conn, soft_fail=True).execute({})


@pytest.mark.parametrize("bad", [42, [], {"name": "x"}, "{'id': 'file-1'}", ["file-1", None]])
def test_execute_rejects_bad_file_id_before_any_request(
    files_conn: str, api: respx.MockRouter, bad: Any
) -> None:
    route = api.get(url__regex=r".*").mock(return_value=ok())
    with pytest.raises(AirflowFailException, match=r"wait\.file_id"):
        sensor(files_conn, file_id=bad, deferrable=True).execute({})
    assert route.call_count == 0


def test_template_fields() -> None:
    assert set(UploadCompleteSensor.template_fields) == {"file_id", "files_conn_id"}


# -- deferrable ----------------------------------------------------------------------------


def test_deferrable_defers_with_trigger(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(status="uploaded"))
    api.get("/files/file-2").mock(return_value=httpx.Response(404, json={"error": {"message": "nope"}}))
    task = sensor(
        files_conn,
        file_id=[{"id": "file-1", "bytes": 120}, "file-2"],
        deferrable=True,
        timeout=600,
        poke_interval=5,
        not_found_grace_s=30,
    )
    trigger = deferred_trigger(task, timeout_s=600)
    assert isinstance(trigger, UploadCompleteTrigger)
    assert trigger.file_ids == ["file-1", "file-2"]
    assert trigger.files_conn_id == files_conn
    assert trigger.poll_interval_s == 5
    assert trigger.expected_bytes == {"file-1": 120}
    assert trigger.not_found_grace_s == 30
    assert set(trigger.missing_since) == {"file-2"}


def test_deferrable_returns_without_deferring_when_ready(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok())
    assert sensor(files_conn, deferrable=True).execute({})["id"] == "file-1"


def test_deferrable_first_poke_failure_raises(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(status="error", status_details="Line 1: not JSON"))
    with pytest.raises(FileProcessingFailedError, match="Line 1: not JSON"):
        sensor(files_conn, deferrable=True).execute({})


def test_execute_complete_success_single_and_list() -> None:
    files = [file_json("file-1")]
    assert sensor("unused").execute_complete({}, {"status": "success", "files": files}) == files[0]
    assert (
        sensor("unused", file_id=["file-1"]).execute_complete({}, {"status": "success", "files": files})
        == files
    )


def test_execute_complete_file_error_raises_with_message() -> None:
    event = {
        "status": "error",
        "message": "file file-1 failed processing: Line 4",
        "file_id": "file-1",
        "reason": "file_failed",
    }
    with pytest.raises(FileProcessingFailedError, match="Line 4"):
        sensor("unused").execute_complete({}, event)


def test_execute_complete_api_error_raises_retryable() -> None:
    event = {
        "status": "error",
        "message": "giving up after 6 consecutive API errors",
        "file_id": None,
        "reason": "api_error",
    }
    with pytest.raises(FileWaitError, match="6 consecutive") as info:
        sensor("unused").execute_complete({}, event)
    assert not isinstance(info.value, AirflowFailException)


def test_execute_complete_timeout_is_sensor_timeout() -> None:
    with pytest.raises(AirflowSensorTimeout, match="deadline reached"):
        sensor("unused").execute_complete(
            {}, {"status": "timeout", "message": "deadline reached; x", "pending": ["file-1"]}
        )


@pytest.mark.parametrize("event", [None, {}, {"status": "weird"}, {"status": "success", "files": "x"}])
def test_execute_complete_rejects_invalid_events(event: Any) -> None:
    with pytest.raises(AirflowException):
        sensor("unused").execute_complete({}, event)


# -- wait_for_files ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_files_returns_ready_files_with_backoff(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(side_effect=[ok(status="uploaded")] * 3 + [ok()])
    clock = FakeClock()
    files = wait_for_files(
        FilesHook(files_conn),
        "file-1",
        timeout_s=100,
        poll_interval_s=2,
        max_poll_interval_s=4,
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert [f.id for f in files] == ["file-1"]
    assert clock.sleeps == [2, 3, 4]


def test_wait_for_files_times_out(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(status="uploaded"))
    clock = FakeClock()
    with pytest.raises(FileWaitTimeoutError, match="file-1 has status 'uploaded'"):
        wait_for_files(
            FilesHook(files_conn),
            ["file-1"],
            timeout_s=10,
            poll_interval_s=3,
            sleep=clock.sleep,
            clock=clock.time,
        )
    assert sum(clock.sleeps) == pytest.approx(10)


def test_wait_for_files_fails_on_error_status(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(return_value=ok(status="error", status_details="Line 9: bad url"))
    clock = FakeClock()
    with pytest.raises(FileProcessingFailedError, match="Line 9: bad url"):
        wait_for_files(FilesHook(files_conn), "file-1", timeout_s=10, sleep=clock.sleep, clock=clock.time)


def test_wait_for_files_uses_expected_bytes(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(
        side_effect=[
            httpx.Response(200, json={"id": "file-1", "bytes": 1}),
            httpx.Response(200, json={"id": "file-1", "bytes": 120}),
        ]
    )
    clock = FakeClock()
    files = wait_for_files(
        FilesHook(files_conn),
        "file-1",
        timeout_s=10,
        expected_bytes={"file-1": 120},
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert files[0].bytes == 120
    assert len(clock.sleeps) == 1


def test_wait_for_files_rides_out_transient_errors(files_conn: str, api: respx.MockRouter) -> None:
    api.get("/files/file-1").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(502), ok()])
    clock = FakeClock()
    files = wait_for_files(FilesHook(files_conn), "file-1", timeout_s=60, sleep=clock.sleep, clock=clock.time)
    assert files[0].status == "processed"


class RescheduledTaskInstance:
    """Stands in for the task instance of a sensor in reschedule mode that first poked 2 min ago."""

    def get_first_reschedule_date(self, context: Any) -> Any:
        from datetime import datetime, timezone

        return datetime.fromtimestamp(time.time() - 120, tz=timezone.utc)


def test_reschedule_mode_counts_grace_from_first_poke(files_conn: str, api: respx.MockRouter) -> None:
    """Each reschedule builds a new sensor object; a 404 must still run out of grace."""
    api.get("/files/file-1").mock(
        return_value=httpx.Response(404, json={"error": {"message": "No such File"}})
    )
    context: Any = {"ti": RescheduledTaskInstance()}
    assert not sensor(files_conn, mode="reschedule", not_found_grace_s=300).poke(context).is_done
    with pytest.raises(FileProcessingFailedError, match="not found"):
        sensor(files_conn, mode="reschedule", not_found_grace_s=60).poke(context)
