"""Collect a finished batch's results: every ``custom_id`` of its input accounted for, once.

No Airflow here. The caller gives the destination as an opener, ``open_dest(name) -> binary
handle`` (a local folder, an ``ObjectStoragePath`` folder, memory ...), and a local work folder.

Decisions (each is tested):

* The output and the error file are each downloaded **once**, streamed through the accounting
  (:meth:`~airflow_provider_files.jsonl.ResultsAccount.sink`) into their destination: memory is one
  chunk plus the longest line plus one small entry per ``custom_id``, whatever the sizes. A download
  cut midway cannot be rewound through a stream, so the round is downloaded again from the start
  (at most :data:`MAX_DOWNLOAD_ATTEMPTS` times), with a fresh account and the destinations rewritten.
* The input's ids come from the batch's input file, downloaded from the API into the work folder
  (the batch need not be ours), or from ``input_source`` when given.
* **Files written** (names relative to the destination): ``<batch_id>_output.jsonl`` and
  ``<batch_id>_errors.jsonl``, byte for byte as the API serves them (empty when the batch has no such
  file). With ``order="input"`` or follow-up rounds, one ``<batch_id>_results.jsonl`` instead: one line
  per ``custom_id`` (a success is never replaced; a later round's line replaces an earlier failure),
  in input order or round by round. The rounds' files are then kept in the work folder until merged.
* ``completed``, ``expired`` and ``cancelled`` batches are collected (the last two keep what was
  paid for); ``failed`` and unfinished batches are refused.
* **Follow-up rounds**: the ids that failed with a retryable error, and the missing ones, are the
  input of the next round (their input lines, byte for byte, in input order); ``run_round`` submits
  that subset and returns the finished batch. A follow-up batch that ends ``failed`` ends the rounds.
* **Checks** (:meth:`CollectedResults.problems`): a duplicated or unexpected id always; a missing id
  unless a round ended ``expired`` or ``cancelled`` (or a follow-up ``failed``): then it counts as
  not done; the
  share of failed and missing requests over ``max_failed_fraction``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from airflow_provider_files.api import Batch, FilesClient, NotFoundError
from airflow_provider_files.api.errors import SourceNotReplayableError
from airflow_provider_files.jsonl import (
    ResultFiles,
    ResultsAccount,
    ResultsSummary,
    merge_result_rounds,
    read_custom_ids,
    write_input_subset,
)
from airflow_provider_files.jsonl._reading import BatchSource
from airflow_provider_files.jsonl.result_files import ResultOrder
from airflow_provider_files.jsonl.results import ResultKind

log = logging.getLogger(__name__)

#: How many times a round's result files are downloaded from the start after a cut.
MAX_DOWNLOAD_ATTEMPTS: Final = 3
#: Statuses whose results can be collected.
COLLECTABLE_STATUSES: Final[frozenset[str]] = frozenset({"completed", "expired", "cancelled"})
#: Statuses after which requests may have no result line at all.
PARTIAL_STATUSES: Final[frozenset[str]] = frozenset({"expired", "cancelled"})


def output_name(batch_id: str) -> str:
    """Name of the output file written for ``batch_id``."""
    return f"{batch_id}_output.jsonl"


def errors_name(batch_id: str) -> str:
    """Name of the error file written for ``batch_id``."""
    return f"{batch_id}_errors.jsonl"


def results_name(batch_id: str) -> str:
    """Name of the merged (or input-ordered) results file written for ``batch_id``."""
    return f"{batch_id}_results.jsonl"


class WritableHandle(Protocol):
    """What ``open_dest`` returns: a binary handle to write to and close."""

    def write(self, data: bytes | bytearray | memoryview, /) -> Any: ...

    def close(self) -> Any: ...


#: ``open_dest(name)``: a new binary handle for the file ``name`` of the destination (overwriting it).
OpenDestination = Callable[[str], WritableHandle]
#: ``run_round(round_number, input_path, original_batch)``: submit the follow-up batch of
#: ``input_path`` (round 2, 3, ...) and return it once finished.
RunRound = Callable[[int, Path, Batch], Batch]


class ResultsNotCollectableError(ValueError):
    """The batch has no results to collect (still running, or ``failed``)."""


@dataclass(frozen=True)
class RoundResult:
    """One batch of the collection: the original (round 1) or a follow-up.

    :param round: 1 for the original batch, 2, 3 ... for the follow-ups.
    :param batch: the finished batch.
    :param requests: how many requests it had (ids sent, for a follow-up).
    :param summary: the accounting of its result files against its own requests.
    """

    round: int
    batch: Batch
    requests: int
    summary: ResultsSummary

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "batch_id": self.batch.id,
            "status": self.batch.status,
            "requests": self.requests,
            "succeeded": self.summary.succeeded,
            "failed": self.summary.failed,
            "missing": len(self.summary.missing),
            "resubmitted": len(self.summary.ids_to_resubmit()),
            "usage": self.batch.usage,
        }


def _batch_tokens(usage: Mapping[str, Any] | None) -> tuple[int, int, int] | None:
    if not usage:
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return tuple(  # type: ignore[return-value]
        value if isinstance(value, int) and not isinstance(value, bool) else 0
        for value in (usage.get("input_tokens"), usage.get("output_tokens"), cached)
    )


@dataclass(frozen=True)
class CollectedResults:
    """What :func:`collect_results` downloaded, wrote and found.

    :param batch: the original batch.
    :param summary: the accounting of the files written against the whole input.
    :param files: what was written: ``output`` and ``errors``, or ``results``, to their names.
    :param rounds: the original batch and each follow-up, in order.
    """

    batch: Batch
    summary: ResultsSummary
    files: dict[str, str]
    rounds: tuple[RoundResult, ...]

    @property
    def partial(self) -> bool:
        """Whether a round ended before running every request (``expired``, ``cancelled``, or a
        follow-up that ``failed``): then requests may have no result line."""
        return any(r.batch.status in PARTIAL_STATUSES or r.batch.status == "failed" for r in self.rounds)

    def batch_usage(self) -> dict[str, int] | None:
        """Tokens the server reports in ``Batch.usage``, summed over the rounds (``None``: none said)."""
        figures = [t for t in (_batch_tokens(r.batch.usage) for r in self.rounds) if t is not None]
        if not figures:
            return None
        tokens_in, tokens_out, cached = (sum(column) for column in zip(*figures, strict=True))
        return {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cached_tokens": cached,
            "total_tokens": tokens_in + tokens_out,
        }

    def problems(self, max_failed_fraction: float | None = None) -> list[str]:
        """What breaks the checks, one sentence each (empty: all good)."""
        summary = self.summary
        found = []
        if summary.duplicates or summary.unexpected or (summary.missing and not self.partial):
            found.append(summary.accounting_problems())
        if max_failed_fraction is not None and summary.failed_fraction > max_failed_fraction:
            found.append(
                f"{summary.failed_fraction:.1%} of the requests failed or have no result "
                f"({summary.failed:,} failed, {len(summary.missing):,} missing of "
                f"{summary.total_input:,}), more than max_failed_fraction={max_failed_fraction:g}"
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for XCom: the summary's counts, the batch, the rounds and the files."""
        return {
            "batch_id": self.batch.id,
            "status": self.batch.status,
            **self.summary.to_dict(),
            "batch_usage": self.batch_usage(),
            "files": dict(self.files),
            "rounds": [r.to_dict() for r in self.rounds],
        }

    def file_ids(self) -> list[str]:
        """Every file of every round: input, output and error (for clean-up)."""
        ids: list[str] = []
        for result in self.rounds:
            batch = result.batch
            ids += [i for i in (batch.input_file_id, batch.output_file_id, batch.error_file_id) if i]
        return list(dict.fromkeys(ids))


class _ForwardOnly:
    """A write-only view of a stream that says it cannot seek (so a cut download is not rewound)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._inner.write(data)
        return len(data)

    def seekable(self) -> bool:
        return False


def _require_collectable(batch: Batch) -> None:
    if batch.status in COLLECTABLE_STATUSES:
        return
    if batch.status == "failed":
        reasons = "; ".join(
            f"line {e.line}: {e.code}: {e.message}" if e.line else f"{e.code}: {e.message}"
            for e in batch.errors[:5]
        )
        raise ResultsNotCollectableError(
            f"batch {batch.id} failed, it has no results" + (f" ({reasons})" if reasons else "")
        )
    raise ResultsNotCollectableError(
        f"batch {batch.id} is {batch.status}, not finished; wait for it (BatchOperator, "
        "BatchCompleteSensor) before collecting its results"
    )


def _download_round(
    client: FilesClient,
    batch: Batch,
    input_ids: list[str],
    open_target: Callable[[ResultKind], WritableHandle],
) -> ResultsSummary:
    """Download the output and the error file of ``batch`` once each, accounting every line."""
    for attempt in range(1, MAX_DOWNLOAD_ATTEMPTS + 1):
        account = ResultsAccount(input_ids)
        try:
            kinds: tuple[tuple[ResultKind, str | None], ...] = (
                ("output", batch.output_file_id),
                ("error", batch.error_file_id),
            )
            for kind, file_id in kinds:
                with closing(open_target(kind)) as handle:
                    if file_id is None:
                        continue
                    with account.sink(handle, kind, source=f"{kind} file {file_id}") as scanner:
                        written = client.download_file(file_id, _ForwardOnly(scanner))  # type: ignore[arg-type]
                    log.info(
                        "Batch %s: %s file %s, %d bytes, %d lines",
                        batch.id,
                        kind,
                        file_id,
                        written,
                        scanner.lines,
                    )
            return account.summary()
        except SourceNotReplayableError:
            if attempt == MAX_DOWNLOAD_ATTEMPTS:
                raise
            log.warning(
                "Batch %s: a result download was cut; downloading again (attempt %d)", batch.id, attempt + 1
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _input_ids(
    client: FilesClient, batch: Batch, work_dir: Path, input_source: BatchSource | None
) -> tuple[list[str], BatchSource]:
    if input_source is None:
        if not batch.input_file_id:
            raise ResultsNotCollectableError(f"batch {batch.id} names no input file; pass input_source")
        local = work_dir / "input.jsonl"
        try:
            client.download_file(batch.input_file_id, local)
        except NotFoundError as exc:
            raise ResultsNotCollectableError(
                f"the input file {batch.input_file_id} of batch {batch.id} is gone ({exc}); without "
                "it the custom_ids cannot be checked: pass input_source (a copy of the input file)"
            ) from exc
        input_source = local
    return read_custom_ids(input_source), input_source


def collect_results(
    client: FilesClient,
    batch: Batch,
    open_dest: OpenDestination,
    *,
    work_dir: Path,
    input_source: BatchSource | None = None,
    order: ResultOrder = "results",
    resubmit_rounds: int = 0,
    run_round: RunRound | None = None,
) -> CollectedResults:
    """Download, account for and write the results of a finished batch (see the module's rules).

    :param client: the API client.
    :param batch: the batch (as retrieved; ``completed``, ``expired`` or ``cancelled``).
    :param open_dest: ``open_dest(name)`` -> a new binary handle for that file of the destination.
    :param work_dir: a local folder for the input copy and, when merging, the rounds' files.
    :param input_source: the batch's input file, when the API's copy should not be used.
    :param order: ``"results"`` (as served) or ``"input"`` (one file, in input order).
    :param resubmit_rounds: follow-up batches at most, for retryable failures and missing ids.
    :param run_round: submits a follow-up and waits for it; needed when ``resubmit_rounds > 0``.
    :raises ResultsNotCollectableError: the batch is not finished, failed, or its input is gone.
    """
    if order not in ("results", "input"):
        raise ValueError(f'order must be "results" or "input", got {order!r}')
    if resubmit_rounds < 0:
        raise ValueError(f"resubmit_rounds must be >= 0, got {resubmit_rounds}")
    if resubmit_rounds and run_round is None:
        raise ValueError("resubmit_rounds needs run_round (how to submit and wait for a follow-up)")
    _require_collectable(batch)
    input_ids, input_source = _input_ids(client, batch, work_dir, input_source)
    if order == "results" and not resubmit_rounds:
        names = {"output": output_name(batch.id), "error": errors_name(batch.id)}
        summary = _download_round(client, batch, input_ids, lambda kind: open_dest(names[kind]))
        first = RoundResult(1, batch, len(input_ids), summary)
        files = {"output": names["output"], "errors": names["error"]}
        return CollectedResults(batch, summary, files, (first,))

    rounds: list[RoundResult] = []
    round_files: list[ResultFiles] = []
    current, ids = batch, input_ids
    for number in range(1, resubmit_rounds + 2):
        paths = {kind: work_dir / f"round{number}_{kind}.jsonl" for kind in ("output", "error")}
        summary = _download_round(client, current, ids, lambda kind: paths[kind].open("wb"))  # noqa: B023
        rounds.append(RoundResult(number, current, len(ids), summary))
        round_files.append(ResultFiles(paths["output"], paths["error"]))
        ids = summary.ids_to_resubmit()
        if not ids or number > resubmit_rounds:
            break
        subset = work_dir / f"round{number + 1}_input.jsonl"
        write_input_subset(input_source, ids, subset)
        assert run_round is not None
        log.info("Batch %s: %d request(s) go into follow-up round %d", batch.id, len(ids), number + 1)
        current = run_round(number + 1, subset, batch)
        if current.status not in COLLECTABLE_STATUSES:
            log.warning("Follow-up batch %s ended %s; no more rounds", current.id, current.status)
            rounds.append(RoundResult(number + 1, current, len(ids), ResultsAccount(ids).summary()))
            break
    name = results_name(batch.id)
    final = ResultsAccount(input_ids)
    with closing(open_dest(name)) as handle, final.sink(handle, "output", source=name) as scanner:
        merge_result_rounds(round_files, scanner, input_ids=input_ids, order=order)
    return CollectedResults(batch, final.summary(), {"results": name}, tuple(rounds))


def delete_files(client: FilesClient, file_ids: list[str]) -> list[str]:
    """Delete files (already gone counts as deleted); returns the ids deleted or gone."""
    deleted = []
    for file_id in file_ids:
        try:
            client.delete_file(file_id)
        except NotFoundError:
            log.info("File %s was already gone", file_id)
        deleted.append(file_id)
    return deleted
