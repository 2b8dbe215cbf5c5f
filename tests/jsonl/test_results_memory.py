"""A 50,000-line results file is stored, checked, ordered and merged in memory far below its size."""

from __future__ import annotations

import gc
import hashlib
import random
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from airflow_provider_files.jsonl import (
    ResultFiles,
    ResultsAccount,
    account_results,
    merge_result_rounds,
    read_custom_ids,
    write_in_input_order,
    write_input_subset,
)

from .support import ok

LINES = 50_000
CONTENT_CHARS = 1500  # about 1.7 KB per line, about 85 MB in all
FAILING_EVERY = 10  # every 10th request fails with a 500 in round 1
#: "Far below": the peak of traced allocations must stay under this share of the file size.
MAX_PEAK_SHARE = 0.2
READ_BYTES = 1024 * 1024
T = TypeVar("T")

INPUT_TEMPLATE = (
    b'{"custom_id":"%s","method":"POST","url":"/v1/chat/completions",'
    b'"body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}}\n'
)
OK_TEMPLATE = (
    b'{"id":"batch_req_%d","custom_id":"%s","response":{"status_code":200,"request_id":"req_%d","body":'
    b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"%s"}}],'
    b'"usage":{"prompt_tokens":11,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":3}}}},'
    b'"error":null}\n'
)
FAIL_TEMPLATE = (
    b'{"id":"batch_req_%d","custom_id":"%s","response":{"status_code":500,"request_id":"req_%d","body":'
    b'{"error":{"message":"%s","type":"server_error","code":null}}},"error":null}\n'
)


class Big:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ids = [f"request-{index:06d}" for index in range(LINES)]
        self.input = folder / "input.jsonl"
        self.output = folder / "output.jsonl"
        with self.input.open("wb") as handle:
            handle.writelines(INPUT_TEMPLATE % custom_id.encode() for custom_id in self.ids)
        order = list(range(LINES))
        random.Random(11).shuffle(order)  # results come in any order
        content = b"x" * CONTENT_CHARS
        with self.output.open("wb") as handle:
            handle.writelines(
                (FAIL_TEMPLATE if index % FAILING_EVERY == 0 else OK_TEMPLATE)
                % (index, self.ids[index].encode(), index, content)
                for index in order
            )
        self.size = self.output.stat().st_size
        self.failing = self.ids[::FAILING_EVERY]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    folder = tmp_path_factory.mktemp("big-results")
    yield Big(folder)
    for path in folder.iterdir():
        path.unlink()


def traced_peak(action: Callable[[], T]) -> tuple[T, int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def test_download_pass_stores_and_checks_in_bounded_memory(big: Big) -> None:
    copy = big.folder / "downloaded.jsonl"

    def download() -> ResultsAccount:
        account = ResultsAccount(read_custom_ids(big.input))
        with big.output.open("rb", buffering=0) as response, copy.open("wb") as stored:
            sink = account.sink(stored, "output", source="output.jsonl")
            while chunk := response.read(READ_BYTES):
                sink.write(chunk)
            sink.finish()
        return account

    account, peak = traced_peak(download)
    print(f"\ndownload + check: file {big.size / 1e6:.1f} MB, peak traced {peak / 1e6:.1f} MB")
    assert big.size > 80_000_000
    assert peak < big.size * MAX_PEAK_SHARE
    assert digest(copy) == digest(big.output)
    copy.unlink()
    summary = account.summary()
    assert summary.complete and summary.total_input == LINES
    assert (summary.succeeded, summary.failed) == (LINES - len(big.failing), len(big.failing))
    assert summary.retryable == tuple(big.failing) and summary.error_codes == {"http_500": len(big.failing)}
    usage = summary.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (
        11 * summary.succeeded,
        7 * summary.succeeded,
        3 * summary.succeeded,
    )


def test_input_order_in_bounded_memory(big: Big) -> None:
    ordered = big.folder / "ordered.jsonl"
    written, peak = traced_peak(
        lambda: write_in_input_order(ResultFiles(big.output), read_custom_ids(big.input), ordered)
    )
    print(f"\ninput order: file {big.size / 1e6:.1f} MB, peak traced {peak / 1e6:.1f} MB")
    assert peak < big.size * MAX_PEAK_SHARE
    assert (written.lines, written.bytes, written.missing) == (LINES, big.size, ())
    assert read_custom_ids(ordered) == big.ids  # result lines carry custom_id too
    ordered.unlink()


def test_resubmit_and_merge_rounds_in_bounded_memory(big: Big) -> None:
    retry_input = big.folder / "retry-input.jsonl"
    subset, subset_peak = traced_peak(lambda: write_input_subset(big.input, big.failing, retry_input))
    assert subset.lines == len(big.failing) and read_custom_ids(retry_input) == big.failing
    assert subset_peak < big.size * MAX_PEAK_SHARE
    round_2 = big.folder / "round-2.jsonl"
    round_2.write_bytes(
        b"".join(ok(custom_id, {"prompt_tokens": 1, "completion_tokens": 1}) for custom_id in big.failing)
    )
    final = big.folder / "final.jsonl"
    written, peak = traced_peak(
        lambda: merge_result_rounds(
            [ResultFiles(big.output), ResultFiles(round_2)], final, input_ids=read_custom_ids(big.input)
        )
    )
    print(f"\nmerge of 2 rounds: file {big.size / 1e6:.1f} MB, peak traced {peak / 1e6:.1f} MB")
    assert peak < big.size * MAX_PEAK_SHARE
    assert written.lines == LINES and written.lines_per_round == (LINES - len(big.failing), len(big.failing))
    summary = account_results(big.input, final)
    assert summary.complete and summary.succeeded == LINES and summary.failed == 0
    for path in (retry_input, round_2, final):
        path.unlink()
