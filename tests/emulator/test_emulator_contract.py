"""Each contract violation answers OpenAI's status code and error body; state transitions."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle, run_emulator

MAX_FILE_BYTES = 1000
MAX_PART_BYTES = 400
MAX_UPLOAD_BYTES = 2000


@pytest.fixture(scope="module")
def small_limits() -> Iterator[EmulatorHandle]:
    with run_emulator(
        max_file_bytes=MAX_FILE_BYTES, max_part_bytes=MAX_PART_BYTES, max_upload_bytes=MAX_UPLOAD_BYTES
    ) as handle:
        yield handle


@pytest.fixture
def api(small_limits: EmulatorHandle) -> Iterator[httpx.Client]:
    small_limits.reset()
    small_limits.clear_faults()
    small_limits.restore_settings()
    with httpx.Client(
        base_url=small_limits.base_url, headers={"Authorization": "Bearer sk-test"}, timeout=30
    ) as client:
        yield client


def assert_error(response: httpx.Response, status: int, *, param: str | None = None, text: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert text.lower() in error["message"].lower()
    return error


def create_upload(api: httpx.Client, size: int, purpose: str = "batch") -> str:
    response = api.post(
        "/uploads", json={"filename": "a.jsonl", "purpose": purpose, "bytes": size, "mime_type": "text/jsonl"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def add_part(api: httpx.Client, upload_id: str, data: bytes) -> httpx.Response:
    return api.post(f"/uploads/{upload_id}/parts", files={"data": ("blob", data)})


# -- auth ------------------------------------------------------------------------------------------


def test_missing_key_is_401(emulator: EmulatorHandle) -> None:
    response = httpx.get(f"{emulator.base_url}/files")
    error = assert_error(response, 401, text="didn't provide an API key")
    assert error["type"] == "invalid_request_error"


def test_non_bearer_authorization_is_401(emulator: EmulatorHandle) -> None:
    response = httpx.get(f"{emulator.base_url}/files", headers={"Authorization": "Basic abc"})
    assert_error(response, 401)


def test_any_key_accepted_when_none_configured(emulator: EmulatorHandle) -> None:
    response = httpx.get(f"{emulator.base_url}/files", headers={"Authorization": "Bearer whatever"})
    assert response.status_code == 200


def test_wrong_key_is_401_and_never_echoed(emulator_factory: Callable[..., EmulatorHandle]) -> None:
    handle = emulator_factory(api_key="sk-right-key")
    wrong = httpx.get(f"{handle.base_url}/files", headers={"Authorization": "Bearer sk-wrong-secret"})
    error = assert_error(wrong, 401, text="Incorrect API key")
    assert error["code"] == "invalid_api_key"
    assert "sk-wrong-secret" not in wrong.text and "sk-right-key" not in wrong.text
    right = httpx.get(f"{handle.base_url}/files", headers={"Authorization": "Bearer sk-right-key"})
    assert right.status_code == 200
    log = handle.request_log()
    assert "sk-wrong-secret" not in str(log) and "sk-right-key" not in str(log)
    assert "sk-wrong-secret" not in handle.log_path.read_text()


# -- files -----------------------------------------------------------------------------------------


def test_wrong_purpose_is_400(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    response = api.post("/files", data={"purpose": "nonsense"}, files={"file": ("a.jsonl", b"{}")})
    error = assert_error(response, 400, param="purpose", text="purpose")
    assert error["type"] == "invalid_request_error"
    assert small_limits.stats()["file_count"] == 0


def test_missing_purpose_and_missing_file_are_400(api: httpx.Client) -> None:
    assert_error(api.post("/files", files={"file": ("a.jsonl", b"{}")}), 400, param="purpose")
    assert_error(api.post("/files", files={"purpose": (None, b"batch")}), 400, param="file")


def test_unknown_form_field_is_400(api: httpx.Client) -> None:
    response = api.post("/files", data={"purpose": "batch", "colour": "red"}, files={"file": ("a", b"x")})
    assert_error(response, 400, param="colour", text="Unrecognized request argument")


def test_not_multipart_is_400(api: httpx.Client) -> None:
    assert_error(api.post("/files", json={"purpose": "batch"}), 400, text="multipart/form-data")


def raw_file_form(disposition: str) -> tuple[bytes, dict[str, str]]:
    """A multipart body whose file part has the given Content-Disposition parameters."""
    body = (
        b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; ' + disposition.encode() + b"\r\n"
        b"Content-Type: application/jsonl\r\n\r\n{}\r\n--B--\r\n"
    )
    return body, {"content-type": "multipart/form-data; boundary=B"}


@pytest.mark.parametrize(
    ("disposition", "text"),
    [
        ("filename*=x-unknown-charset''%41.jsonl", "unknown charset 'x-unknown-charset'"),
        ("filename*=zlib''a.jsonl", "unknown charset 'zlib'"),
        ("filename*=us-ascii''na%C3%AFve.jsonl", "not valid us-ascii"),
        ("filename*=a.jsonl", "malformed filename*"),
    ],
)
def test_bad_extended_filename_is_400(
    api: httpx.Client, small_limits: EmulatorHandle, disposition: str, text: str
) -> None:
    body, headers = raw_file_form(disposition)
    assert_error(api.post("/files", content=body, headers=headers), 400, text=text)
    assert small_limits.stats()["file_count"] == 0


def test_extended_filename_is_decoded(api: httpx.Client) -> None:
    body, headers = raw_file_form("filename=\"fallback.jsonl\"; filename*=UTF-8''na%C3%AFve.jsonl")
    response = api.post("/files", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["filename"] == "na\u00efve.jsonl"


def test_oversize_file_is_413_and_nothing_stored(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    response = api.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", b"x" * (MAX_FILE_BYTES + 1))}
    )
    assert_error(response, 413, param="file", text=str(MAX_FILE_BYTES))
    assert small_limits.stats()["file_count"] == 0
    assert list((small_limits.data_dir / "files").iterdir()) == []
    at_limit = api.post(
        "/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", b"x" * MAX_FILE_BYTES)}
    )
    assert at_limit.status_code == 200


def test_bad_expires_after_is_400(api: httpx.Client) -> None:
    response = api.post(
        "/files",
        data={"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
        files={"file": ("a.jsonl", b"{}")},
    )
    assert_error(response, 400, param="expires_after.seconds")


def test_unknown_file_id_is_404_everywhere(api: httpx.Client) -> None:
    for method, path in (
        ("GET", "/files/file-nope"),
        ("DELETE", "/files/file-nope"),
        ("GET", "/files/file-nope/content"),
    ):
        error = assert_error(api.request(method, path), 404, param="file_id", text="file-nope")
        assert error["type"] == "invalid_request_error"


def test_list_parameters_are_checked(api: httpx.Client) -> None:
    assert_error(api.get("/files", params={"limit": 0}), 400, param="limit")
    assert_error(api.get("/files", params={"limit": 10001}), 400, param="limit")
    assert_error(api.get("/files", params={"order": "sideways"}), 400, param="order")
    assert_error(api.get("/files", params={"after": "file-never-existed"}), 400, param="after")


def test_list_pagination_fields(api: httpx.Client) -> None:
    ids = [
        api.post("/files", data={"purpose": "batch"}, files={"file": ("a", b"{}")}).json()["id"]
        for _ in range(5)
    ]
    page = api.get("/files", params={"limit": 2, "order": "asc"}).json()
    assert [f["id"] for f in page["data"]] == ids[:2]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[0], ids[1], True)
    # a cursor naming a deleted file still marks a place
    api.delete(f"/files/{ids[1]}")
    rest = api.get("/files", params={"order": "asc", "after": ids[1]}).json()
    assert [f["id"] for f in rest["data"]] == ids[2:] and rest["has_more"] is False
    empty = api.get("/files", params={"purpose": "vision"}).json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_file_status_uploaded_then_processed(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    small_limits.set_processing_delay(0.3)
    created = api.post("/files", data={"purpose": "batch"}, files={"file": ("a", b"{}")}).json()
    assert created["status"] == "uploaded"
    assert api.get(f"/files/{created['id']}").json()["status"] == "uploaded"
    time.sleep(0.35)
    assert api.get(f"/files/{created['id']}").json()["status"] == "processed"


def test_file_expires_at_its_expiry(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    created = api.post("/files", data={"purpose": "batch"}, files={"file": ("a", b"{}")}).json()
    small_limits.advance_clock(30 * 24 * 3600 + 1)
    assert_error(api.get(f"/files/{created['id']}"), 404, param="file_id")


def test_client_filename_never_used_on_disk(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    created = api.post(
        "/files", data={"purpose": "batch"}, files={"file": ("../../evil.jsonl", b"{}")}
    ).json()
    assert created["filename"] == "../../evil.jsonl"
    stored = [p.name for p in (small_limits.data_dir / "files").iterdir()]
    assert stored == [created["id"]]


# -- uploads ---------------------------------------------------------------------------------------


def test_create_upload_validation(api: httpx.Client) -> None:
    good = {"filename": "a.jsonl", "purpose": "batch", "bytes": 10, "mime_type": "text/jsonl"}
    assert_error(api.post("/uploads", json={**good, "purpose": "nonsense"}), 400, param="purpose")
    assert_error(
        api.post("/uploads", json={k: v for k, v in good.items() if k != "mime_type"}), 400, param="mime_type"
    )
    assert_error(api.post("/uploads", json={**good, "bytes": -1}), 400, param="bytes")
    assert_error(api.post("/uploads", json={**good, "extra": 1}), 400, param="extra", text="Unrecognized")
    assert_error(
        api.post("/uploads", content=b"{not json", headers={"content-type": "application/json"}), 400
    )


def test_oversize_upload_is_400(api: httpx.Client) -> None:
    response = api.post(
        "/uploads",
        json={
            "filename": "a.jsonl",
            "purpose": "batch",
            "bytes": MAX_UPLOAD_BYTES + 1,
            "mime_type": "text/jsonl",
        },
    )
    assert_error(response, 400, param="bytes", text=str(MAX_UPLOAD_BYTES))


def test_oversize_part_is_413(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    upload_id = create_upload(api, 1000)
    assert_error(add_part(api, upload_id, b"x" * (MAX_PART_BYTES + 1)), 413, param="data")
    assert small_limits.stats()["uploads"][upload_id]["part_count"] == 0
    assert list((small_limits.data_dir / "parts").iterdir()) == []
    assert add_part(api, upload_id, b"x" * MAX_PART_BYTES).status_code == 200


def test_parts_beyond_upload_limit_are_refused(api: httpx.Client) -> None:
    upload_id = create_upload(api, MAX_UPLOAD_BYTES)
    for _ in range(MAX_UPLOAD_BYTES // MAX_PART_BYTES):
        assert add_part(api, upload_id, b"x" * MAX_PART_BYTES).status_code == 200
    assert_error(add_part(api, upload_id, b"x"), 413, param="data", text=str(MAX_UPLOAD_BYTES))


def test_bytes_mismatch_is_400(api: httpx.Client) -> None:
    upload_id = create_upload(api, 10)
    part = add_part(api, upload_id, b"123456789").json()
    response = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part["id"]]})
    assert_error(response, 400, param="bytes", text="9 bytes")


def test_wrong_md5_is_400_and_upload_stays_pending(api: httpx.Client) -> None:
    upload_id = create_upload(api, 10)
    part = add_part(api, upload_id, b"0123456789").json()
    response = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part["id"]], "md5": "0" * 32})
    assert_error(response, 400, param="md5", text="md5")
    good = api.post(
        f"/uploads/{upload_id}/complete",
        json={"part_ids": [part["id"]], "md5": hashlib.md5(b"0123456789").hexdigest()},
    )
    assert good.status_code == 200 and good.json()["status"] == "completed"


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_part_ids_order_defines_the_file_and_md5(api: httpx.Client, order: tuple[int, ...]) -> None:
    chunks = [b"a" * 100, b"b" * 50, b"c" * 25]
    upload_id = create_upload(api, 175)
    ids = [add_part(api, upload_id, chunks[i]).json()["id"] for i in range(3)]
    expected = b"".join(chunks[i] for i in order)
    response = api.post(
        f"/uploads/{upload_id}/complete",
        json={"part_ids": [ids[i] for i in order], "md5": hashlib.md5(expected).hexdigest()},
    )
    assert response.status_code == 200, response.text
    assert api.get(f"/files/{response.json()['file']['id']}/content").content == expected


def test_unused_parts_are_not_in_the_file(api: httpx.Client) -> None:
    upload_id = create_upload(api, 4)
    keep = add_part(api, upload_id, b"keep").json()["id"]
    add_part(api, upload_id, b"duplicate-part")
    completed = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [keep]}).json()
    assert api.get(f"/files/{completed['file']['id']}/content").content == b"keep"


def test_completing_twice_is_400(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    upload_id = create_upload(api, 3)
    part_id = add_part(api, upload_id, b"abc").json()["id"]
    assert api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part_id]}).status_code == 200
    again = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part_id]})
    assert_error(again, 400, param="upload_id", text="completed")
    assert_error(add_part(api, upload_id, b"more"), 400, param="upload_id", text="completed")
    assert_error(api.post(f"/uploads/{upload_id}/cancel"), 400, param="upload_id")
    assert small_limits.stats()["file_count"] == 1


def test_cancelled_upload_refuses_parts_and_completion(api: httpx.Client) -> None:
    upload_id = create_upload(api, 3)
    part_id = add_part(api, upload_id, b"abc").json()["id"]
    assert api.post(f"/uploads/{upload_id}/cancel").json()["status"] == "cancelled"
    assert api.post(f"/uploads/{upload_id}/cancel").json()["status"] == "cancelled"  # idempotent
    assert_error(add_part(api, upload_id, b"abc"), 400, param="upload_id", text="cancelled")
    response = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part_id]})
    assert_error(response, 400, param="upload_id", text="cancelled")


def test_expired_upload_is_400(api: httpx.Client, small_limits: EmulatorHandle) -> None:
    upload_id = create_upload(api, 3)
    part_id = add_part(api, upload_id, b"abc").json()["id"]
    small_limits.advance_clock(3601)
    assert_error(add_part(api, upload_id, b"abc"), 400, param="upload_id", text="expired")
    response = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part_id]})
    assert_error(response, 400, param="upload_id", text="expired")
    assert small_limits.stats()["uploads"][upload_id]["status"] == "expired"


def test_upload_expiry_is_configurable(emulator_factory: Callable[..., EmulatorHandle]) -> None:
    handle = emulator_factory(upload_expiry_s=0.3)
    with httpx.Client(base_url=handle.base_url, headers={"Authorization": "Bearer k"}) as api:
        upload = api.post(
            "/uploads", json={"filename": "a", "purpose": "batch", "bytes": 1, "mime_type": "text/jsonl"}
        ).json()
        assert upload["expires_at"] - upload["created_at"] in (0, 1)
        time.sleep(0.4)
        assert_error(add_part(api, upload["id"], b"a"), 400, param="upload_id", text="expired")


def test_unknown_ids_in_uploads(api: httpx.Client) -> None:
    assert_error(add_part(api, "upload_nope", b"x"), 404, param="upload_id", text="upload_nope")
    assert_error(api.post("/uploads/upload_nope/complete", json={"part_ids": []}), 404, param="upload_id")
    assert_error(api.post("/uploads/upload_nope/cancel"), 404, param="upload_id")
    upload_id = create_upload(api, 1)
    other_upload = create_upload(api, 1)
    foreign_part = add_part(api, other_upload, b"x").json()["id"]
    for part_ids in (["part_nope"], [foreign_part]):
        response = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": part_ids})
        assert_error(response, 400, param="part_ids", text="does not belong")


def test_part_listed_twice_is_400(api: httpx.Client) -> None:
    upload_id = create_upload(api, 2)
    part_id = add_part(api, upload_id, b"x").json()["id"]
    response = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": [part_id, part_id]})
    assert_error(response, 400, param="part_ids", text="twice")


def test_part_without_data_field_is_400(api: httpx.Client) -> None:
    upload_id = create_upload(api, 2)
    assert_error(api.post(f"/uploads/{upload_id}/parts", files={"blob": ("b", b"xx")}), 400, param="blob")


def test_unknown_path_and_method(api: httpx.Client) -> None:
    assert api.get("/nothing-here").status_code == 404
    assert api.put("/files").status_code == 405
    assert api.get("/files/").status_code == 404  # OpenAI paths have no trailing slash


# -- batch validation ------------------------------------------------------------------------------

GOOD_LINE = b'{"custom_id": "%s", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}\n'


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (GOOD_LINE % b"a" + GOOD_LINE % b"a", "Line 2: custom_id 'a' is a duplicate"),
        (GOOD_LINE % b"a" + b"{not json}\n", "Line 2: not valid JSON"),
        (
            b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n',
            "Line 1: 'method'",
        ),
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/nope", "body": {}}\n', "Line 1: 'url'"),
        (
            GOOD_LINE % b"a"
            + b'{"custom_id": "b", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m"}}\n',
            "one endpoint per file",
        ),
        (b"", "no requests"),
    ],
)
def test_validate_batch_marks_bad_files_error(
    api: httpx.Client, small_limits: EmulatorHandle, payload: bytes, detail: str
) -> None:
    small_limits.configure(validate_batch=True)
    created = api.post("/files", data={"purpose": "batch"}, files={"file": ("a.jsonl", payload)}).json()
    deadline = time.monotonic() + 5
    while (current := api.get(f"/files/{created['id']}").json())["status"] == "uploaded":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert current["status"] == "error"
    assert detail in current["status_details"]


def test_validate_batch_accepts_good_upload_spanning_parts(
    api: httpx.Client, small_limits: EmulatorHandle
) -> None:
    small_limits.configure(validate_batch=True)
    payload = b"".join(GOOD_LINE % str(i).encode() for i in range(4))
    upload_id = create_upload(api, len(payload))
    cut = 137  # splits a line across parts
    ids = [
        add_part(api, upload_id, payload[:cut]).json()["id"],
        add_part(api, upload_id, payload[cut:]).json()["id"],
    ]
    file_id = api.post(f"/uploads/{upload_id}/complete", json={"part_ids": ids}).json()["file"]["id"]
    deadline = time.monotonic() + 5
    while (current := api.get(f"/files/{file_id}").json())["status"] == "uploaded":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert current["status"] == "processed" and current["status_details"] is None
