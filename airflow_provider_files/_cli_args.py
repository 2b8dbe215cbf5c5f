"""Argument converters the ``airflow-files`` sub-commands share.

No Airflow and no httpx here: ``validate`` and ``shard`` use it and stay light.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)

#: Exit status of every command: done (or valid), failed (or invalid), usage or I/O error, Ctrl-C.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def number(
    parse: Callable[[str], Number],
    *,
    minimum: Number | None = None,
    maximum: Number | None = None,
    check: Callable[[Number], object] | None = None,
) -> Callable[[str], Number]:
    """An argparse ``type=`` converter: the number ``parse`` reads, within the bounds given.

    :param parse: ``int``, ``float``, or a parser whose ``ValueError`` says what is wrong (e.g.
        :func:`~airflow_provider_files.uploads.parse_size_bytes`).
    :param minimum: the smallest value accepted (``None``: no lower bound).
    :param maximum: the largest value accepted (``None``: no upper bound).
    :param check: a further check of the value; its ``ValueError`` message is shown.
    """
    kinds: dict[object, str] = {int: "an integer", float: "a number"}

    def shown(value: float) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    def out_of_bounds(value: Number) -> str | None:
        low = minimum is not None and value < minimum
        high = maximum is not None and value > maximum
        if (low or high) and minimum is not None and maximum is not None:
            return f"must be from {shown(minimum)} to {shown(maximum)}, got {shown(value)}"
        if low and minimum is not None:
            bound = "must not be negative" if minimum == 0 else f"must be at least {shown(minimum)}"
            return f"{bound}, got {shown(value)}"
        if high and maximum is not None:
            return f"must be at most {shown(maximum)}, got {shown(value)}"
        return None

    def convert(text: str) -> Number:
        try:
            value = parse(text)
        except ValueError as exc:
            what = kinds.get(parse)
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}" if what else str(exc)) from None
        problem = out_of_bounds(value)
        if problem is None and check is not None:
            try:
                check(value)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return convert


def name_value_pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` as ``(name, value)``; the name is stripped and must not be empty."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name.strip(), value


__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "name_value_pair", "number"]
