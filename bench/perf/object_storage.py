"""Uploads from object storage: a local S3 server (moto) that counts the bytes it sends, and the
``object-storage`` scenario of ``make bench``.

The scenario puts one object in the server's bucket and uploads it, each run in its own child
process:

* ``ours-s3``: ``ChunkedUploadOperator`` from ``s3://<aws connection>@bucket/key`` (Airflow's
  ObjectStoragePath with s3fs, through an ``aws`` connection whose ``endpoint_url`` is the local
  server). ``setup_rss_bytes`` is the process's peak before the first byte (Airflow, s3fs and
  botocore loaded, the object stat'ed).
* ``engine-s3``: the upload engine alone (no Airflow imported), as the other upload rows measure
  the client: an s3fs filesystem on the server, an ``ObjectSource`` spooled by ``SpooledObject``,
  ``ChunkedUploader``; its peak RSS is the client's, comparable with the 150 MB budget.
* ``ours-local``: the operator reading the same bytes from a local file (the ceiling).

Each S3 run records the bytes the server sent over the whole run (``bytes_fetched``) and their
ratio to the object's size (``fetched_ratio``): the object is fetched once into the spool, which
the md5 and the parts read, so the ratio should be 1.

``python -m bench.perf.object_storage ours-s3|engine-s3|ours-local ...`` is one such child.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from airflow.sdk import Context
    from werkzeug.serving import BaseWSGIServer

    from bench.datagen import DataFile
    from bench.perf.measure import Scenario

OBJECT_STORAGE_SCENARIO = "object-storage-loopback"
BUCKET = "bench"
AWS_CONN_ID = "aws_bench"
FILES_CONN_ID = "files_bench"
PART_SIZE_BYTES = 8 * 1024 * 1024  # the case: 8 MiB parts
# a whole upload may fetch this much more than the object's size
FETCH_SLACK = 1.05
S3_KEY = "testing"  # moto accepts any key; these are not secrets


class CountingS3Server:
    """A moto S3 server on 127.0.0.1 in a thread, counting the body bytes of its GET answers.

    :param port: TCP port (0: a free one).
    """

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._bytes_sent = 0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def bytes_sent(self) -> int:
        """Body bytes of every GET answered so far."""
        with self._lock:
            return self._bytes_sent

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def _count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                with self._lock:
                    self._bytes_sent += len(chunk)
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _app(self, inner: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            answer = inner(environ, start_response)
            return self._count(answer) if environ.get("REQUEST_METHOD") == "GET" else answer

        return app

    def start(self) -> CountingS3Server:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        app = self._app(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> CountingS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def filesystem(self) -> Any:
        """A new s3fs filesystem on this server (no instance cache: each has its own client)."""
        return self.filesystem_on(self.endpoint_url)

    @staticmethod
    def filesystem_on(endpoint_url: str) -> Any:
        """A new s3fs filesystem on the S3 server at ``endpoint_url``."""
        import s3fs

        return s3fs.S3FileSystem(
            key=S3_KEY,
            secret=S3_KEY,
            client_kwargs={"endpoint_url": endpoint_url},
            # the region in the client's config, not client_kwargs: s3fs would send it as a
            # bucket's LocationConstraint, which S3 refuses for us-east-1
            config_kwargs={"region_name": "us-east-1"},
            skip_instance_cache=True,
        )

    def aws_connection_json(self) -> str:
        """An Airflow ``aws`` connection to this server, as an ``AIRFLOW_CONN_*`` value."""
        extra = {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"}
        return json.dumps({"conn_type": "aws", "login": S3_KEY, "password": S3_KEY, "extra": extra})


# -- the child process: one upload ------------------------------------------------------------------


def _upload(source: str) -> dict[str, Any]:
    from airflow_provider_files.operators.files import ChunkedUploadOperator

    operator = ChunkedUploadOperator(
        task_id="upload",
        source=source,
        files_conn_id=FILES_CONN_ID,
        purpose="assistants",
        part_size_bytes=PART_SIZE_BYTES,
        resume=False,
    )
    ti = SimpleNamespace(dag_id="bench", task_id="upload", run_id="bench", map_index=-1, try_number=1)
    if "://" in source:  # the S3 client and its service models, loaded before the figure starts
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(source).stat()
    setup_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    result = operator.execute(cast("Context", {"ti": ti, "run_id": "bench"}))
    return {
        "elapsed_s": time.perf_counter() - started,
        "file_id": result["id"],
        "bytes": result["bytes"],
        "setup_rss_bytes": setup_rss_bytes,
    }


def _upload_with_the_engine(source: str, endpoint_url: str) -> dict[str, Any]:
    """The engine alone: ``source`` (``bucket/key``) from an s3fs filesystem on ``endpoint_url``."""
    from airflow_provider_files.api import FilesClient
    from airflow_provider_files.api.connections import connection_from_env, settings_from_connection
    from airflow_provider_files.uploads import ChunkedUploader, ObjectSource, SpooledObject

    fields = connection_from_env(FILES_CONN_ID)
    assert fields is not None, f"AIRFLOW_CONN_{FILES_CONN_ID.upper()} is not set"
    fs = CountingS3Server.filesystem_on(endpoint_url)
    info = fs.info(source)  # the S3 client and its service models, loaded before the figure starts
    setup_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    with FilesClient(settings_from_connection(fields, context="bench")) as client:
        uploader = ChunkedUploader(client, part_size_bytes=PART_SIZE_BYTES)
        name = source.rsplit("/", 1)[-1]
        spooled = SpooledObject(ObjectSource(fs, source, int(info["size"]), name, str(info.get("ETag"))))
        with spooled:
            result = uploader.upload(spooled, purpose="assistants")
    return {
        "elapsed_s": time.perf_counter() - started,
        "file_id": result.file.id,
        "bytes": result.file.bytes,
        "md5_sent": result.md5,
        "setup_rss_bytes": setup_rss_bytes,
    }


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.object_storage")
    parser.add_argument("contender", choices=["ours-s3", "engine-s3", "ours-local"])
    parser.add_argument("--source", required=True, help="s3://conn@bucket/key, bucket/key or a local path")
    parser.add_argument("--s3-endpoint", help="engine-s3: the S3 server's URL")
    args = parser.parse_args(argv)
    cpu_before = time.process_time()
    if args.contender == "engine-s3":
        outcome = _upload_with_the_engine(args.source, args.s3_endpoint)
    else:
        outcome = _upload(args.source)
    outcome["client_cpu_s"] = round(time.process_time() - cpu_before, 3)
    print(json.dumps(outcome))
    return 0


# -- the scenario, run by the driver --------------------------------------------------------------


def run_object_storage_scenario(scenario: Scenario, data: DataFile, emulator: Any, runs: int) -> None:
    """Upload ``data`` from the local S3 server and from the local disk, ``runs`` times each."""
    from bench import REPO_ROOT
    from bench.connections import connection_env
    from bench.datagen import MB
    from bench.perf.environment import installed, log
    from bench.perf.measure import Run, alternating_rounds, measure_child

    scenario.size_bytes = data.size
    missing = [module for module in ("moto", "s3fs", "airflow.providers.amazon") if not installed(module)]
    if missing:
        for name in scenario.contenders:
            scenario.errors[name] = f"{', '.join(missing)} not installed"
        return
    with CountingS3Server() as server:
        s3 = server.filesystem()
        s3.mkdir(BUCKET)
        key = f"{BUCKET}/{data.path.name}"
        s3.put_file(str(data.path), key)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.update(connection_env(FILES_CONN_ID, emulator.base_url, emulator.api_key))
        env[f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}"] = server.aws_connection_json()
        sources = {"ours-s3": f"s3://{AWS_CONN_ID}@{key}", "engine-s3": key, "ours-local": str(data.path)}
        for round_index, name in alternating_rounds(scenario, scenario.contenders, runs):
            command = [sys.executable, "-m", "bench.perf.object_storage", name, "--source", sources[name]]
            if name == "engine-s3":
                command += ["--s3-endpoint", server.endpoint_url]
            sent_before, s3_cpu_before = server.bytes_sent, time.process_time()
            measured = measure_child(scenario, name, command, env, emulator)
            if measured is None:
                continue
            outcome, rss = measured
            # the S3 server runs in this (otherwise idle) process: its CPU is this process's
            outcome["s3_server_cpu_s"] = round(time.process_time() - s3_cpu_before, 3)
            if name != "ours-local":  # the whole run, every pass included
                outcome["bytes_fetched"] = server.bytes_sent - sent_before
                outcome["fetched_ratio"] = outcome["bytes_fetched"] / data.size
            stored_md5 = emulator.file_md5(outcome["file_id"])
            md5_ok = stored_md5 == data.md5 and outcome.get("bytes") in (None, data.size)
            scenario.runs[name].append(Run(outcome["elapsed_s"], rss, md5_ok, outcome))
            fetched = (
                f", fetched {outcome['bytes_fetched'] / MB:.1f} MB ({outcome['fetched_ratio']:.3f}x the object)"
                if "bytes_fetched" in outcome
                else ""
            )
            log(
                f"{scenario.id} run {round_index + 1}/{runs} {name}: {outcome['elapsed_s']:.2f} s, "
                f"{data.size / outcome['elapsed_s'] / MB:.1f} MB/s, peak RSS {rss / MB:.0f} MB "
                f"({outcome['setup_rss_bytes'] / MB:.0f} MB before the first byte){fetched}, "
                f"CPU client {outcome['client_cpu_s']:.2f} s, emulator {outcome['server_cpu_s']:.2f} s, "
                f"S3 server {outcome['s3_server_cpu_s']:.2f} s, "
                f"md5 {'ok' if md5_ok else 'MISMATCH'}"
            )
            emulator.reset()
    scenario.load_avg = [round(value, 2) for value in os.getloadavg()]


if __name__ == "__main__":
    sys.exit(child_main())
