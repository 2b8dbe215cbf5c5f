"""Turn an operator's ``source`` (a local path or any ObjectStoragePath) into an engine source."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

from airflow.sdk import ObjectStoragePath

from airflow_provider_files.operators._checkpoint import CONFIG_SECTION, as_storage_path, is_local
from airflow_provider_files.uploads import LocalFileSource, ObjectSource, SpooledObject, UploadSource

SourceLike = str | os.PathLike[str] | ObjectStoragePath

# stat keys that change when an object's content changes, across fsspec backends
# (s3fs: ETag/LastModified, gcsfs: md5Hash/generation/updated, adlfs: etag/last_modified).
_VERSION_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "crc32c",
    "generation",
    "version_id",
    "VersionId",
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "modified",
)


def describe(source: SourceLike) -> str:
    """The source as text for log lines and errors (a ``conn@`` userinfo is not part of it)."""
    return str(source) if isinstance(source, ObjectStoragePath) else os.fspath(source)


def object_fingerprint(info: Mapping[str, Any]) -> str:
    """A text that changes when the object behind an fsspec ``info()``/``stat()`` changes."""
    parts = [f"size={info.get('size')}"]
    parts += [f"{key}={info[key]}" for key in _VERSION_KEYS if info.get(key) not in (None, "")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def open_upload_source(source: SourceLike) -> UploadSource:
    """An engine source reading ``source``: local files through their own handles, object storage
    by ranged reads (each byte fetched once per pass, no handle shared between parts).

    :param source: a local path, a ``file://``/``s3://``/``gs://``... URL or an ObjectStoragePath.
    :raises FileNotFoundError: when there is nothing at ``source``.
    :raises IsADirectoryError: when ``source`` is a folder.
    """
    path = as_storage_path(source)
    if is_local(path):
        local = Path(path.path)
        if not local.exists():
            raise FileNotFoundError(f"source file not found: {local}")
        if local.is_dir():
            raise IsADirectoryError(f"source is a directory, not a file: {local}")
        return cast(UploadSource, LocalFileSource(local))
    return cast(UploadSource, _object_source(path))


#: How to choose the spool folder, said when it has too little room.
SPOOL_FOLDER_HINT = (
    f"set [{CONFIG_SECTION}] spool_folder (AIRFLOW__OPENAI_FILES__SPOOL_FOLDER) to a local folder with room"
)


def spool_folder() -> str | None:
    """``[openai_files] spool_folder`` if configured, else ``None`` (the system's temporary folder)."""
    from airflow_provider_files._airflow_compat import conf

    configured = conf.get(CONFIG_SECTION, "spool_folder", fallback=None)
    return str(configured) if configured else None


@contextmanager
def spooled_upload_source(source: SourceLike) -> Iterator[UploadSource]:
    """An engine source reading ``source`` in which no byte is fetched twice: a local file as is,
    an object through a :class:`~airflow_provider_files.uploads.SpooledObject` (fetched once into
    a spool file under :func:`spool_folder` when first read, or on ``start()``), which is removed
    when the block ends, however it ends.

    :param source: a local path, a ``file://``/``s3://``/``gs://``... URL or an ObjectStoragePath.
    :raises FileNotFoundError: when there is nothing at ``source``.
    :raises IsADirectoryError: when ``source`` is a folder.
    """
    opened = open_upload_source(source)
    if not isinstance(opened, ObjectSource):
        yield opened
        return
    with SpooledObject(opened, spool_folder(), space_hint=SPOOL_FOLDER_HINT) as spooled:
        yield cast(UploadSource, spooled)


def _object_source(path: ObjectStoragePath) -> ObjectSource:
    try:
        info = dict(path.stat())
    except FileNotFoundError:
        raise FileNotFoundError(f"source object not found: {describe(path)}") from None
    if info.get("type") == "directory":
        raise IsADirectoryError(f"source is a folder, not an object: {describe(path)}")
    size = info.get("size")
    if not isinstance(size, int):
        size = int(path.size())
    return ObjectSource(
        path.fs,
        path.path,
        size,
        name=path.name,
        fingerprint=object_fingerprint(info),
        label=describe(path),
    )


class ObjectFile:
    """An object as the validator and the sharder read it: ``open("rb")`` fetches exactly what is
    read (an ObjectStoragePath's own ``open`` reads ahead: 50 MiB blocks on S3), or reads the
    object's spool, and ``str()`` is its URL, which their messages name.

    :param source: the object, or its spool.
    """

    def __init__(self, source: ObjectSource | SpooledObject) -> None:
        self.source = source

    def __str__(self) -> str:
        return str(self.source)

    def __repr__(self) -> str:
        return f"ObjectFile({self.source!r})"

    def open(self, mode: str = "rb") -> IO[bytes]:
        return self.source.open(mode)


def readable(source: SourceLike | UploadSource) -> Path | ObjectFile:
    """``source`` as something with ``open("rb")``: a plain local path when it is local (the
    fastest reader), the spool of a spooled object, else an :class:`ObjectFile` reading by byte
    ranges."""
    if isinstance(source, LocalFileSource):
        return source.path
    if isinstance(source, (SpooledObject, ObjectSource)):
        return ObjectFile(source)
    path = as_storage_path(cast(SourceLike, source))
    return Path(path.path) if is_local(path) else ObjectFile(_object_source(path))
