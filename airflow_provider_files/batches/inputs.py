"""What a batch runs on: a file id, or the file dict an upload operator returned (which may name
the endpoint and model it was validated for). No Airflow imports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_files.batches.submit import BatchInputError

#: Keys of an upload operator's file dict naming what the file was validated for.
FILE_ENDPOINT_KEY = "endpoint"
FILE_MODEL_KEY = "model"


@dataclass(frozen=True)
class BatchInput:
    """The input file of a batch and the endpoint its requests go to.

    :param file_id: the file of requests.
    :param endpoint: the endpoint of every request of the file.
    :param model: the model of the file's requests, when the upload said so.
    """

    file_id: str
    endpoint: str
    model: str | None = None


def resolve_batch_input(value: Any, endpoint: str | None) -> BatchInput:
    """The file id and endpoint of ``value`` (a file id or a file dict) and the ``endpoint`` given.

    An endpoint given and one named by the file dict must agree; one of them must be there.
    """
    model: str | None = None
    from_file: str | None = None
    if isinstance(value, str):
        file_id = value.strip()
    elif isinstance(value, Mapping):
        file_id = str(value.get("id") or "").strip()
        named = value.get(FILE_ENDPOINT_KEY)
        from_file = named if isinstance(named, str) and named else None
        named_model = value.get(FILE_MODEL_KEY)
        model = named_model if isinstance(named_model, str) and named_model else None
    elif isinstance(value, (list, tuple)):
        raise BatchInputError(
            f"input_file_id is a list of {len(value)} files (a split upload?): run one batch per file "
            "with BatchOperator.partial(...).expand(input_file_id=upload.output)"
        )
    else:
        raise BatchInputError(f"input_file_id must be a file id or a file dict, got {type(value).__name__}")
    if not file_id:
        raise BatchInputError(f"input_file_id names no file: {value!r}")
    if endpoint and from_file and endpoint != from_file:
        raise BatchInputError(
            f"endpoint {endpoint!r} was asked for, but file {file_id} was validated for {from_file!r}"
        )
    chosen = endpoint or from_file
    if not chosen:
        raise BatchInputError(
            f"no endpoint for file {file_id}: pass endpoint= (e.g. '/v1/chat/completions'); it is taken "
            "from the file only when the file comes from UploadJsonlOperator"
        )
    return BatchInput(file_id, chosen, model)
