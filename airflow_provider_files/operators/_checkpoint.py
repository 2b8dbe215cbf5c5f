"""Upload checkpoints that survive task retries, kept on any ObjectStoragePath.

XCom is wiped when a task is retried, so what an upload needs to resume (upload id, parts
sent, the finished file) is written beside the run instead: one JSON object per
``(dag_id, task_id, run_id, map_index)`` under a folder the user may point at S3, GCS or a
shared disk. The default is local (``$AIRFLOW_HOME/upload_checkpoints``), which resumes a
retry that runs on the same machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath

CHECKPOINT_FOLDER_NAME = "upload_checkpoints"
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_PART_CHARS = 80


def default_checkpoint_folder() -> str:
    """``[openai_files] checkpoint_folder`` if configured, else ``$AIRFLOW_HOME/upload_checkpoints``."""
    from airflow_provider_files._airflow_compat import conf

    configured = conf.get("openai_files", "checkpoint_folder", fallback=None)
    if configured:
        return str(configured)
    home = os.environ.get("AIRFLOW_HOME") or conf.get("core", "airflow_home", fallback=None)
    return str(Path(home or Path.home() / "airflow") / CHECKPOINT_FOLDER_NAME)


def as_storage_path(location: str | os.PathLike[str] | ObjectStoragePath) -> ObjectStoragePath:
    """A local path or URL (``file://``, ``s3://conn@bucket/key`` ...) as an ObjectStoragePath."""
    if isinstance(location, ObjectStoragePath):
        return location
    text = os.fspath(location)
    if not text:
        raise ValueError("an empty string is not a path")
    if "://" not in text:
        text = "file://" + str(Path(text).expanduser().resolve())
    path = ObjectStoragePath(text)
    if not is_local(path):
        try:
            path.fs  # noqa: B018 - resolves the filesystem now, so a missing one is named here
        except ValueError as exc:
            raise ValueError(
                f"cannot read {text}: no filesystem is registered for {path.protocol}:// ({exc}); "
                f"{_filesystem_hint(path.protocol or '')}"
            ) from exc
    return path


# Which package registers each object-storage scheme with Airflow.
_FILESYSTEM_PROVIDERS = {
    "s3": "apache-airflow-providers-amazon[s3fs]",
    "s3a": "apache-airflow-providers-amazon[s3fs]",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "sftp": "apache-airflow-providers-sftp[sshfs]",
}


def _filesystem_hint(protocol: str) -> str:
    """How to make ``protocol://`` known to Airflow: a provider package, or ``attach()`` for a
    filesystem that fsspec has but no provider registers (``memory``, ``http`` ...)."""
    if protocol in _FILESYSTEM_PROVIDERS:
        return f"install {_FILESYSTEM_PROVIDERS[protocol]}"
    from fsspec.registry import known_implementations, registry

    if protocol in known_implementations or protocol in registry:
        return (
            f"fsspec has a {protocol}:// filesystem but no installed provider registers it with "
            f'Airflow: attach it first, e.g. airflow.sdk.io.attach("{protocol}", '
            f'fs=fsspec.filesystem("{protocol}")) at the top of the DAG file'
        )
    return (
        f"install the provider that serves {protocol}://, or attach an fsspec filesystem for it "
        f'with airflow.sdk.io.attach("{protocol}", fs=...)'
    )


def is_local(path: ObjectStoragePath) -> bool:
    return (path.protocol or "") in LOCAL_PROTOCOLS


def _safe(part: str) -> str:
    cleaned = _UNSAFE_CHARS.sub("_", part).strip("._") or "_"
    return cleaned[:_MAX_PART_CHARS]


def checkpoint_name(dag_id: str, task_id: str, run_id: str, map_index: int | None) -> str:
    """Relative location of one task instance's checkpoint: ``dag/task/run__map-N__<hash>``.

    Sanitising can map two run ids to the same text (``a:b`` and ``a_b``), so a short hash of
    the exact key keeps them apart while the name stays readable for a human looking at it.
    """
    index = -1 if map_index is None else int(map_index)
    exact = json.dumps([dag_id, task_id, run_id, index])
    digest = hashlib.sha256(exact.encode()).hexdigest()[:12]
    return f"{_safe(dag_id)}/{_safe(task_id)}/{_safe(run_id)}__map{index}__{digest}"


def checkpoint_name_from_context(context: Mapping[str, Any]) -> str:
    """The checkpoint name of the running task instance (from the task context)."""
    ti = context["ti"]
    dag_id = getattr(ti, "dag_id", None) or context["dag"].dag_id
    run_id = getattr(ti, "run_id", None) or context["run_id"]
    map_index = getattr(ti, "map_index", -1)
    return checkpoint_name(str(dag_id), str(ti.task_id), str(run_id), map_index)


class ObjectStorageCheckpointStore:
    """The engine's ``CheckpointStore`` as one JSON object on an ObjectStoragePath.

    Local files are written to a temporary sibling and renamed over the target, so a crash
    leaves the old or the new state, never half of one; on object stores a single PUT
    replaces the whole object, which is atomic per object already.

    :param path: where the JSON object lives (its folder is created on the first save).
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @classmethod
    def for_task(
        cls,
        folder: str | os.PathLike[str] | ObjectStoragePath,
        name: str,
        suffix: str = "",
    ) -> ObjectStorageCheckpointStore:
        """The store of checkpoint ``name`` (see :func:`checkpoint_name`) under ``folder``."""
        return cls(as_storage_path(folder) / f"{name}{suffix}.json")

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            state = json.loads(text)
        except ValueError:
            # A checkpoint that cannot be read is worth less than a fresh start.
            return None
        return state if isinstance(state, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, separators=(",", ":"), sort_keys=True)
        if is_local(self.path):
            target = Path(self.path.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(data, encoding="utf-8")

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def sibling(self, suffix: str) -> ObjectStorageCheckpointStore:
        """Another store next to this one (e.g. one per shard of a split upload)."""
        stem = self.path.name.removesuffix(".json")
        return ObjectStorageCheckpointStore(self.path.parent / f"{stem}{suffix}.json")
