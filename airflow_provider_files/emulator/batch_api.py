"""The ``/batches`` routes: request checks and responses; the state lives in :mod:`.batches`."""

from __future__ import annotations

from starlette.responses import Response

from airflow_provider_files.emulator.batch_check import BATCH_URLS
from airflow_provider_files.emulator.batches import BatchStore
from airflow_provider_files.emulator.errors import bad_request
from airflow_provider_files.emulator.file_api import check_expires_after
from airflow_provider_files.emulator.http_io import RequestContext, json_response, read_json

CREATE_BATCH_FIELDS = frozenset(
    {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
)
COMPLETION_WINDOWS = frozenset({"24h"})
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100


def check_metadata(value: object) -> dict[str, str] | None:
    """``metadata`` as the API accepts it: up to 16 string pairs, keys <= 64, values <= 512 chars."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("metadata must be an object of string keys and values.", param="metadata")
    if len(value) > MAX_METADATA_PAIRS:
        raise bad_request(
            f"metadata has {len(value)} pairs; at most {MAX_METADATA_PAIRS} are allowed.", param="metadata"
        )
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_CHARS:
            raise bad_request(
                f"metadata key {key[:20]!r}... is longer than {MAX_METADATA_KEY_CHARS} characters.",
                param="metadata",
            )
        if not isinstance(item, str):
            raise bad_request(f"metadata value of {key!r} must be a string.", param="metadata")
        if len(item) > MAX_METADATA_VALUE_CHARS:
            raise bad_request(
                f"metadata value of {key!r} is longer than {MAX_METADATA_VALUE_CHARS} characters.",
                param="metadata",
            )
    return dict(value)


def check_output_expires_after(value: object) -> int | None:
    """The seconds of ``output_expires_after`` ({anchor: created_at, seconds: 3600..2592000})."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("output_expires_after must be an object.", param="output_expires_after")
    unknown = sorted(set(value) - {"anchor", "seconds"})
    if unknown:
        raise bad_request(
            f"Unrecognized argument in output_expires_after: {unknown[0]}", param="output_expires_after"
        )
    return check_expires_after(value.get("anchor"), value.get("seconds"), "output_expires_after")


class BatchRoutes:
    """Handlers of create, retrieve, list and cancel.

    :param batches: the batch store.
    """

    def __init__(self, batches: BatchStore) -> None:
        self.batches = batches

    async def create(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        body = await read_json(context, CREATE_BATCH_FIELDS)
        for name in ("input_file_id", "endpoint", "completion_window"):
            if body.get(name) is None:
                raise bad_request(f"Missing required parameter: '{name}'.", param=name)
        input_file_id = body["input_file_id"]
        if not isinstance(input_file_id, str) or not input_file_id:
            raise bad_request("input_file_id must be a non-empty string.", param="input_file_id")
        endpoint = body["endpoint"]
        accepted = context.flavour.batch_endpoints or BATCH_URLS
        if endpoint not in accepted:
            raise bad_request(
                f"Invalid value for 'endpoint': {endpoint!r}; must be one of {sorted(accepted)}.",
                param="endpoint",
            )
        window = body["completion_window"]
        if window not in COMPLETION_WINDOWS:
            raise bad_request(
                f"Invalid value for 'completion_window': {window!r}; only '24h' is supported.",
                param="completion_window",
            )
        metadata = check_metadata(body.get("metadata"))
        output_expires_after_s = check_output_expires_after(body.get("output_expires_after"))
        batch = self.batches.create(
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=window,
            metadata=metadata,
            output_expires_after_s=output_expires_after_s,
        )
        return json_response(self.batches.render(batch, await self.batches.refresh(batch)))

    async def retrieve(self, context: RequestContext, params: dict[str, str]) -> Response:
        batch = self.batches.get(params["batch_id"])
        return json_response(self.batches.render(batch, await self.batches.refresh(batch)))

    async def list(self, context: RequestContext, params: dict[str, str]) -> Response:
        query = context.query
        limit = DEFAULT_LIST_LIMIT
        if "limit" in query:
            try:
                limit = int(query["limit"])
            except ValueError:
                limit = 0
            if not 1 <= limit <= MAX_LIST_LIMIT:
                raise bad_request(f"limit must be an integer between 1 and {MAX_LIST_LIMIT}.", param="limit")
        page, has_more = self.batches.page(after=query.get("after") or None, limit=limit)
        data = [self.batches.render(batch, await self.batches.refresh(batch)) for batch in page]
        return json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }
        )

    async def cancel(self, context: RequestContext, params: dict[str, str]) -> Response:
        batch = self.batches.get(params["batch_id"])
        await read_json(context, frozenset())
        self.batches.cancel(batch)
        return json_response(self.batches.render(batch, await self.batches.refresh(batch)))
