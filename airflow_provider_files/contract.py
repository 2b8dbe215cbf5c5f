"""Facts of the API contract that both the HTTP layer (``api/``) and batch-file validation
(``jsonl/``) need. Standard library only: ``jsonl/`` imports it without pulling in httpx.
The emulator keeps its own copy on purpose (it is an independent implementation)."""

from __future__ import annotations

from typing import Final

#: The endpoints a batch can target (``CreateBatchRequest.endpoint``; the ``url`` of each line).
BATCH_ENDPOINTS: Final[frozenset[str]] = frozenset(
    {
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/moderations",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/videos",
    }
)
