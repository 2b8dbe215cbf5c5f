"""Gateway flavours: thin adapters of paths, auth and response shapes over one core.

=================  =====================================  ============================================
flavour            path prefix                            differences from OpenAI
=================  =====================================  ============================================
``openai``         ``/v1``                                none; also takes Portkey's headers (checked
                                                          as the Portkey gateway checks them, below)
                                                          and LiteLLM's ``x-litellm-api-key`` and
                                                          ``custom-llm-provider``
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

Portkey, on the ``openai`` flavour: a request with any ``x-portkey-*`` header stands for a request
to a Portkey gateway whose upstream is this emulator. As the gateway (1.15.2) checks it:

- one of ``x-portkey-provider`` or ``x-portkey-config`` is required (400 ``Either x-portkey-config
  or x-portkey-provider header is required``); a virtual key alone is refused like that;
- without ``x-portkey-api-key`` it is the self-hosted gateway: the provider must be a provider
  name (``@slug`` is 400 ``Invalid provider passed``), a config must be JSON naming a provider or
  targets, and the key checked is the upstream key in ``Authorization: Bearer`` (the gateway
  forwards it; ``x-portkey-api-key`` would be ignored);
- with ``x-portkey-api-key`` it is hosted Portkey: that is the key checked; ``@slug`` providers,
  virtual keys and config ids are taken; a raw provider name also needs the provider key in
  ``Authorization`` (401 without, as the upstream would answer ``Bearer undefined``).

LiteLLM, on the ``openai`` flavour: the key in ``x-litellm-api-key`` (or Bearer);
``custom-llm-provider`` must be a provider LiteLLM knows (another name is refused with the
proxy's own words, as a 400 where the proxy answers 500).

Differences kept on purpose: a wrong key is answered 401 before the gateway's 400s (the gateway
checks its headers first; either way the request is refused). Hosted Portkey also accepts a virtual key alone; the emulator
refuses it (as the self-hosted gateway does) so that it is never more lenient than either
gateway. ``x-portkey-custom-host`` is not followed (the emulator is the upstream itself), only
checked to be an http(s) URL without credentials. Neither gateway's paths for other routes,
its caching or its retries are emulated.
"""

from __future__ import annotations

import hmac
import json
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
    """A Portkey-style request the Portkey gateway refuses with 400 (the message is its text)."""


PORTKEY_ROUTING_MISSING = "Either x-portkey-config or x-portkey-provider header is required"
# Provider names the self-hosted gateway routes files and batches for (a subset of its list).
PORTKEY_PROVIDERS = frozenset({"openai", "azure-openai", "anthropic", "bedrock", "vertex-ai", "groq"})
# custom-llm-provider values LiteLLM's files routes know (others: "'x' is not a valid LlmProviders").
LITELLM_FILE_PROVIDERS = frozenset({"openai", "azure", "vertex_ai", "bedrock", "anthropic", "hosted_vllm"})


def _portkey_key(headers: dict[str, str]) -> tuple[str | None, Exception | None]:
    """The key a Portkey gateway in front of us would let through, and the refusal (a 400, or a
    401 as the upstream would answer) it would give instead, if any."""
    provider = headers.get("x-portkey-provider")
    config = headers.get("x-portkey-config")
    hosted_key = headers.get("x-portkey-api-key")
    upstream_key = _bearer(headers.get("authorization", ""))
    presented = hosted_key if hosted_key is not None else upstream_key
    if not provider and not config:
        return presented, PortkeyHeaderError(PORTKEY_ROUTING_MISSING)
    custom_host = headers.get("x-portkey-custom-host")
    if custom_host and (not custom_host.startswith(("http://", "https://")) or "@" in custom_host):
        return presented, PortkeyHeaderError("Invalid custom host")
    if hosted_key is not None:
        if provider and not provider.startswith("@") and not upstream_key:
            return presented, ApiError(401, "Incorrect API key provided: undefined.", code="invalid_api_key")
        return presented, None
    if provider and provider not in PORTKEY_PROVIDERS:
        return presented, PortkeyHeaderError("Invalid provider passed")
    if config and not provider:
        try:
            parsed = json.loads(config)
        except ValueError:
            return presented, PortkeyHeaderError("Invalid config passed. You need to pass a valid json")
        if not isinstance(parsed, dict) or not (parsed.get("provider") or parsed.get("targets")):
            return presented, PortkeyHeaderError(
                "Either x-portkey-provider needs to be passed. Or the x-portkey-config header should "
                "have a valid config with provider details in it."
            )
    return presented, None


@dataclass(frozen=True)
class Flavour:
    """How one gateway shapes the same API: every difference is an attribute here.

    :param name: ``openai``, ``azure``, ``azure_v1`` or ``respan`` (for logs and tests).
    :param prefix: the path prefix that selects it.
    :param trailing_slash: paths end with ``/`` (and must).
    :param files_only: no ``/uploads`` routes (``/batches`` are served by every flavour).
    :param purposes: accepted purposes for new files, or None for OpenAI's.
    :param paginates: ``GET /files`` honours limit/order/after and answers has_more/first_id/last_id.
    :param batch_endpoints: the batch ``endpoint`` values accepted, or None for OpenAI's.
    :param requires_api_version: every request needs ``?api-version=`` (400 without).
    :param file_created_status: status of ``POST /files``; 201 also sends a ``Location`` header.
    :param processing_status: the name of a file's status while it is being processed.
    :param part_block_id: upload parts carry ``azure_block_id``.
    :param microsoft_errors: error bodies in the Microsoft REST shape (``code``, ``target``...).
    :param unauthenticated_body: a plain body for 401s instead of the error object, if any.
    :param key_headers: headers that carry the key, tried in order before ``Authorization: Bearer``.
    :param portkey_headers: requests with ``x-portkey-*`` headers are checked as a Portkey gateway
        would check them (see the module docstring).
    :param litellm_headers: ``custom-llm-provider`` is checked as the LiteLLM proxy checks it.
    """

    name: str
    prefix: str
    trailing_slash: bool = False
    files_only: bool = False
    purposes: frozenset[str] | None = None
    paginates: bool = True
    batch_endpoints: frozenset[str] | None = None
    requires_api_version: bool = False
    file_created_status: int = 200
    processing_status: str = "uploaded"
    part_block_id: bool = False
    microsoft_errors: bool = False
    unauthenticated_body: object = None
    key_headers: tuple[str, ...] = ("x-litellm-api-key", "api-key")
    portkey_headers: bool = False
    litellm_headers: bool = False

    def render_error(self, error: ApiError) -> object:
        if self.microsoft_errors:
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
        if self.unauthenticated_body is not None and error.status == 401:
            return self.unauthenticated_body
        return error.body()

    def file_status(self, status: str) -> str:
        return self.processing_status if status == "uploaded" else status

    def check_query(self, query: dict[str, str]) -> None:
        """:raises ApiError: 400 when a required query parameter is missing."""
        if self.requires_api_version and "api-version" not in query:
            raise ApiError(
                400,
                "The api-version query parameter (?api-version=) is required for all requests.",
                code="MissingApiVersionParameter",
            )

    def created_file_headers(self, root_url: str, file_id: str, query: dict[str, str]) -> dict[str, str]:
        """Headers of a ``POST /files`` answer (a ``Location`` when it is a 201)."""
        if self.file_created_status != 201:
            return {}
        location = f"{root_url}{self.prefix}/files/{file_id}"
        if "api-version" in query:
            location += f"?api-version={query['api-version']}"
        return {"location": location}

    def part_fields(self, part_id: str) -> dict[str, object]:
        """Extra fields of an upload part object."""
        return {"azure_block_id": part_id.removeprefix("part_")} if self.part_block_id else {}

    def authenticate(self, headers: dict[str, str], api_key: str | None) -> None:
        """Check the request's credentials as this flavour expects them.

        :raises ApiError: 401 when the key is missing or wrong.
        :raises PortkeyHeaderError: Portkey key present but no provider/config header.
        """
        presented: str | None = None
        refusal: Exception | None = None
        if self.portkey_headers and any(name.startswith("x-portkey-") for name in headers):
            presented, refusal = _portkey_key(headers)
        else:
            llm_provider = headers.get("custom-llm-provider")
            if (
                self.litellm_headers
                and llm_provider is not None
                and llm_provider not in LITELLM_FILE_PROVIDERS
            ):
                raise ApiError(400, f"{llm_provider!r} is not a valid LlmProviders", code="400")
            for name in self.key_headers:
                presented = presented or headers.get(name)
            presented = presented or _bearer(headers.get("authorization", ""))
        if not presented:
            raise ApiError(
                401,
                "You didn't provide an API key. Provide it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
            )
        if api_key is not None and not hmac.compare_digest(presented.encode(), api_key.encode()):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        if refusal is not None:
            raise refusal


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


OPENAI = Flavour("openai", "/v1", portkey_headers=True, litellm_headers=True)
AZURE = Flavour(
    "azure",
    "/openai",
    purposes=frozenset({"fine-tune", "assistants", "batch"}),
    paginates=False,
    requires_api_version=True,
    file_created_status=201,
    processing_status="pending",
    part_block_id=True,
    microsoft_errors=True,
    key_headers=("api-key",),
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
    unauthenticated_body={"error": "Authentication credentials were not provided."},
    key_headers=(),
)

# longest prefix first
FLAVOURS = (AZURE_V1, AZURE, OPENAI, RESPAN)
