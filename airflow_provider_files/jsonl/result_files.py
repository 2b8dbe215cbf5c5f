"""Writing batch files from result files: the input subset to resubmit, merged rounds, input order.

Decisions (each is tested):

* **Resubmission**: :func:`write_input_subset` copies, byte for byte and in input order, the input
  lines whose ``custom_id`` is asked for (a last line without newline gets one). Asking for an id
  the input does not have is an error: nothing could be resubmitted for it.
* **Rounds**: :func:`merge_result_rounds` takes the result files of round 1, 2, ... and writes one
  line per ``custom_id``: a line replaces the one chosen so far unless that one succeeded (a
  success is never replaced). So a later round's line replaces an earlier failure, and an id that
  was not resubmitted keeps its line.
* **Order**: ``"results"`` keeps the order of the files (round by round, output before error);
  ``"input"`` follows the input's ids, then any id not in the input, in results order.

Memory: one index entry per ``custom_id`` (file, offset, length, succeeded: packed in one int) and one
line at a time; the result files are read twice (index, then copy) and must be seekable, e.g. local
copies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final, Literal

import orjson

from airflow_provider_files.jsonl._reading import (
    BatchSource,
    BinaryReadable,
    LineChunks,
    TruncatedLine,
    open_source,
    source_name,
)
from airflow_provider_files.jsonl.line_scanner import BinaryWritable
from airflow_provider_files.jsonl.results import (
    MAX_RESULT_LINE_BYTES,
    ResultKind,
    ResultLineError,
    ResultsAccount,
    ResultsSummary,
    parse_result_line,
    plain_success,
)

#: Writes to the destination are gathered up to this size.
WRITE_BATCH_BYTES: Final = 1024 * 1024
ResultOrder = Literal["results", "input"]

# Index entry layout, from the low bits: succeeded (1 bit), length (32), offset (40), file number.
_LENGTH_BITS: Final = 32
_OFFSET_BITS: Final = 40
_MAX_FILES: Final = 1 << 16


@dataclass(frozen=True)
class ResultFiles:
    """The result files of one batch (one round); either may be ``None``.

    :param output: the output file (lines with a response).
    :param error: the error file.
    """

    output: BatchSource | None = None
    error: BatchSource | None = None


@dataclass(frozen=True)
class WrittenFile:
    """What a writer wrote.

    :param lines: lines written.
    :param bytes: bytes written.
    :param missing: ids asked for (or, for a merge in input order, input ids) that have no line.
    :param lines_per_round: for a merge, how many written lines come from each round.
    """

    lines: int
    bytes: int
    missing: tuple[str, ...] = ()
    lines_per_round: tuple[int, ...] = ()


@contextmanager
def open_destination(destination: Any) -> Iterator[BinaryWritable]:
    """A binary handle for ``destination``: an open writable is used as is (and left open); a path,
    ``pathlib.Path`` or ``ObjectStoragePath`` is opened with ``"wb"`` and closed afterwards."""
    if hasattr(destination, "write"):
        yield destination
    elif isinstance(destination, (str, PurePath)) or (
        isinstance(destination, os.PathLike) and not hasattr(destination, "open")
    ):
        with open(os.fspath(destination), "wb") as local_file:
            yield local_file
    elif hasattr(destination, "open"):
        with destination.open("wb") as opened:
            yield opened
    else:
        raise TypeError(
            f"cannot write to {type(destination).__name__}; pass a path, an object with open('wb') "
            "such as ObjectStoragePath, or a binary file object"
        )


class _BatchedWriter:
    def __init__(self, handle: BinaryWritable) -> None:
        self._handle = handle
        self._pieces: list[bytes] = []
        self._pending = 0
        self.lines = 0
        self.bytes = 0

    def line(self, raw: bytes) -> None:
        self._pieces.append(raw)
        self._pieces.append(b"\n")
        self._pending += len(raw) + 1
        self.lines += 1
        if self._pending >= WRITE_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pieces:
            self._handle.write(b"".join(self._pieces))
            self.bytes += self._pending
            self._pieces, self._pending = [], 0


def write_input_subset(
    input_source: BatchSource,
    custom_ids: Iterable[str],
    destination: Any,
    *,
    max_line_bytes: int = MAX_RESULT_LINE_BYTES,
) -> WrittenFile:
    """Write the input lines whose ``custom_id`` is in ``custom_ids``, in input order: a follow-up batch.

    :param input_source: the batch input file.
    :param custom_ids: the ids to keep (e.g. ``ResultsSummary.ids_to_resubmit()``).
    :param destination: a path, an object with ``open("wb")``, or a binary writable.
    :raises ValueError: if an asked-for id is not in the input (the message names them; the lines
        found have been written by then).
    :raises ResultLineError: if an input line has no readable ``custom_id``.
    """
    remaining = set(custom_ids)  # an id leaves the set when its line is written
    name = source_name(input_source)
    with open_source(input_source) as stream, open_destination(destination) as handle:
        writer = _BatchedWriter(handle)
        number = 0
        for lines in LineChunks(stream, max_line_bytes=max_line_bytes):
            for raw in lines:
                number += 1
                if not raw.strip():
                    continue
                custom_id = _input_id(raw, name, number, max_line_bytes)
                if custom_id in remaining:
                    remaining.discard(custom_id)
                    writer.line(raw)
        writer.flush()
    absent = sorted(remaining)
    if absent:
        shown = ", ".join(repr(custom_id) for custom_id in absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise ValueError(f"{len(absent):,} custom_id(s) to resubmit are not in the input {name}: {shown}")
    return WrittenFile(writer.lines, writer.bytes)


def _input_id(raw: bytes, source: str, line: int, max_line_bytes: int) -> str:
    if isinstance(raw, TruncatedLine):
        raise ResultLineError(source, line, f"line is {raw.size_text()}, more than {max_line_bytes:,}")
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ResultLineError(source, line, f"not valid JSON ({exc.msg})", raw) from None
    custom_id = request.get("custom_id") if type(request) is dict else None
    if type(custom_id) is not str or not custom_id:
        raise ResultLineError(source, line, "no custom_id (a non-empty string) on this input line", raw)
    return custom_id


def read_custom_ids(source: BatchSource, *, max_line_bytes: int = MAX_RESULT_LINE_BYTES) -> list[str]:
    """The ``custom_id`` of every request of a batch input file, in file order, streaming.

    Blank lines are skipped.

    :raises ResultLineError: if a line is not a JSON object with a non-empty string ``custom_id``.
    """
    name = source_name(source)
    ids: list[str] = []
    loads = orjson.loads
    with open_source(source) as stream:
        number = 0
        for lines in LineChunks(stream, max_line_bytes=max_line_bytes):
            for raw in lines:
                number += 1
                try:
                    custom_id = loads(raw)["custom_id"]
                    if type(custom_id) is str and custom_id and type(raw) is bytes:
                        ids.append(custom_id)
                        continue
                except Exception:
                    pass
                if raw.strip():
                    ids.append(_input_id(raw, name, number, max_line_bytes))
    return ids


def account_results(
    input_source: BatchSource | None,
    output_source: BatchSource | None,
    error_source: BatchSource | None = None,
) -> ResultsSummary:
    """Account for a batch's result files (either may be ``None``) against its input file.

    :param input_source: the batch input file, or ``None`` if not known.
    :param output_source: the output file, or ``None`` if the batch has none.
    :param error_source: the error file, or ``None`` if the batch has none.
    """
    account = ResultsAccount(read_custom_ids(input_source) if input_source is not None else None)
    if output_source is not None:
        account.add_file(output_source, "output")
    if error_source is not None:
        account.add_file(error_source, "error")
    return account.summary()


def _unpack(entry: int) -> tuple[int, int, int]:
    """``(file_number, offset, length)`` of an index entry."""
    entry >>= 1
    length = entry & ((1 << _LENGTH_BITS) - 1)
    entry >>= _LENGTH_BITS
    return entry >> _OFFSET_BITS, entry & ((1 << _OFFSET_BITS) - 1), length


def _index_file(
    stream: BinaryReadable,
    kind: ResultKind,
    name: str,
    file_number: int,
    index: dict[str, int],
    max_line_bytes: int,
) -> None:
    """Add the lines of one result file to ``index`` under the merge rule."""
    get_entry = index.get
    is_output = kind == "output"
    base = file_number << _OFFSET_BITS
    offset = 0
    number = 0
    chunks = LineChunks(stream, max_line_bytes=max_line_bytes)
    for lines in chunks:
        for raw in lines:
            number += 1
            size = len(raw)
            if chunks.last_had_truncated and isinstance(raw, TruncatedLine):
                raise ResultLineError(
                    name, number, f"line is {raw.size_text()}, more than {max_line_bytes:,}"
                )
            success = plain_success(raw) if is_output else None
            if success is not None:
                custom_id, succeeded = success[0], True
            elif raw.strip():
                outcome = parse_result_line(raw, kind, source=name, line=number)
                custom_id, succeeded = outcome.custom_id, outcome.succeeded
            else:
                offset += size + 1
                continue
            chosen = get_entry(custom_id)
            if chosen is None or not chosen & 1:
                index[custom_id] = (((base | offset) << _LENGTH_BITS | size) << 1) | succeeded
            offset += size + 1


def merge_result_rounds(
    rounds: Sequence[ResultFiles],
    destination: Any,
    *,
    input_ids: Sequence[str] | None = None,
    order: ResultOrder = "results",
    max_line_bytes: int = MAX_RESULT_LINE_BYTES,
) -> WrittenFile:
    """Write one result line per ``custom_id`` from the result files of one or more rounds.

    With one round this removes duplicates (keeping a success) and, with ``order="input"``, sorts.

    :param rounds: round 1, 2, ...: each round's output and error files (seekable: local paths,
        or pathlib-like objects whose handles can ``seek``).
    :param destination: a path, an object with ``open("wb")``, or a binary writable.
    :param input_ids: the input's custom_ids in input order (:func:`read_custom_ids`);
        needed for ``order="input"``, and to report missing ids.
    :param order: ``"results"`` (file order) or ``"input"``.
    :raises ResultLineError: if a result line cannot be accounted for.
    """
    if order not in ("results", "input"):
        raise ValueError(f'order must be "results" or "input", got {order!r}')
    if order == "input" and input_ids is None:
        raise ValueError('order="input" needs input_ids (see read_custom_ids)')
    files: list[tuple[int, ResultKind, BatchSource]] = []
    for round_number, result_files in enumerate(rounds):
        if result_files.output is not None:
            files.append((round_number, "output", result_files.output))
        if result_files.error is not None:
            files.append((round_number, "error", result_files.error))
    if len(files) > _MAX_FILES:
        raise ValueError(f"too many result files ({len(files):,}); at most {_MAX_FILES:,}")
    index: dict[str, int] = {}
    with ExitStack() as stack:
        streams = [stack.enter_context(open_source(source)) for _, _, source in files]
        for file_number, ((_, kind, source), stream) in enumerate(zip(files, streams, strict=True)):
            seekable = getattr(stream, "seekable", None)
            if seekable is None or not seekable():
                raise TypeError(
                    f"{source_name(source)} cannot seek; merge result files from local copies "
                    "(or handles that can seek)"
                )
            _index_file(stream, kind, source_name(source), file_number, index, max_line_bytes)
        missing: tuple[str, ...] = ()
        if input_ids is not None:
            missing = tuple(custom_id for custom_id in input_ids if custom_id not in index)
        if order == "input":
            assert input_ids is not None
            entries = [index.pop(custom_id) for custom_id in input_ids if custom_id in index]
            entries.extend(sorted(index.values()))
        else:
            entries = sorted(index.values())
        index.clear()
        per_round = [0] * len(rounds)
        handle = stack.enter_context(open_destination(destination))
        writer = _BatchedWriter(handle)
        for entry in entries:
            file_number, offset, length = _unpack(entry)
            writer.line(_read_at(streams[file_number], offset, length, files[file_number][2]))
            per_round[files[file_number][0]] += 1
        writer.flush()
    return WrittenFile(writer.lines, writer.bytes, missing, tuple(per_round))


def _read_at(stream: BinaryReadable, offset: int, length: int, source: BatchSource) -> bytes:
    stream.seek(offset)  # type: ignore[attr-defined]
    data = stream.read(length)
    while len(data) < length:  # a raw file may return less than asked
        more = stream.read(length - len(data))
        if not more:
            raise OSError(f"{source_name(source)} changed while it was being merged")
        data += more
    return data


def write_in_input_order(
    result_files: ResultFiles,
    input_ids: Sequence[str],
    destination: Any,
    *,
    max_line_bytes: int = MAX_RESULT_LINE_BYTES,
) -> WrittenFile:
    """Write a batch's result lines in the order of its input (one line per ``custom_id``)."""
    return merge_result_rounds(
        [result_files], destination, input_ids=input_ids, order="input", max_line_bytes=max_line_bytes
    )
