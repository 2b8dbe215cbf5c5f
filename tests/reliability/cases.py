"""The bad-input corpus: each case is an input that must fail, the words its error must contain,
and (for JSONL) the line number it must name. Nothing may reach the server for any of them.

Files live in ``tests/reliability/bad_inputs/``; a few large inputs are generated at run time
(``generate``). ``bench/reliability/badinput.py`` runs every case; the ``quick`` ones also run in
``make test`` (``tests/reliability/test_bad_inputs.py``).

Fields:

``operator``
    ``jsonl`` (UploadJsonlOperator) or ``chunked`` (ChunkedUploadOperator).
``stage``
    ``init``: the operator's constructor must refuse the arguments (DAG parse time);
    ``execute``: ``execute()`` must fail; ``any``: either.
``connection``
    which connection the task uses (see ``CONNECTIONS`` in the runner): ``good``, ``missing``,
    ``wrong_key``, ``http_remote``, ``unknown_gateway``, ``bad_headers``, ``credentials_in_url``,
    ``respan``, ``azure_no_host``.
``source``
    a file name in ``bad_inputs/``, ``"<missing>"`` (a path that does not exist), ``"<dir>"`` (a
    folder), a URL, or a generated file name.
``expect``
    fragments that must all appear (case-insensitively) in the exception text.
``line``
    for JSONL errors, the line the message must name (``line N``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BAD_INPUTS_DIR = Path(__file__).resolve().parent / "bad_inputs"
MISSING = "<missing>"
DIRECTORY = "<dir>"


@dataclass(frozen=True)
class BadInputCase:
    """One input that must be refused.

    :param name: unique id.
    :param cause: what is wrong, in words (for the report).
    :param source: input file (see the module docstring).
    :param expect: fragments the error text must contain.
    :param line: line number the message must name, for JSONL errors.
    :param operator: ``jsonl`` or ``chunked``.
    :param stage: ``init`` or ``execute``.
    :param connection: connection kind.
    :param kwargs: extra operator arguments.
    :param generate: for large inputs: writes the file given its path.
    :param quick: part of the fast subset run by ``make test``.
    """

    name: str
    cause: str
    source: str
    expect: tuple[str, ...]
    line: int | None = None
    operator: str = "jsonl"
    stage: str = "execute"
    connection: str = "good"
    kwargs: dict[str, Any] = field(default_factory=dict)
    generate: Callable[[Path], None] | None = None
    quick: bool = True


def _request(custom_id: str) -> str:
    return (
        f'{{"custom_id": "{custom_id}", "method": "POST", "url": "/v1/chat/completions", '
        f'"body": {{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "hi"}}]}}}}\n'
    )


def _many_lines(count: int, bad_at: int | None = None) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            for number in range(1, count + 1):
                handle.write("{not json\n" if number == bad_at else _request(f"r{number}"))

    return write


def _bytes_over(limit_bytes: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        padding = "x" * 9000
        with open(path, "w", encoding="utf-8") as handle:
            written = 0
            number = 0
            while written <= limit_bytes:
                number += 1
                line = (
                    f'{{"custom_id": "r{number}", "method": "POST", "url": "/v1/chat/completions", '
                    f'"body": {{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "{padding}"}}]}}}}\n'
                )
                handle.write(line)
                written += len(line)

    return write


def _long_line(content_chars: int) -> Callable[[Path], None]:
    """Three requests; the second carries ``content_chars`` characters of content."""

    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(_request("r1"))
            handle.write(_request("r2").replace('"content": "hi"', f'"content": "{"x" * content_chars}"'))
            handle.write(_request("r3"))

    return write


def _line_of_byte_limit(path: Path, limit_bytes: int) -> int:
    """The number of the first line that ends beyond ``limit_bytes`` (used by the runner)."""
    total = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            total += len(line)
            if total > limit_bytes:
                return number
    raise ValueError("file is within the limit")


CASES: list[BadInputCase] = [
    # -- JSONL content -----------------------------------------------------------------------------
    BadInputCase("malformed_json", "truncated JSON object", "malformed_json.jsonl", ("invalid_json",), 2),
    BadInputCase(
        "trailing_comma", "trailing comma in an object", "trailing_comma.jsonl", ("invalid_json",), 3
    ),
    BadInputCase("single_quotes", "Python-style quotes", "single_quotes.jsonl", ("invalid_json",), 2),
    BadInputCase("non_utf8", "Latin-1 byte in a line", "non_utf8.jsonl", ("utf-8",), 2),
    BadInputCase("utf8_bom", "file starts with a UTF-8 BOM", "utf8_bom.jsonl", ("byte order mark",), 1),
    BadInputCase(
        "crlf_duplicate_custom_id",
        "CRLF line endings (accepted) with a duplicate custom_id: line numbers still right",
        "crlf_duplicate_custom_id.jsonl",
        ("duplicate custom_id", "first seen on line 1"),
        3,
    ),
    BadInputCase(
        "cr_only_line_endings",
        "old Mac CR-only line endings: the file is one line of three objects",
        "cr_only_line_endings.jsonl",
        ("invalid_json",),
        1,
    ),
    BadInputCase(
        "duplicate_custom_id",
        "custom_id used twice",
        "duplicate_custom_id.jsonl",
        ("duplicate custom_id",),
        3,
    ),
    BadInputCase(
        "missing_custom_id", "no custom_id", "missing_custom_id.jsonl", ("custom_id is missing",), 2
    ),
    BadInputCase("empty_custom_id", "custom_id is empty", "empty_custom_id.jsonl", ("custom_id must be",), 2),
    BadInputCase(
        "numeric_custom_id", "custom_id is a number", "numeric_custom_id.jsonl", ("custom_id must be",), 3
    ),
    BadInputCase("wrong_method", "method GET", "wrong_method.jsonl", ("method", "POST"), 1),
    BadInputCase("missing_method", "no method", "missing_method.jsonl", ("method is missing",), 3),
    BadInputCase("wrong_url", "url is not a batch endpoint", "wrong_url.jsonl", ("not a batch endpoint",), 1),
    BadInputCase(
        "url_without_v1", "url lacks the /v1 prefix", "url_without_v1.jsonl", ("not a batch endpoint",), 2
    ),
    BadInputCase("missing_url", "no url", "missing_url.jsonl", ("url is missing",), 2),
    BadInputCase(
        "mixed_endpoints", "two endpoints in one file", "mixed_endpoints.jsonl", ("one endpoint",), 2
    ),
    BadInputCase("mixed_models", "two models in one file", "mixed_models.jsonl", ("one model",), 3),
    BadInputCase(
        "missing_model", "chat request without a model", "missing_model.jsonl", ("model is missing",), 2
    ),
    BadInputCase("bad_model_type", "model is a number", "bad_model_type.jsonl", ("model must be",), 2),
    BadInputCase("body_not_object", "body is a string", "body_not_object.jsonl", ("body is a json str",), 3),
    BadInputCase("missing_body", "no body", "missing_body.jsonl", ("body is missing",), 1),
    BadInputCase("array_line", "a line is a JSON array", "array_line.jsonl", ("not an object",), 2),
    BadInputCase("string_line", "a line is a JSON string", "string_line.jsonl", ("not an object",), 4),
    BadInputCase(
        "blank_line_middle", "blank line between requests", "blank_line_middle.jsonl", ("blank line",), 2
    ),
    BadInputCase("empty_file", "zero bytes", "empty_file.jsonl", ("file is empty",)),
    BadInputCase("only_blank_lines", "only newlines", "only_blank_lines.jsonl", ("no requests",)),
    BadInputCase(
        "too_many_lines",
        "more lines than the configured limit",
        "too_many_lines.jsonl",
        ("more than the limit of 3",),
        4,
        kwargs={"limits": {"max_lines": 3}},
    ),
    BadInputCase(
        "too_many_bytes",
        "more bytes than the configured limit",
        "too_many_bytes.jsonl",
        ("more than the limit of 300",),
        -1,  # computed by the runner
        kwargs={"limits": {"max_bytes": 300}},
    ),
    BadInputCase(
        "moderation_missing_input",
        "moderation request without input",
        "moderation_missing_input.jsonl",
        ("body.input is missing",),
        1,
    ),
    BadInputCase(
        "moderation_stream", "stream=true in a batch", "moderation_stream.jsonl", ("stream=true",), 1
    ),
    BadInputCase(
        "bad_line_deep_in_file",
        "one malformed line among 5,000 good ones",
        "generated_bad_line_4321.jsonl",
        ("invalid_json",),
        4321,
        generate=_many_lines(5000, bad_at=4321),
    ),
    BadInputCase(
        "too_many_lines_default_limit",
        "50,001 requests: one over the Batch API's limit",
        "generated_50001_lines.jsonl",
        ("more than the limit of 50,000",),
        50_001,
        generate=_many_lines(50_001),
        quick=False,
    ),
    BadInputCase(
        "too_many_bytes_default_limit",
        "just over 200,000,000 bytes: over the Batch API's size limit",
        "generated_200mb.jsonl",
        ("more than the limit of 200,000,000",),
        -1,  # computed by the runner from the generated file
        generate=_bytes_over(200_000_000),
        quick=False,
    ),
    BadInputCase(
        "line_over_line_cap",
        "one line longer than the configured longest request: refused before it is held whole",
        "generated_long_line_5000.jsonl",
        ("line_too_long", "longer than 2,000 bytes"),
        2,
        kwargs={"limits": {"max_line_bytes": 2000}},
        generate=_long_line(5000),
    ),
    BadInputCase(
        "line_over_default_line_cap",
        "one 70 MB line: longer than any request the API takes (64 MiB cap), memory stays bounded",
        "generated_long_line_70mb.jsonl",
        ("line_too_long", "longer than 67,108,864 bytes"),
        2,
        generate=_long_line(70_000_000),
        quick=False,
    ),
    BadInputCase(
        "split_with_bad_line",
        "split=True does not skip validation",
        "duplicate_custom_id.jsonl",
        ("duplicate custom_id",),
        3,
        kwargs={"split": True, "max_lines": 2},
    ),
    BadInputCase(
        "chunked_path_bad_line",
        "a large file (Uploads API path) is validated too",
        "mixed_models.jsonl",
        ("one model",),
        3,
        kwargs={"single_request_max_bytes": 0},
    ),
    # -- sources -------------------------------------------------------------------------------------
    BadInputCase("missing_file", "source path does not exist", MISSING, ("not found", "no-such-file.jsonl")),
    BadInputCase("source_is_directory", "source is a folder", DIRECTORY, ("director",)),
    BadInputCase(
        "missing_object_storage_object",
        "object-storage URL with no object behind it",
        "file:///nonexistent-reliability-bucket/no-such-object.jsonl",
        ("not found", "no-such-object.jsonl"),
    ),
    BadInputCase(
        "unreadable_object_storage_scheme",
        "object-storage URL whose filesystem is not installed or configured",
        # gs://: no provider serves it in the dev environment (the Amazon provider is installed there)
        "gs://google_cloud_default@reliability-bucket/requests.jsonl",
        ("gs://google_cloud_default@reliability-bucket/requests.jsonl", "apache-airflow-providers-google"),
    ),
    BadInputCase(
        "object_storage_scheme_needs_attach",
        "object-storage URL whose fsspec filesystem no provider registers with Airflow",
        "ftp://reliability-host/requests.jsonl",
        ("ftp://reliability-host/requests.jsonl", 'attach("ftp"'),
    ),
    BadInputCase(
        "chunked_missing_file",
        "chunked upload of a missing file",
        MISSING,
        ("not found",),
        operator="chunked",
    ),
    BadInputCase(
        "chunked_empty_file",
        "chunked upload of an empty file",
        "empty_file.jsonl",
        ("empty",),
        operator="chunked",
    ),
    # -- connections ---------------------------------------------------------------------------------
    BadInputCase(
        "missing_connection",
        "connection id not defined",
        "valid_small.jsonl",
        ("reliability_no_such_conn",),
        connection="missing",
    ),
    BadInputCase(
        "wrong_key",
        "API key rejected (401)",
        "valid_small.jsonl",
        ("401", "api key"),
        connection="wrong_key",
    ),
    BadInputCase(
        "wrong_key_chunked",
        "API key rejected (401), Uploads API path",
        "valid_small.jsonl",
        ("401", "api key"),
        operator="chunked",
        connection="wrong_key",
        kwargs={"part_size_bytes": 64 * 1024},
    ),
    BadInputCase(
        "http_remote_host",
        "plain http:// to a non-loopback host",
        "valid_small.jsonl",
        ("clear text", "http://"),
        connection="http_remote",
    ),
    BadInputCase(
        "unknown_gateway",
        "gateway extra not known",
        "valid_small.jsonl",
        ("unknown gateway",),
        connection="unknown_gateway",
    ),
    BadInputCase(
        "bad_headers_json",
        "headers extra is not JSON",
        "valid_small.jsonl",
        ("headers", "not valid json"),
        connection="bad_headers",
    ),
    BadInputCase(
        "credentials_in_url",
        "user:password in the base URL",
        "valid_small.jsonl",
        ("must not carry credentials",),
        connection="credentials_in_url",
    ),
    BadInputCase(
        "uploads_unsupported_gateway",
        "chunked upload through a gateway without the Uploads API (Respan)",
        "valid_small.jsonl",
        ("uploads api is not supported", "respan"),
        operator="chunked",
        connection="respan",
        kwargs={"part_size_bytes": 64 * 1024},
    ),
    BadInputCase(
        "azure_without_host",
        "Azure gateway with no endpoint",
        "valid_small.jsonl",
        ("needs a base url",),
        connection="azure_no_host",
    ),
    # -- purposes and settings -----------------------------------------------------------------------
    BadInputCase(
        "wrong_purpose",
        "purpose not known to the API (may be refused when the DAG is parsed or when the task runs)",
        "valid_small.jsonl",
        ("purpose", "batches"),
        stage="any",
        kwargs={"purpose": "batches"},
    ),
    BadInputCase(
        "wrong_purpose_chunked",
        "purpose not known to the API, Uploads API path",
        "valid_small.jsonl",
        ("purpose", "fine_tune"),
        operator="chunked",
        kwargs={"purpose": "fine_tune", "part_size_bytes": 64 * 1024},
    ),
    BadInputCase(
        "empty_purpose",
        "purpose is empty",
        "valid_small.jsonl",
        ("purpose",),
        stage="init",
        kwargs={"purpose": ""},
    ),
    BadInputCase(
        "oversized_part_size",
        "part size above the API's 64 MiB",
        "valid_small.jsonl",
        ("part_size_bytes", "64 mib"),
        operator="chunked",
        stage="init",
        kwargs={"part_size_bytes": 128 * 1024 * 1024},
    ),
    BadInputCase(
        "undersized_part_size",
        "part size below 64 KiB",
        "valid_small.jsonl",
        ("part_size_bytes",),
        operator="chunked",
        stage="init",
        kwargs={"part_size_bytes": 1000},
    ),
    BadInputCase(
        "zero_concurrency",
        "concurrency 0",
        "valid_small.jsonl",
        ("concurrency",),
        stage="init",
        kwargs={"concurrency": 0},
    ),
    BadInputCase(
        "short_expiry",
        "expires_after_s below one hour",
        "valid_small.jsonl",
        ("expires_after_s",),
        stage="init",
        kwargs={"expires_after_s": 60},
    ),
    BadInputCase(
        "single_request_over_512mb",
        "single-request threshold above POST /files' 512 MB",
        "valid_small.jsonl",
        ("single_request_max_bytes",),
        stage="init",
        kwargs={"single_request_max_bytes": 1024 * 1024 * 1024},
    ),
    BadInputCase(
        "shard_limits_without_split",
        "max_lines given without split=True",
        "valid_small.jsonl",
        ("split=true",),
        stage="init",
        kwargs={"max_lines": 10},
    ),
]


def case_by_name(name: str) -> BadInputCase:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(name)
