"""Gateway flavours: thin adapters of paths, auth and response shapes over one core.

=================  =====================================  ============================================
flavour            path prefix                            differences from OpenAI
=================  =====================================  ============================================
``openai``         ``/v1``                                none; also takes Portkey headers
                                                          (``x-portkey-api-key`` + one of
                                                          ``x-portkey-provider``/``-virtual-key``/
                                                          ``-config``) and LiteLLM's
                                                          ``x-litellm-api-key``
``azure``          ``/openai`` (``?api-version=`` required) ``api-key`` header; ``POST /files`` answers
                                                          201 + ``Location``; a file being processed
                                                          reports ``pending``; list has no
                                                          pagination; parts carry ``azure_block_id``;
                                                          Microsoft-style error bodies
``azure_v1``       ``/openai/v1``                         ``api-key`` header or Bearer; OpenAI shapes
``respan``         ``/api`` (trailing slash required)     no uploads (``/api/uploads`` is 404);
                                                          ``purpose=batch`` only; list has no
                                                          pagination; 401 body is a plain string;
                                                          batches for ``/v1/chat/completions`` only
=================  =====================================  ============================================
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from airflow_provider_files.emulator.errors import ApiError

AZURE_ERROR_CODES = {
    400: "invalidPayload",
    401: "unauthorized",
    404: "notFound",
    413: "requestEntityTooLarge",
    429: "tooManyRequests",
}


class PortkeyHeaderError(Exception):
    """A Portkey-style request without a provider, virtual key or config header."""


@dataclass(frozen=True)
class Flavour:
    """How one gateway shapes the same API.

    :param name: ``openai``, ``azure``, ``azure_v1`` or ``respan``.
    :param prefix: the path prefix that selects it.
    :param trailing_slash: paths end with ``/`` (and must).
    :param files_only: no ``/uploads`` routes (``/batches`` are served by every flavour).
    :param purposes: accepted purposes for new files, or None for OpenAI's.
    :param paginates: ``GET /files`` honours limit/order/after and answers has_more/first_id/last_id.
    :param batch_endpoints: the batch ``endpoint`` values accepted, or None for OpenAI's.
    """

    name: str
    prefix: str
    trailing_slash: bool = False
    files_only: bool = False
    purposes: frozenset[str] | None = None
    paginates: bool = True
    batch_endpoints: frozenset[str] | None = None

    def render_error(self, error: ApiError) -> dict[str, object]:
        if self.name == "azure":
            code = error.code or AZURE_ERROR_CODES.get(error.status, "internalFailure")
            if error.status == 401:
                code = "401"
            return {
                "error": {
                    "code": code,
                    "message": error.message,
                    "target": error.param,
                    "details": [],
                    "type": error.error_type,
                }
            }
        if self.name == "respan" and error.status == 401:
            return {"error": "Authentication credentials were not provided."}
        return error.body()

    def file_status(self, status: str) -> str:
        if self.name == "azure" and status == "uploaded":
            return "pending"
        return status

    def authenticate(self, headers: dict[str, str], api_key: str | None) -> None:
        """Check the request's credentials as this flavour expects them.

        :raises ApiError: 401 when the key is missing or wrong.
        :raises PortkeyHeaderError: Portkey key present but no provider/config header.
        """
        presented: str | None = None
        portkey_key = headers.get("x-portkey-api-key")
        if portkey_key is not None and self.name == "openai":
            if not any(
                headers.get(name)
                for name in ("x-portkey-provider", "x-portkey-virtual-key", "x-portkey-config")
            ):
                raise PortkeyHeaderError
            presented = portkey_key
        else:
            bearer = _bearer(headers.get("authorization", ""))
            if self.name == "respan":
                presented = bearer
            elif self.name == "azure":
                presented = headers.get("api-key") or bearer
            else:
                presented = headers.get("x-litellm-api-key") or headers.get("api-key") or bearer
        if not presented:
            raise ApiError(
                401,
                "You didn't provide an API key. Provide it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
            )
        if api_key is not None and not hmac.compare_digest(presented.encode(), api_key.encode()):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


OPENAI = Flavour("openai", "/v1")
AZURE = Flavour(
    "azure",
    "/openai",
    purposes=frozenset({"fine-tune", "assistants", "batch"}),
    paginates=False,
)
AZURE_V1 = Flavour("azure_v1", "/openai/v1")
RESPAN = Flavour(
    "respan",
    "/api",
    trailing_slash=True,
    files_only=True,
    purposes=frozenset({"batch"}),
    paginates=False,
    batch_endpoints=frozenset({"/v1/chat/completions"}),
)

# longest prefix first
FLAVOURS = (AZURE_V1, AZURE, OPENAI, RESPAN)


def match_route(path: str) -> tuple[Flavour, str, dict[str, str]] | None:
    """The flavour, route name and path parameters of a request path, or None if nothing matches."""
    for flavour in FLAVOURS:
        if not path.startswith(flavour.prefix + "/"):
            continue
        rest = path[len(flavour.prefix) :]
        if flavour.trailing_slash:
            if not rest.endswith("/"):
                return None
            rest = rest[:-1]
        elif rest.endswith("/"):
            return None
        segments = rest.strip("/").split("/")
        route = _route(segments, flavour.files_only)
        if route is None:
            return None
        return flavour, route[0], route[1]
    return None


def _route(segments: list[str], files_only: bool) -> tuple[str, dict[str, str]] | None:
    if segments[0] == "files":
        if len(segments) == 1:
            return "files", {}
        if len(segments) == 2 and segments[1]:
            return "file", {"file_id": segments[1]}
        if len(segments) == 3 and segments[1] and segments[2] == "content":
            return "file_content", {"file_id": segments[1]}
        return None
    if segments[0] == "batches":
        if len(segments) == 1:
            return "batches", {}
        if len(segments) == 2 and segments[1]:
            return "batch", {"batch_id": segments[1]}
        if len(segments) == 3 and segments[1] and segments[2] == "cancel":
            return "cancel_batch", {"batch_id": segments[1]}
        return None
    if segments[0] == "uploads" and not files_only:
        if len(segments) == 1:
            return "create_upload", {}
        if len(segments) == 3 and segments[1]:
            action = {"parts": "add_part", "complete": "complete_upload", "cancel": "cancel_upload"}.get(
                segments[2]
            )
            if action is not None:
                return action, {"upload_id": segments[1]}
    return None
