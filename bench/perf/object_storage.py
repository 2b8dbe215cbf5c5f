"""Uploads from object storage: a local S3 server (moto) that counts the bytes it sends, and the
``object-storage`` scenario of ``make bench``.

The scenario puts one object in the server's bucket and uploads it with ``ChunkedUploadOperator``
from ``s3://<aws connection>@bucket/key`` (Airflow's ObjectStoragePath with s3fs, through an
``aws`` connection whose ``endpoint_url`` is the local server), each run in its own child
process; the ceiling is the same operator reading the same bytes from a local file. Each S3 run
records the bytes the server sent for it (``bytes_fetched``): the md5 pass and the parts each
read the object once, so the figure is about twice the size (``fetched_ratio`` is per pass).

``python -m bench.perf.object_storage ours-s3|ours-local ...`` is one such child.
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
# a full pass over the object may fetch this much more than its size (ranged reads at part edges)
FETCH_SLACK = 1.05
PASSES = 2  # ChunkedUploadOperator reads the object once for the md5 and once for the parts
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
        import s3fs

        return s3fs.S3FileSystem(
            key=S3_KEY,
            secret=S3_KEY,
            client_kwargs={"endpoint_url": self.endpoint_url},
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


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.object_storage")
    parser.add_argument("contender", choices=["ours-s3", "ours-local"])
    parser.add_argument("--source", required=True, help="s3://conn@bucket/key or a local path")
    args = parser.parse_args(argv)
    cpu_before = time.process_time()
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
    from bench.perf.measure import ContenderFailed, Run, alternating_rounds, run_child

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
        sources = {"ours-s3": f"s3://{AWS_CONN_ID}@{key}", "ours-local": str(data.path)}
        for round_index, name in alternating_rounds(scenario, scenario.contenders, runs):
            command = [sys.executable, "-m", "bench.perf.object_storage", name, "--source", sources[name]]
            sent_before = server.bytes_sent
            try:
                outcome, rss = run_child(command, env)
            except (ContenderFailed, ValueError, IndexError) as error:
                scenario.errors[name] = str(error)
                log(f"{scenario.id}: {name} failed: {error}")
                continue
            if name == "ours-s3":
                outcome["bytes_fetched"] = server.bytes_sent - sent_before
                outcome["fetched_ratio"] = outcome["bytes_fetched"] / data.size / PASSES
            stored_md5 = emulator.file_md5(outcome["file_id"])
            md5_ok = stored_md5 == data.md5 and outcome.get("bytes") in (None, data.size)
            scenario.runs[name].append(Run(outcome["elapsed_s"], rss, md5_ok, outcome))
            fetched = (
                f", fetched {outcome['bytes_fetched'] / MB:.1f} MB ({PASSES} passes)"
                if "bytes_fetched" in outcome
                else ""
            )
            log(
                f"{scenario.id} run {round_index + 1}/{runs} {name}: {outcome['elapsed_s']:.2f} s, "
                f"{data.size / outcome['elapsed_s'] / MB:.1f} MB/s, peak RSS {rss / MB:.0f} MB "
                f"({outcome['setup_rss_bytes'] / MB:.0f} MB before the upload){fetched}, "
                f"md5 {'ok' if md5_ok else 'MISMATCH'}"
            )
            emulator.reset()
    scenario.load_avg = [round(value, 2) for value in os.getloadavg()]


if __name__ == "__main__":
    sys.exit(child_main())
