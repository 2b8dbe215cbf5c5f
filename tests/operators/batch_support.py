"""Helpers of the BatchOperator tests: request files on the emulator, and driving a deferred task
through its real triggers in the test's process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_files.api import ClientSettings, FilesClient
from airflow_provider_files.emulator.testing import EmulatorHandle
from tests.batches.support import requests_jsonl

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.triggers.base import BaseTrigger

MAX_DEFERRALS = 10


def upload(
    emulator: EmulatorHandle, data: bytes | None = None, *, purpose: str = "batch", count: int = 3
) -> str:
    settings = ClientSettings(api_key=emulator.api_key, base_url=emulator.base_url)
    with FilesClient(settings) as client:
        payload = requests_jsonl(count) if data is None else data
        return client.create_file(payload, purpose, filename="requests.jsonl").id


async def _first_event(trigger: BaseTrigger) -> Any:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def run_deferrable(
    operator: BaseOperator,
    context: Context,
    *,
    on_defer: Callable[[TaskDeferred], None] | None = None,
) -> Any:
    """``execute``, then each deferral's trigger run for real and the named method resumed, as
    Airflow's triggerer and worker would, until the task returns or raises."""
    resume: tuple[Callable[..., Any], Any, dict[str, Any]] | None = None
    for _ in range(MAX_DEFERRALS):
        try:
            if resume is None:
                return operator.execute(context)
            method, event, kwargs = resume
            return method(context, event, **kwargs)
        except TaskDeferred as deferred:
            if on_defer is not None:
                on_defer(deferred)
            event = asyncio.run(_first_event(deferred.trigger))
            resume = (getattr(operator, deferred.method_name), event, dict(deferred.kwargs or {}))
    raise AssertionError(f"still deferring after {MAX_DEFERRALS} deferrals")
