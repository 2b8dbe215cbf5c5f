"""Upload checkpoints that survive task retries, kept on any ObjectStoragePath.

XCom is wiped when a task is retried, so what an upload needs to resume (upload id, parts
sent, the finished file) is written beside the run instead: one JSON object per
``(dag_id, task_id, run_id, map_index)`` under a folder the user may point at S3, GCS or a
shared disk. The default is local (``$AIRFLOW_HOME/upload_checkpoints``), which resumes a
retry that runs on the same machine; with an executor that runs a retry elsewhere, the
first use warns (once per process) that the folder should be shared.

A task instance's checkpoints are removed once it has succeeded (no retry will need them);
those of tries that failed for good are removed after ``[openai_files]
checkpoint_retention_days`` (checked once per process and folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath

CHECKPOINT_FOLDER_NAME = "upload_checkpoints"
LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
CONFIG_SECTION = "openai_files"
DEFAULT_RETENTION_DAYS = 7.0
SECONDS_PER_DAY = 86400.0
# Executors that run every try of a task on this machine, where a local folder is found again.
LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor", "debug"})
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_PART_CHARS = 80


def default_checkpoint_folder() -> str:
    """``[openai_files] checkpoint_folder`` if configured, else ``$AIRFLOW_HOME/upload_checkpoints``."""
    from airflow_provider_files._airflow_compat import conf

    configured = _configured_folder()
    if configured:
        return configured
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


# -- housekeeping: where retries run, and removing what no retry needs ---------------------------

_CHECKPOINT_FILE = re.compile(r"__map-?\d+__[0-9a-f]{12}.*\.(json|tmp)$")
_MODIFIED_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modificationTime", "created")
_warned_folders: set[str] = set()
_pruned_folders: set[str] = set()


def executor_names(task_executor: str | None = None) -> list[str]:
    """Class names of the executors a task may run on: its own ``executor``, else every one of
    ``[core] executor`` (``CeleryExecutor``, ``module.path.Class`` or ``alias:module.path.Class``)."""
    from airflow_provider_files._airflow_compat import conf

    text = task_executor or conf.get("core", "executor", fallback="") or ""
    names = []
    for item in str(text).split(","):
        item = item.strip()
        if item:
            names.append(item.rsplit(":", 1)[-1].rsplit(".", 1)[-1])
    return names


def warn_if_not_shared(folder: ObjectStoragePath, log: Any, task_executor: str | None = None) -> bool:
    """Warn (once per process and folder) that the default, local checkpoint folder is not seen
    by a retry that an executor such as Celery or Kubernetes runs on another machine. True if it
    warned. A folder the user chose (even a local path: a shared mount) is taken as deliberate."""
    if not is_local(folder) or str(folder) in _warned_folders:
        return False
    remote = [name for name in executor_names(task_executor) if name not in LOCAL_EXECUTORS]
    if not remote:
        return False
    _warned_folders.add(str(folder))
    log.warning(
        "Checkpoints (of uploads and batch ids) are kept in the local folder %s, but the executor "
        "(%s) may run a retry on another worker, which will not find them and starts over. Point "
        "[openai_files] checkpoint_folder (AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER) or the "
        "operator's checkpoint_folder at shared storage, e.g. s3://bucket/airflow/upload-checkpoints",
        folder.path,
        ", ".join(remote),
    )
    return True


def retention_s() -> float | None:
    """``[openai_files] checkpoint_retention_days`` in seconds; ``None`` (keep for ever) when 0."""
    from airflow_provider_files._airflow_compat import conf

    text = conf.get(CONFIG_SECTION, "checkpoint_retention_days", fallback=None)
    try:
        days = DEFAULT_RETENTION_DAYS if text in (None, "") else float(text)
    except ValueError:
        raise ValueError(
            f"[{CONFIG_SECTION}] checkpoint_retention_days must be a number of days, got {text!r}"
        ) from None
    return days * SECONDS_PER_DAY if days > 0 else None


def _modified_at(info: Mapping[str, Any]) -> float | None:
    """When an fsspec entry was last written (unix seconds), or None if the filesystem does not say."""
    import datetime

    for key in _MODIFIED_KEYS:
        value = info.get(key)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def prune_checkpoints(
    folder: str | os.PathLike[str] | ObjectStoragePath, max_age_s: float, *, now: float | None = None
) -> int:
    """Remove the checkpoints under ``folder`` last written more than ``max_age_s`` ago (those of
    tries that failed for good); files that are not checkpoints, or cannot be dated, are kept.

    :return: how many files were removed.
    """
    root = as_storage_path(folder)
    now = time.time() if now is None else now
    try:
        found = root.fs.find(root.path, detail=True)
    except FileNotFoundError:
        return 0
    removed = 0
    for key, info in found.items():
        modified = _modified_at(info)
        if not _CHECKPOINT_FILE.search(str(key)) or modified is None or now - modified <= max_age_s:
            continue
        with contextlib.suppress(FileNotFoundError):
            root.fs.rm_file(key)
            removed += 1
    return removed


def _configured_folder() -> str | None:
    from airflow_provider_files._airflow_compat import conf

    configured = conf.get(CONFIG_SECTION, "checkpoint_folder", fallback=None)
    return str(configured) if configured else None


def prepare_checkpoint_folder(
    chosen: str | os.PathLike[str] | ObjectStoragePath | None, log: Any, task_executor: str | None = None
) -> ObjectStoragePath:
    """The checkpoint folder of a task (``chosen`` by the operator, else configured, else the
    default), at its first use in this process: a warning if it is the local default while
    retries may run elsewhere, and checkpoints older than the retention removed."""
    explicit = chosen or _configured_folder()
    path = as_storage_path(explicit or default_checkpoint_folder())
    if not explicit:
        warn_if_not_shared(path, log, task_executor)
    if str(path) not in _pruned_folders:
        _pruned_folders.add(str(path))
        _prune_quietly(path, log)
    return path


def _prune_quietly(path: ObjectStoragePath, log: Any) -> None:
    try:
        max_age_s = retention_s()
        if max_age_s is None:
            return
        removed = prune_checkpoints(path, max_age_s)
    except Exception as exc:  # housekeeping never fails a task
        log.warning("Could not remove old checkpoints under %s: %s", path, exc)
        return
    if removed:
        log.info(
            "Removed %d checkpoint(s) older than %g day(s) under %s",
            removed,
            max_age_s / SECONDS_PER_DAY,
            path,
        )


def remove_task_checkpoints(folder: str | os.PathLike[str] | ObjectStoragePath, name: str, log: Any) -> int:
    """Remove every checkpoint of one task instance (see :func:`checkpoint_name`): its own, its
    shards' and any temporary file a crash left. Never raises: the task has succeeded already.

    :return: how many files were removed.
    """
    try:
        base = as_storage_path(folder) / name
        parent, stem = base.parent, base.name
        try:
            entries = list(parent.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        removed = 0
        for entry in entries:
            if entry.name.startswith((stem, f".{stem}")):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
        if is_local(parent):
            # the task's and the DAG's folders, once nothing else is left in them
            for empty in (Path(parent.path), Path(parent.path).parent):
                with contextlib.suppress(OSError):
                    empty.rmdir()
    except Exception as exc:
        log.warning("Could not remove the checkpoints of this task instance under %s: %s", folder, exc)
        return 0
    if removed:
        log.info("Removed %d checkpoint(s) of this task instance: it succeeded, no retry needs them", removed)
    return removed


def add_success_callback(existing: Any, callback: Callable[[Any], None]) -> list[Any]:
    """An ``on_success_callback`` value that runs what the user gave, then ``callback``."""
    if existing is None:
        return [callback]
    if isinstance(existing, (list, tuple)):
        return [*existing, callback]
    return [existing, callback]
