"""Shared pieces of the reliability suite: result rows, clients and connections pointed at the
emulator, a task context for running operators outside Airflow. Inputs come from :mod:`bench.datagen`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from airflow_provider_files.api import ClientSettings, FilesClient, RetryPolicy


@dataclass
class Metric:
    """One figure of a scenario.

    :param name: what is counted.
    :param value: the measured figure.
    :param target: the figure it must reach (``None`` for informational figures).
    :param ok: whether it reached the target (``None`` when informational).
    """

    name: str
    value: float | int | str
    target: str | None = None
    ok: bool | None = None

    @classmethod
    def zero(cls, name: str, value: int) -> Metric:
        return cls(name, value, "0", value == 0)

    @classmethod
    def at_least(cls, name: str, value: int, minimum: int) -> Metric:
        return cls(name, value, f">= {minimum}", value >= minimum)

    @classmethod
    def equals(cls, name: str, value: int, expected: int) -> Metric:
        return cls(name, value, f"= {expected}", value == expected)

    @classmethod
    def info(cls, name: str, value: float | int | str) -> Metric:
        return cls(name, value)


@dataclass
class ScenarioResult:
    """What one scenario measured.

    :param scenario: short name (``faults``, ``crashes`` ...).
    :param title: one line saying what was done.
    :param metrics: the figures, in display order.
    :param notes: setup details and definitions, for RELIABILITY.md.
    :param failures: human descriptions of each thing that went wrong (empty when all passed).
    :param elapsed_s: wall time of the scenario.
    """

    scenario: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and all(m.ok is not False for m in self.metrics)

    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)


def fast_retry_policy(max_attempts: int = 16) -> RetryPolicy:
    """The production retry rules with short backoffs, so that hundreds of faults fit in minutes.

    With about 40% of requests faulted, 10 attempts still lost a request to a run of 10 faults
    about once in a few hundred test runs; 16 attempts make that about 0.4**16 = 4e-7 a request.
    """
    return RetryPolicy(
        max_attempts=max_attempts, initial_delay_s=0.05, max_delay_s=1.0, max_total_wait_s=60.0
    )


def emulator_settings(base_url: str, api_key: str, **overrides: Any) -> ClientSettings:
    overrides.setdefault("retry_policy", fast_retry_policy())
    overrides.setdefault("timeout_s", 60.0)
    return ClientSettings(api_key=api_key, base_url=base_url, gateway="openai", **overrides)


def emulator_client(base_url: str, api_key: str, **overrides: Any) -> FilesClient:
    return FilesClient(emulator_settings(base_url, api_key, **overrides))


def task_context(dag_id: str, task_id: str, run_id: str) -> dict[str, Any]:
    """The part of an Airflow task context the operators read (the task instance's key)."""
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=-1)
    return {"ti": ti, "run_id": run_id, "dag": SimpleNamespace(dag_id=dag_id)}


@contextmanager
def env_vars(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the duration of the block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
