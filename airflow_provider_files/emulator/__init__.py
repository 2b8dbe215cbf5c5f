"""A local, OpenAI-compatible Files and Uploads API server for tests and demos.

Run it with ``airflow-files emulator --port 8000`` (or ``python -m airflow_provider_files.emulator``),
from tests with :func:`airflow_provider_files.emulator.testing.run_emulator`, or through the pytest
fixtures of :mod:`airflow_provider_files.emulator.pytest_plugin`. It imports nothing from the rest
of the package: it is an independent implementation of the contract.

Modules: :mod:`.server` (the ASGI app), :mod:`.store` (files, uploads, parts),
:mod:`.flavours` (OpenAI, Azure classic and v1, Respan; Portkey/LiteLLM headers),
:mod:`.faults` (fault spec), :mod:`.multipart` (streaming parser), :mod:`.batch_check`.

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
* Gateway flavours are approximations of documented behaviour (see :mod:`.flavours`).
"""
