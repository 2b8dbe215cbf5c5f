"""The argument converters every ``airflow-files`` command shares."""

from __future__ import annotations

import argparse

import pytest

from airflow_provider_files._cli_args import name_value_pair, number
from airflow_provider_files.uploads import parse_size_bytes, validate_part_size


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (number(int, minimum=1), "x", "not an integer: 'x'"),
        (number(int, minimum=1), "0", "must be at least 1, got 0"),
        (number(int, minimum=0), "-1", "must not be negative, got -1"),
        (number(int, minimum=1, maximum=64), "65", "must be from 1 to 64, got 65"),
        (number(float, minimum=0.0), "-0.5", "must not be negative, got -0.5"),
        (number(float, minimum=0.0, maximum=1.0), "1.5", "must be from 0 to 1, got 1.5"),
        (number(float, maximum=2.0), "3", "must be at most 2, got 3"),
        (number(float), "soon", "not a number: 'soon'"),
        (number(parse_size_bytes), "12 parsecs", "not a size: '12 parsecs'"),
        (number(parse_size_bytes, check=validate_part_size), "100MiB", "(64 MiB, the API's limit per part)"),
    ],
)
def test_refusals_say_why(convert: object, text: str, message: str) -> None:
    assert callable(convert)
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        convert(text)
    assert message in str(refused.value)


def test_accepted_values_come_back_converted() -> None:
    assert number(int, minimum=1, maximum=64)("64") == 64
    assert number(float, minimum=0.0, maximum=1.0)("0.25") == 0.25
    assert number(parse_size_bytes, check=validate_part_size)("32MiB") == 32 * 2**20


def test_name_value_pair() -> None:
    assert name_value_pair(" X-Team =data=eng") == ("X-Team", "data=eng")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        name_value_pair("=value")
