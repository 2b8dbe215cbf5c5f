"""The chunked engine's tail, measured: md5 left at ``complete``, complete latency, link fill, RSS.

``python -m bench.perf.engine_tail [--profile wan] [--size 1GiB] [--runs 1] [--concurrency 8] [--with-ceiling]``

For each run: one emulator process (loopback, or the WAN profile of ``make bench``: each TCP
connection capped at 25 MB/s, 40 ms added to every response), one upload by the engine at its
defaults in a child process (its peak RSS, ``VmHWM``, read by the child), then from the emulator's
introspection the bytes its md5 still had to hash when ``complete`` arrived, the bytes it
re-read, and how long the check took. Prints one JSON line per run, with the WAN ceiling
(connections x per-connection cap) next to the throughput.

With ``--with-ceiling`` each run is preceded by the ceiling on this machine at this moment: the
same bytes in the largest parts the API takes, no md5 (what the link and the CPUs allow a client that
does nothing else). The data is generated once (incompressible, :func:`bench.datagen.write_random_file`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.datagen import MB, write_random_file
from bench.perf.driver import parse_size
from bench.perf.measure import WAN_BANDWIDTH_MBPS, emulator_for

PURPOSE = "assistants"


def child(args: argparse.Namespace) -> int:
    """One upload at the engine's defaults; prints its timings as JSON."""
    from airflow_provider_files.api import ClientSettings, FilesClient
    from airflow_provider_files.uploads import ChunkedUploader
    from bench.perf.contenders import peak_rss_bytes

    settings = ClientSettings(api_key=args.api_key, base_url=args.base_url, context="bench")
    with FilesClient(settings) as client:
        complete_s: list[float] = []
        complete = client.complete_upload

        def timed_complete(*call_args: Any, **call_kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return complete(*call_args, **call_kwargs)
            finally:
                complete_s.append(time.perf_counter() - started)

        client.complete_upload = timed_complete
        options: dict[str, Any] = {}
        if args.concurrency:
            options["concurrency"] = args.concurrency
        uploader = ChunkedUploader(client, **options)
        started = time.perf_counter()
        result = uploader.upload(args.file, purpose=PURPOSE)
        elapsed_s = time.perf_counter() - started
    outcome = {
        "elapsed_s": elapsed_s,
        "complete_s": sum(complete_s),
        "file_id": result.file.id,
        "upload_id": result.upload_id,
        "parts": result.parts_total,
        "md5": result.md5,
        "concurrency": uploader.concurrency,
        "vm_hwm_bytes": peak_rss_bytes(),
    }
    sys.stdout.write(json.dumps(outcome) + "\n")
    return 0


def raw_child(args: argparse.Namespace) -> int:
    """The ceiling: the largest parts the API takes, ``concurrency`` at a time, no md5."""
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_files.api import ClientSettings, FileRange, FilesClient
    from airflow_provider_files.uploads.limits import MAX_PART_SIZE_BYTES, even_part_size
    from bench.perf.contenders import peak_rss_bytes

    concurrency = args.concurrency or 8
    size = Path(args.file).stat().st_size
    # the largest parts the API takes, in whole waves
    share = even_part_size(size, concurrency, MAX_PART_SIZE_BYTES)
    parts = -(-size // share)
    settings = ClientSettings(api_key=args.api_key, base_url=args.base_url, context="bench")
    with FilesClient(settings, max_connections=concurrency + 2) as client:
        started = time.perf_counter()
        upload = client.create_upload("source.bin", PURPOSE, size, "application/octet-stream")

        def send(index: int) -> str:
            offset = index * share
            body = FileRange(Path(args.file), offset, min(share, size - offset))
            return client.add_upload_part(upload.id, body).id

        with ThreadPoolExecutor(concurrency) as pool:
            part_ids = list(pool.map(send, range(parts)))
        completed = client.complete_upload(upload.id, part_ids)
        elapsed_s = time.perf_counter() - started
    assert completed.file is not None
    outcome = {
        "elapsed_s": elapsed_s,
        "complete_s": 0.0,
        "file_id": completed.file.id,
        "upload_id": upload.id,
        "parts": parts,
        "md5": None,
        "concurrency": concurrency,
        "vm_hwm_bytes": peak_rss_bytes(),
    }
    sys.stdout.write(json.dumps(outcome) + "\n")
    return 0


def run_once(
    emulator: Any, path: Path, size: int, md5: str, args: argparse.Namespace, *, raw: bool
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.perf.engine_tail",
        "--raw-child" if raw else "--child",
        "--base-url",
        emulator.base_url,
        "--api-key",
        emulator.api_key,
        "--file",
        str(path),
        "--concurrency",
        str(args.concurrency or 0),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    status = process.wait()
    if status != 0:
        raise SystemExit(f"the upload failed (status {status})")
    outcome = json.loads(output)
    upload = emulator.stats()["uploads"][outcome["upload_id"]]
    stored_md5 = emulator.file_md5(outcome["file_id"])
    concurrency = outcome["concurrency"]
    row = {
        "profile": args.profile,
        "bytes": size,
        "elapsed_s": round(outcome["elapsed_s"], 3),
        "mb_per_s": round(size / outcome["elapsed_s"] / MB, 1),
        "parts": outcome["parts"],
        "concurrency": concurrency,
        "complete_s_client": round(outcome["complete_s"], 3),
        "complete_s_server": upload["md5_complete_s"],
        "md5_bytes_hashed_at_complete": upload["md5_bytes_hashed_at_complete"],
        "md5_bytes_reread_at_complete": upload["md5_bytes_reread_at_complete"],
        # VmHWM read by the child itself: wait4's figure also counts the parent's pages at fork
        "peak_rss_mb": round((outcome.get("vm_hwm_bytes") or 0) / MB, 1),
        "md5_ok": stored_md5 == md5 and outcome["md5"] in (md5, None),
        "contender": "raw" if raw else "engine",
    }
    if args.profile == "wan":
        ceiling = concurrency * WAN_BANDWIDTH_MBPS
        row["ceiling_mb_per_s"] = ceiling
        row["fill"] = round(row["mb_per_s"] / ceiling, 3)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.engine_tail")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--with-ceiling",
        action="store_true",
        help="before each engine run, the ceiling: 64 MiB parts, no md5",
    )
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    parser.add_argument("--file")
    parser.add_argument("--profile", default="wan", choices=("loopback", "wan"))
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=0, help="0: the engine's default")
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.raw_child:
        return raw_child(args)
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="engine-tail-") as folder:
        data = write_random_file(Path(folder) / "source.bin", size)
        for _ in range(args.runs):
            for raw in (True, False) if args.with_ceiling else (False,):
                with emulator_for(args.profile, Path(folder) / "emulator") as emulator:
                    row = run_once(emulator, data.path, data.size, data.md5, args, raw=raw)
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
