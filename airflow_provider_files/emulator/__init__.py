"""A local, OpenAI-compatible Files, Uploads and Batches API server for tests and demos.

Run it with ``airflow-files emulator --port 8000`` (or ``python -m airflow_provider_files.emulator``),
from tests with :func:`airflow_provider_files.emulator.testing.run_emulator`, or through the pytest
fixtures of :mod:`airflow_provider_files.emulator.pytest_plugin`. It imports nothing from the rest
of the package: it is an independent implementation of the contract.

Modules: :mod:`.server` (the ASGI app: pipeline, throttling, faults, admin routes),
:mod:`.routing` (paths -> flavour and operation), :mod:`.http_io` (request context, body readers),
:mod:`.file_api` and :mod:`.batch_api` (the handlers), :mod:`.store` (files, uploads),
:mod:`.parts` (parts and their running md5), :mod:`.batches` (batches and their lifecycle),
:mod:`.batch_results` (fake results), :mod:`.batch_check` (the input-file check),
:mod:`.flavours` (OpenAI, Azure classic and v1, Respan; Portkey/LiteLLM headers),
:mod:`.faults` (fault spec), :mod:`.multipart` (streaming multipart on python-multipart),
:mod:`.protocol` (uvicorn's HTTP protocol with request heads bounded at 64 KiB: 431 beyond).

A server others point at: with ``--api-key`` the admin routes (``/_emulator/...`` but ``health``)
take the same key; ``POST /_emulator/reset`` deletes only the files and parts this process
created, never anything else in ``--data-dir``; ``POST /_emulator/config`` checks each setting's
type and range (400 naming it, nothing applied); a request line and headers over 64 KiB are
refused with 431 before they are held; ``complete`` racing ``cancel`` is a 400 (or 409), never a
500. ``complete`` with ``md5`` takes the md5 hashed while the parts arrived (in the order their
requests started, following a part while it is written) and re-reads parts only from the first
place where ``part_ids`` differs from that order; ``stats()`` reports both byte counts.

Batches (``POST/GET /batches``, ``GET /batches/{id}``, ``POST /batches/{id}/cancel``) run a real
lifecycle on the emulator's clock (see :mod:`.batches`), tuned by these options (also settable at
run time through ``POST /_emulator/config``):

``--batch-duration-s S``
    creation to ``completed`` (default 2): validating 10%, in_progress 80%, finalizing 10%;
    ``cancelling`` lasts 10% of it.
``--batch-request-error-rate F``, ``--batch-seed N``
    share of requests that land in the error file with 429 ``rate_limit_exceeded`` or 500
    ``server_error``, drawn per ``custom_id`` (same seed, same failures).
``--batch-expire-after-s S``
    a batch still running S seconds after creation is ``expired``: finished requests keep their
    results, the others are in the error file with ``batch_expired``.
``--batch-enqueued-token-limit TOKENS``
    per-model limit on the input tokens (line bytes / 4) of running batches; a batch over it
    fails validation with ``errors.data[0].code == "token_limit_exceeded"`` (as OpenAI and Azure
    report the enqueued-token quota), so clients can wait and create it again.

Where it differs from OpenAI on purpose (or because OpenAI's behaviour is not documented):

* Oversize bodies (file > ``max_file_bytes``, part > ``max_part_bytes``, parts beyond
  ``max_upload_bytes``) are refused with **413** as soon as the limit is crossed while streaming;
  a declared upload ``bytes`` above the limit is a 400 on ``param="bytes"``. Limits are binary
  (512 MiB, 8 GiB, 64 MiB), matching the SDK's 64 MiB part size.
* Error ``code`` is null except for ``invalid_api_key``, ``rate_limit_exceeded`` and
  ``insufficient_quota``; a missing key is a 401 with code null (as OpenAI); the messages never
  echo the key, not even masked.
* Cancelling an already cancelled upload returns it again (200); cancelling a completed or expired
  one is a 400.
* ``md5`` at completion is compared case-insensitively; parts not named in ``part_ids`` are
  discarded. There is no endpoint to read an upload back (as on OpenAI); tests use ``stats()``.
* File ``status`` is ``uploaded`` until ``processing_delay_s`` has passed (default 0: ``processed``
  at once), then ``processed``, or ``error`` with ``status_details`` naming the first bad line when
  ``--validate-batch`` is on (OpenAI only reports bad batch lines when a batch is created).
* ``purpose=batch`` files expire after 30 days unless ``expires_after`` says otherwise; expired
  files disappear lazily (404). An ``after`` cursor naming a deleted file still works.
* Purposes are OpenAI's six for both files and uploads (the spec lists four for uploads; the SDK six).
  ``mime_type`` must be a non-empty string but is not checked against the purpose.
* Batch validation error codes (``invalid_json_line``, ``duplicate_custom_id``,
  ``mismatched_endpoint``, ``mismatched_model``, ``invalid_url``, ...) are the emulator's own;
  up to 100 bad lines are reported. Result bodies are fake but shaped like the real endpoint's,
  with token figures estimated from the line size. Requests not reached before a cancel are in
  neither result file. A result file exists only when it has lines (else its id is null).
* Gateway flavours are approximations of documented behaviour (see :mod:`.flavours`).
"""
