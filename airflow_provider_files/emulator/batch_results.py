"""Deterministic fake results of batch requests, and the result-file lines that carry them.

Everything a result says is derived from the request's ``custom_id`` and size (and the batch's
seed for the error draw), so the same input gives the same bodies, tokens and errors on every run.
Token figures are estimates: input = line bytes / 4, cached = half the input, output = 8..39 or
the request's ``max_tokens`` (then the answer text is about 4 characters per output token, which
lets a bench make result files of a chosen size).
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

from airflow_provider_files.emulator.batch_check import RequestSummary

EMBEDDING_DIMENSIONS = 8
BYTES_PER_TOKEN = 4
MIN_OUTPUT_TOKENS = 8
OUTPUT_TOKENS_SPREAD = 32
MAX_FAKE_OUTPUT_TOKENS = 65_536
# A retryable error per request: (HTTP status, error code, type, message).
RETRYABLE_ERRORS = (
    (429, "rate_limit_exceeded", "requests", "Rate limit reached for requests (emulated)."),
    (500, "server_error", "server_error", "The server had an error while processing your request."),
)
MODERATION_CATEGORIES = ("harassment", "hate", "self-harm", "sexual", "violence")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def _fraction(digest: bytes) -> float:
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Usage:
    """Token figures of one request (or a sum of them)."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_tokens + other.cached_tokens,
            self.output_tokens + other.output_tokens,
        )

    def completion_usage(self) -> dict[str, object]:
        """The ``usage`` object of a chat completion or a completion."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def batch_usage(self) -> dict[str, object]:
        """The ``usage`` object of a Batch (also the Responses API's shape)."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.total_tokens,
        }


def input_tokens(request: RequestSummary) -> int:
    """The (estimated) prompt tokens of a request; also what it enqueues."""
    return max(1, request.size_bytes // BYTES_PER_TOKEN)


def request_usage(request: RequestSummary, endpoint: str) -> Usage:
    prompt = input_tokens(request)
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        return Usage(prompt, 0, 0)
    if request.max_output_tokens is not None:
        output = min(request.max_output_tokens, MAX_FAKE_OUTPUT_TOKENS)
    else:
        output = MIN_OUTPUT_TOKENS + _digest("output", request.custom_id)[0] % OUTPUT_TOKENS_SPREAD
    return Usage(prompt, prompt // 2, output)


def answer_text(model: str, custom_id: str, output_tokens: int) -> str:
    """The fake answer: names the model and the request, padded to ``output_tokens`` when long."""
    text = f"Emulated reply from {model} to request {custom_id}."
    wanted_chars = output_tokens * BYTES_PER_TOKEN
    if len(text) < wanted_chars:
        filler = " lorem ipsum"
        text += (filler * (wanted_chars // len(filler) + 1))[: wanted_chars - len(text)]
    return text


def request_error(custom_id: str, rate: float, seed: int) -> tuple[int, str, str, str] | None:
    """The retryable error this request ends with, or None; drawn per ``custom_id`` from ``seed``."""
    if rate <= 0:
        return None
    digest = _digest(str(seed), custom_id)
    if _fraction(digest) >= rate:
        return None
    return RETRYABLE_ERRORS[digest[8] % len(RETRYABLE_ERRORS)]


def embedding(custom_id: str, index: int) -> list[float]:
    """A small unit vector derived from ``custom_id`` and the input's index."""
    raw = struct.unpack(f">{EMBEDDING_DIMENSIONS}I", _digest("embedding", custom_id, str(index))[:32])
    values = [value / 2**31 - 1.0 for value in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def _hex_id(prefix: str, *parts: str) -> str:
    return prefix + _digest(*parts).hex()[:24]


def response_body(
    request: RequestSummary, endpoint: str, model: str | None, created_at: int
) -> dict[str, object]:
    """The fake ``response.body`` of a successful request to ``endpoint``."""
    custom_id = request.custom_id
    model_name = model or "emulated-model"
    usage = request_usage(request, endpoint)
    text = answer_text(model_name, custom_id, usage.output_tokens if request.max_output_tokens else 0)
    if endpoint == "/v1/chat/completions":
        return {
            "id": _hex_id("chatcmpl-", custom_id),
            "object": "chat.completion",
            "created": created_at,
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage.completion_usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }
    if endpoint == "/v1/responses":
        return {
            "id": _hex_id("resp_", custom_id),
            "object": "response",
            "created_at": created_at,
            "status": "completed",
            "model": model_name,
            "output": [
                {
                    "type": "message",
                    "id": _hex_id("msg_", custom_id),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": usage.batch_usage(),
        }
    if endpoint == "/v1/embeddings":
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": embedding(custom_id, index)}
                for index in range(request.input_count)
            ],
            "model": model_name,
            "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
        }
    if endpoint == "/v1/completions":
        return {
            "id": _hex_id("cmpl-", custom_id),
            "object": "text_completion",
            "created": created_at,
            "model": model_name,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage.completion_usage(),
        }
    if endpoint == "/v1/moderations":
        return {
            "id": _hex_id("modr-", custom_id),
            "model": model_name,
            "results": [
                {
                    "flagged": False,
                    "categories": {name: False for name in MODERATION_CATEGORIES},
                    "category_scores": {name: 0.0 for name in MODERATION_CATEGORIES},
                }
                for _ in range(request.input_count)
            ],
        }
    if endpoint == "/v1/videos":
        return {
            "id": _hex_id("video_", custom_id),
            "object": "video",
            "status": "completed",
            "model": model_name,
        }
    return {  # images
        "created": created_at,
        "data": [{"url": f"https://emulator.invalid/images/{_hex_id('img_', custom_id)}.png"}],
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
    }


def output_line(
    batch_id: str, request: RequestSummary, endpoint: str, model: str | None, created_at: int
) -> dict[str, object]:
    """A line of the output file: the request succeeded."""
    return {
        "id": _hex_id("batch_req_", batch_id, request.custom_id),
        "custom_id": request.custom_id,
        "response": {
            "status_code": 200,
            "request_id": _hex_id("req_", batch_id, request.custom_id),
            "body": response_body(request, endpoint, model, created_at),
        },
        "error": None,
    }


def failed_line(batch_id: str, custom_id: str, failure: tuple[int, str, str, str]) -> dict[str, object]:
    """A line of the error file for a request that got an HTTP error."""
    status, code, error_type, message = failure
    return {
        "id": _hex_id("batch_req_", batch_id, custom_id),
        "custom_id": custom_id,
        "response": {
            "status_code": status,
            "request_id": _hex_id("req_", batch_id, custom_id),
            "body": {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        },
        "error": {"code": code, "message": message},
    }


def expired_line(batch_id: str, custom_id: str) -> dict[str, object]:
    """A line of the error file for a request the batch did not reach before it expired."""
    return {
        "id": _hex_id("batch_req_", batch_id, custom_id),
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }
