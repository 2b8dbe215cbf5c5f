"""The ``/files`` and ``/uploads`` routes: request checks and responses over the :class:`.Store`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from airflow_provider_files.emulator.config import FILE_EXPIRY_MAX_S, FILE_EXPIRY_MIN_S
from airflow_provider_files.emulator.errors import bad_request
from airflow_provider_files.emulator.flavours import Flavour
from airflow_provider_files.emulator.http_io import (
    FileSink,
    RequestContext,
    body_chunks,
    json_response,
    read_json,
    read_multipart,
)
from airflow_provider_files.emulator.multipart import PartSink, TextSink
from airflow_provider_files.emulator.store import FILE_PURPOSES, UPLOAD_PURPOSES, Store

CONTENT_CHUNK_BYTES = 1024 * 1024
FILE_FIELDS = frozenset({"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"})
CREATE_UPLOAD_FIELDS = frozenset({"filename", "purpose", "bytes", "mime_type", "expires_after"})
COMPLETE_FIELDS = frozenset({"part_ids", "md5"})


def check_expires_after(anchor: object, seconds: object, param: str) -> int:
    """The seconds of an expiry policy {anchor: created_at, seconds: 3600..2592000}.

    The one check of files' ``expires_after`` (form fields or JSON) and batches'
    ``output_expires_after``; ``seconds`` may be an integer or its decimal text (form fields).

    :param param: the policy's parameter name, for the error.
    """
    if anchor != "created_at":
        raise bad_request(f"{param}.anchor must be 'created_at'.", param=f"{param}.anchor")
    value: int | None = None
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        value = seconds
    elif isinstance(seconds, str) and seconds.strip().isdigit():
        value = int(seconds)
    if value is None or not FILE_EXPIRY_MIN_S <= value <= FILE_EXPIRY_MAX_S:
        raise bad_request(
            f"{param}.seconds must be an integer between {FILE_EXPIRY_MIN_S} and {FILE_EXPIRY_MAX_S}.",
            param=f"{param}.seconds",
        )
    return value


class FileRoutes:
    """Handlers of the Files and Uploads operations.

    :param store: the files and uploads.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def _check_purpose(self, purpose: str | None, allowed: frozenset[str], flavour: Flavour) -> str:
        if purpose is None:
            raise bad_request("Missing required parameter: 'purpose'.", param="purpose")
        accepted = flavour.purposes if flavour.purposes is not None else allowed
        if purpose not in accepted:
            raise bad_request(
                f"Invalid value for 'purpose': {purpose!r}; must be one of {sorted(accepted)}.",
                param="purpose",
            )
        return purpose

    async def create_file(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        flavour = context.flavour
        file_id, path = self.store.new_file_slot()
        texts: dict[str, TextSink] = {}
        sink_holder: list[FileSink] = []
        filename_holder: list[str] = []

        def open_sink(name: str, filename: str | None, content_type: str | None) -> PartSink:
            if name not in FILE_FIELDS:
                raise bad_request(f"Unrecognized request argument supplied: {name}", param=name)
            if name in texts or (name == "file" and sink_holder):
                raise bad_request(f"The form field {name!r} is given more than once.", param=name)
            if name == "file":
                purpose_sink = texts.get("purpose")
                if purpose_sink is not None and purpose_sink.value is not None:
                    self._check_purpose(purpose_sink.value, FILE_PURPOSES, flavour)
                sink = FileSink(path, self.store.config.max_file_bytes, "file")
                sink_holder.append(sink)
                filename_holder.append(filename or "file")
                return sink
            text = TextSink(name)
            texts[name] = text
            return text

        try:
            await read_multipart(context, open_sink)
            if not sink_holder:
                raise bad_request("Missing required parameter: 'file'.", param="file")
            purpose = self._check_purpose(
                texts["purpose"].value if "purpose" in texts else None, FILE_PURPOSES, flavour
            )
            expires_after_s = None
            if "expires_after[anchor]" in texts or "expires_after[seconds]" in texts:
                expires_after_s = check_expires_after(
                    texts.get("expires_after[anchor]", TextSink("")).value,
                    texts.get("expires_after[seconds]", TextSink("")).value,
                    "expires_after",
                )
        except BaseException:
            for sink in sink_holder:
                sink.discard()
            self.store.release_slot(path)
            raise
        sink = sink_holder[0]
        stored = self.store.add_file(
            file_id,
            filename=filename_holder[0],
            purpose=purpose,
            size_bytes=sink.size_bytes,
            segments=[path],
            expires_after_s=expires_after_s,
        )
        headers = flavour.created_file_headers(self._root_url(context), stored.id, context.query)
        return json_response(
            self._file_object(stored.id, flavour), status=flavour.file_created_status, headers=headers
        )

    def _root_url(self, context: RequestContext) -> str:
        host = context.headers.get("host")
        if not host:
            server = context.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"http://{host}"

    def _file_object(self, file_id: str, flavour: Flavour) -> dict[str, object]:
        body = self.store.file_object(self.store.get_file(file_id))
        body["status"] = flavour.file_status(str(body["status"]))
        return body

    async def list_files(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        flavour = context.flavour
        query = context.query
        limit = 10_000
        order = "desc"
        after = None
        if flavour.paginates:
            if "limit" in query:
                try:
                    limit = int(query["limit"])
                except ValueError:
                    limit = 0
                if not 1 <= limit <= 10_000:
                    raise bad_request("limit must be an integer between 1 and 10000.", param="limit")
            order = query.get("order", "desc")
            if order not in ("asc", "desc"):
                raise bad_request("order must be 'asc' or 'desc'.", param="order")
            after = query.get("after") or None
        files, has_more = self.store.list_files(
            purpose=query.get("purpose") or None, limit=limit, order=order, after=after
        )
        data = [self._file_object(stored.id, flavour) for stored in files]
        body: dict[str, object] = {"object": "list", "data": data}
        if flavour.paginates:
            body.update(
                first_id=data[0]["id"] if data else None,
                last_id=data[-1]["id"] if data else None,
                has_more=has_more,
            )
        return json_response(body)

    async def retrieve_file(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        return json_response(self._file_object(params["file_id"], context.flavour))

    async def delete_file(self, context: RequestContext, params: dict[str, str]) -> Response:
        stored = self.store.delete_file(params["file_id"])
        return json_response({"id": stored.id, "object": "file", "deleted": True})

    async def file_content(self, context: RequestContext, params: dict[str, str]) -> Response:
        stored = self.store.get_file(params["file_id"])
        segments = list(stored.segments)

        async def content() -> AsyncIterator[bytes]:
            for segment in segments:
                with open(segment, "rb", buffering=0) as handle:
                    while block := handle.read(CONTENT_CHUNK_BYTES):
                        yield block

        return StreamingResponse(
            content(),
            media_type="application/octet-stream",
            headers={"content-length": str(stored.size_bytes)},
        )

    # -- uploads -------------------------------------------------------------------------------------

    async def create_upload(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        body = await read_json(context, CREATE_UPLOAD_FIELDS)
        for name in ("filename", "purpose", "bytes", "mime_type"):
            if name not in body:
                raise bad_request(f"Missing required parameter: '{name}'.", param=name)
        filename = body["filename"]
        if not isinstance(filename, str) or not filename:
            raise bad_request("filename must be a non-empty string.", param="filename")
        purpose = self._check_purpose(
            body["purpose"] if isinstance(body["purpose"], str) else repr(body["purpose"]),
            UPLOAD_PURPOSES,
            context.flavour,
        )
        size = body["bytes"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request("bytes must be a non-negative integer.", param="bytes")
        if size > self.store.config.max_upload_bytes:
            raise bad_request(
                f"bytes={size} exceeds the upload limit of {self.store.config.max_upload_bytes} bytes.",
                param="bytes",
            )
        mime_type = body["mime_type"]
        if not isinstance(mime_type, str) or not mime_type:
            raise bad_request("mime_type must be a non-empty string.", param="mime_type")
        expires_after_s = None
        if body.get("expires_after") is not None:
            policy = body["expires_after"]
            if not isinstance(policy, dict):
                raise bad_request("expires_after must be an object.", param="expires_after")
            expires_after_s = check_expires_after(
                policy.get("anchor"), policy.get("seconds"), "expires_after"
            )
        upload = self.store.create_upload(
            filename=filename,
            purpose=purpose,
            size_bytes=size,
            mime_type=mime_type,
            file_expires_after_s=expires_after_s,
        )
        return json_response(self._upload_object(upload.id, context.flavour))

    def _upload_object(self, upload_id: str, flavour: Flavour) -> dict[str, object]:
        body = self.store.upload_object(self.store.get_upload(upload_id))
        if isinstance(body["file"], dict):
            body["file"]["status"] = flavour.file_status(str(body["file"]["status"]))
        return body

    async def add_part(self, context: RequestContext, params: dict[str, str]) -> Response:
        upload = self.store.get_upload(params["upload_id"])
        attempt = self.store.begin_part(upload)
        sinks: list[FileSink] = []

        def open_sink(name: str, filename: str | None, content_type: str | None) -> PartSink:
            if name != "data":
                raise bad_request(f"Unrecognized request argument supplied: {name}", param=name)
            if sinks:
                raise bad_request("The form field 'data' is given more than once.", param="data")
            sink = FileSink(attempt.path, self.store.config.max_part_bytes, "data", on_write=attempt.wrote)
            sinks.append(sink)
            return sink

        try:
            await read_multipart(context, open_sink)
            if not sinks:
                raise bad_request("Missing required parameter: 'data'.", param="data")
        except BaseException:
            for sink in sinks:
                sink.discard()
            self.store.fail_part(attempt)
            raise
        part = self.store.finish_part(upload, attempt, sinks[0].size_bytes)
        body: dict[str, object] = {
            "id": part.id,
            "object": "upload.part",
            "created_at": part.created_at,
            "upload_id": upload.id,
        }
        assert context.flavour is not None
        body.update(context.flavour.part_fields(part.id))
        return json_response(body)

    async def complete_upload(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        upload = self.store.get_upload(params["upload_id"])
        body = await read_json(context, COMPLETE_FIELDS)
        part_ids = body.get("part_ids")
        if part_ids is None:
            raise bad_request("Missing required parameter: 'part_ids'.", param="part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise bad_request("part_ids must be an array of part id strings.", param="part_ids")
        md5 = body.get("md5")
        if md5 is not None and not isinstance(md5, str):
            raise bad_request("md5 must be a string.", param="md5")
        upload = self.store.get_upload(upload.id)  # re-check expiry after reading the body
        await self.store.complete_upload(upload, part_ids, md5)
        return json_response(self._upload_object(upload.id, context.flavour))

    async def cancel_upload(self, context: RequestContext, params: dict[str, str]) -> Response:
        assert context.flavour is not None
        upload = self.store.get_upload(params["upload_id"])
        async for _ in body_chunks(context):
            pass
        self.store.cancel_upload(upload)
        return json_response(self._upload_object(upload.id, context.flavour))
