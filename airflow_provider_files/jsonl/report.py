"""The outcome of validating a batch file: limits, errors, the report and its exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from airflow_provider_files.contract import BATCH_ENDPOINTS

#: Endpoints whose request body has no server-side default model.
MODEL_REQUIRED_ENDPOINTS: Final[frozenset[str]] = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
)
MODERATIONS_ENDPOINT: Final = "/v1/moderations"
DEFAULT_MAX_LINES: Final = 50_000
DEFAULT_MAX_BYTES: Final = 200_000_000
DEFAULT_MAX_ERRORS: Final = 20
#: The longest line (one request) read whole. The contract sets no size per request, only 200 MB
#: per file; this cap is a generous bound for one request (inline images and files included) that
#: keeps memory bounded: parsing a line costs about three times its size, and a longer line is
#: refused before it is held. Settable with :attr:`BatchLimits.max_line_bytes` (``--max-line-bytes``).
DEFAULT_MAX_LINE_BYTES: Final = 64 * 1024 * 1024
EXCERPT_MAX_CHARS: Final = 80
UTF8_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class BatchLimits:
    """Limits a batch file must stay within.

    :param max_lines: most requests (lines) in one file; ``None`` for no limit.
    :param max_bytes: largest file size in bytes; ``None`` for no limit.
    :param endpoints: the ``url`` values accepted on a line.
    :param max_line_bytes: the longest line (one request) in bytes; a longer line is refused
        before it is held whole, and reading stops there.
    """

    max_lines: int | None = DEFAULT_MAX_LINES
    max_bytes: int | None = DEFAULT_MAX_BYTES
    endpoints: frozenset[str] = BATCH_ENDPOINTS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def __post_init__(self) -> None:
        for name in ("max_lines", "max_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"BatchLimits.{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.max_line_bytes, int) or self.max_line_bytes < 1:
            raise ValueError(
                f"BatchLimits.max_line_bytes must be a positive integer, got {self.max_line_bytes!r}"
            )
        if not self.endpoints:
            raise ValueError("BatchLimits.endpoints must name at least one endpoint")
        object.__setattr__(self, "endpoints", frozenset(self.endpoints))

    @property
    def line_cap_bytes(self) -> int:
        """The longest line read whole: :attr:`max_line_bytes`, or less if the whole file may be less."""
        if self.max_bytes is None:
            return self.max_line_bytes
        return min(self.max_line_bytes, self.max_bytes)


DEFAULT_LIMITS: Final = BatchLimits()


@dataclass(frozen=True)
class LineError:
    """One broken rule.

    :param line: 1-based line number, or ``None`` for a problem of the whole file.
    :param rule: short stable code of the rule, e.g. ``duplicate_custom_id``.
    :param message: what is wrong, in words.
    :param excerpt: the start of the offending line (at most about 80 characters).
    """

    line: int | None
    rule: str
    message: str
    excerpt: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        text = f"{where}: {self.message} [{self.rule}]"
        return f"{text}: {self.excerpt}" if self.excerpt else text


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one batch file.

    :param source: name of the file (path, URL or stream name).
    :param lines: number of lines, i.e. requests in a valid file.
    :param bytes: size of the file in bytes.
    :param endpoint: the endpoint of the first line with a known endpoint, if any.
    :param model: the ``body.model`` of the requests, if any set one.
    :param errors: the first ``max_errors`` errors in line order, plus any limit errors.
    :param error_count: the total number of errors found.
    :param warnings: accepted oddities (CRLF line endings, no final newline).
    :param limits: the limits that were checked.
    :param read_whole: false when reading stopped at a limit (the first byte past ``max_bytes``, or a
        line longer than ``max_line_bytes``): ``lines`` then counts the lines up to there, and
        ``bytes`` is the file's size if it could be known without reading it, else the bytes read.
    :param md5: hex md5 of the bytes validated, when the whole file was read (taken in the same pass).
    """

    source: str
    lines: int
    bytes: int
    endpoint: str | None
    model: str | None
    errors: list[LineError]
    error_count: int
    warnings: list[str] = field(default_factory=list)
    limits: BatchLimits = DEFAULT_LIMITS
    read_whole: bool = True
    md5: str | None = None

    @property
    def valid(self) -> bool:
        return self.error_count == 0

    def summary(self, max_shown: int = 5) -> str:
        """A human-readable message: the verdict, then the first ``max_shown`` errors, one per line."""
        if self.valid:
            model = f", model {self.model}" if self.model else ""
            text = (
                f"{self.source} is a valid batch file: {self.lines:,} requests to {self.endpoint}{model}, "
                f"{self.bytes:,} bytes."
            )
            return f"{text} Note: {'; '.join(self.warnings)}." if self.warnings else text
        plural = "error" if self.error_count == 1 else "errors"
        parts = [f"{self.source} is not a valid batch file: {self.error_count:,} {plural}."]
        parts.extend(f"  {error}" for error in self.errors[:max_shown])
        hidden = self.error_count - min(len(self.errors), max_shown)
        if hidden > 0:
            parts.append(f"  ... and {hidden:,} more.")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (for ``--json`` output and XCom)."""
        return {
            "source": self.source,
            "valid": self.valid,
            "lines": self.lines,
            "bytes": self.bytes,
            "endpoint": self.endpoint,
            "model": self.model,
            "error_count": self.error_count,
            "errors": [asdict(error) for error in self.errors],
            "warnings": list(self.warnings),
            "read_whole": self.read_whole,
            "md5": self.md5,
            "limits": {
                "max_lines": self.limits.max_lines,
                "max_bytes": self.limits.max_bytes,
                "max_line_bytes": self.limits.max_line_bytes,
                "endpoints": sorted(self.limits.endpoints),
            },
        }


class InvalidBatchFileError(ValueError):
    """A batch file broke at least one rule; :attr:`report` has the details.

    :param report: the validation report of the file.
    """

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def excerpt_of(line: bytes) -> str:
    """The start of ``line`` as printable text of at most :data:`EXCERPT_MAX_CHARS` characters."""
    text = bytes(line[: EXCERPT_MAX_CHARS * 4]).decode("utf-8", "replace").rstrip("\r")
    cut = len(text) > EXCERPT_MAX_CHARS or len(line) > EXCERPT_MAX_CHARS * 4
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:EXCERPT_MAX_CHARS])
    return text[:EXCERPT_MAX_CHARS] + ("..." if cut else "")
