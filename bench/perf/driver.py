"""``make bench``: our uploads against the peers, on this machine, against the targets of DESIGN.md.

``python -m bench.perf [--quick] [--runs 3] [--sizes chunked=1GiB,large=4GiB,...] [--profiles loopback,wan]``

What it does, in order:

1. installs the peers it compares against if they are missing (``apache-airflow-providers-openai``;
   the ``openai`` SDK is a dev dependency already) and matplotlib for the chart;
2. writes the inputs once (real bytes, see :mod:`bench.datagen`) into a temporary directory;
3. times JSONL validation in this process (``bench.perf.validate.run``) against a plain
   ``json.loads`` loop;
4. for each network profile starts one emulator process (loopback: no limits; WAN: each TCP
   connection capped at 25 MB/s, 40 ms added to every response) and runs every contender as its
   own child process, alternating contenders run by run; each upload's md5, as stored by the
   emulator, must equal the source's, or the figure is marked invalid and the exit code is 1;
5. writes ``bench/results/latest.{md,json,png}``.

MB is 10**6 bytes everywhere (throughput and RSS); MiB/GiB are binary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from bench import REPO_ROOT
from bench.datagen import GIB, MB, MIB, DataFile, size_label, write_batch_file, write_random_file
from bench.perf.batch_results import (
    BATCH_RESULT_CONTENDERS,
    RESULT_SIZE_KEYS,
    result_lines,
    run_batch_results_scenario,
    write_results_input,
)
from bench.perf.environment import CHART_REQUIREMENTS, PEER_REQUIREMENTS, ensure_installed, log, machine_info
from bench.perf.measure import (
    WAN_BANDWIDTH_MBPS,
    WAN_LATENCY_MS,
    Scenario,
    emulator_for,
    run_upload_scenario,
    run_validation_scenario,
)
from bench.perf.object_storage import OBJECT_STORAGE_SCENARIO, run_object_storage_scenario
from bench.perf.report import write_results
from bench.perf.targets import compute_figures

RESULTS_DIR = REPO_ROOT / "bench" / "results"
JSONL_LINE_BYTES = 4096

DEFAULT_SIZES = {
    "chunked": 1 * GIB,  # chunked upload, loopback and WAN
    "large": 4 * GIB,  # chunked upload, loopback, for peak RSS at 4 GiB
    "single": 400 * MB,  # one POST /files request
    "validate": 200 * MB,  # JSONL validation
    "jsonl": 1 * GIB,  # validate + upload, WAN
    "cli": 600 * MIB,  # airflow-files upload vs an SDK script, whole processes, both profiles
    "results": 200 * MB,  # batch results file to download and check (output size)
    "results_small": 50 * MB,  # the same at a quarter of the size, for peak RSS growth
    # chunked upload from a local S3 server (moto copies the whole object for every ranged GET:
    # a larger object makes the server, not the client, the bottleneck)
    "object": 50 * MIB,
}
QUICK_SIZES = {
    "chunked": 256 * MIB,
    "large": 512 * MIB,
    "single": 100 * MB,
    "validate": 50 * MB,
    "jsonl": 256 * MIB,
    "cli": 128 * MIB,
    "results": 40 * MB,
    "results_small": 10 * MB,
    "object": 20 * MIB,
}

UNITS = {"b": 1, "kb": 1000, "mb": MB, "gb": 1000 * MB, "kib": 1024, "mib": MIB, "gib": GIB}


def parse_size(text: str) -> int:
    """``4GiB``, ``400MB``, ``512MiB``, ``1000`` (bytes)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or (match.group(2).lower() not in UNITS and match.group(2)):
        raise argparse.ArgumentTypeError(f"cannot read size {text!r}; use e.g. 1GiB, 400MB, 512MiB")
    return int(float(match.group(1)) * UNITS[match.group(2).lower() or "b"])


def parse_sizes(text: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        if key not in DEFAULT_SIZES or not value:
            raise argparse.ArgumentTypeError(
                f"--sizes item {item!r}: expected KEY=SIZE with KEY one of {', '.join(DEFAULT_SIZES)}"
            )
        sizes[key] = parse_size(value)
    return sizes


def build_scenarios(sizes: dict[str, int], profiles: list[str], only: set[str] | None) -> list[Scenario]:
    all_scenarios = [
        Scenario("validate", f"validate {size_label(sizes['validate'])} JSONL", "local", "validate", []),
        Scenario(
            "chunked-loopback",
            f"chunked {size_label(sizes['chunked'])} loopback",
            "loopback",
            "chunked",
            ["ours-chunked", "sdk-chunked", "ours-chunked-no-md5", "raw-upload", "md5-alone"],
        ),
        Scenario(
            "chunked-large-loopback",
            f"chunked {size_label(sizes['large'])} loopback",
            "loopback",
            "large",
            ["ours-chunked", "sdk-chunked"],
        ),
        Scenario(
            "single-loopback",
            f"single request {size_label(sizes['single'])} loopback",
            "loopback",
            "single",
            ["ours-hook-single", "sdk-single", "airflow-openai-hook-single"],
        ),
        Scenario(
            "chunked-wan",
            f"chunked {size_label(sizes['chunked'])} WAN",
            "wan",
            "chunked",
            ["ours-chunked", "sdk-chunked", "raw-upload"],
        ),
        *(
            Scenario(
                f"cli-{profile}",
                f"CLI end to end {size_label(sizes['cli'])} {label}",
                profile,
                "cli",
                ["ours-cli", "sdk-script"],
            )
            for profile, label in (("loopback", "loopback"), ("wan", "WAN"))
        ),
        Scenario(
            "validate-upload-wan",
            f"validate+upload {size_label(sizes['jsonl'])} JSONL WAN",
            "wan",
            "jsonl",
            ["ours-validate-upload", "ours-chunked", "md5-alone"],
            purpose="batch",
            mime_type="application/jsonl",
        ),
        Scenario(
            OBJECT_STORAGE_SCENARIO,
            f"chunked {size_label(sizes['object'])} from a local S3 server, loopback",
            "loopback",
            "object",
            ["ours-s3", "engine-s3", "ours-local"],
        ),
        *(
            Scenario(
                f"batch-results{suffix}-loopback",
                f"batch results {size_label(sizes[key])} loopback",
                "loopback",
                key,
                list(BATCH_RESULT_CONTENDERS),
            )
            for key, suffix in (("results", ""), ("results_small", "-small"))
        ),
    ]
    return [
        scenario
        for scenario in all_scenarios
        if (scenario.profile in profiles or scenario.profile == "local")
        and (only is None or scenario.id in only)
    ]


def make_inputs(workdir: Path, sizes: dict[str, int], needed: set[str]) -> dict[str, DataFile]:
    inputs: dict[str, DataFile] = {}
    for key, seed in (("chunked", 11), ("large", 12), ("single", 13), ("cli", 14), ("object", 15)):
        if key in needed:
            started = time.perf_counter()
            inputs[key] = write_random_file(workdir / f"{key}.bin", sizes[key], seed)
            log(f"wrote {key}.bin ({size_label(sizes[key])}) in {time.perf_counter() - started:.1f} s")
    for key, seed in (("validate", 21), ("jsonl", 22)):
        if key in needed:
            started = time.perf_counter()
            inputs[key] = write_batch_file(
                workdir / f"{key}.jsonl", max_bytes=sizes[key], line_bytes=JSONL_LINE_BYTES, seed=seed
            )
            log(
                f"wrote {key}.jsonl ({inputs[key].size / MB:.0f} MB, {inputs[key].lines} lines) "
                f"in {time.perf_counter() - started:.1f} s"
            )
    for key in RESULT_SIZE_KEYS:
        if key in needed:
            inputs[key] = write_results_input(workdir / f"{key}.jsonl", sizes[key])
            log(f"wrote {key}.jsonl ({inputs[key].lines} requests for a {size_label(sizes[key])} output)")
    return inputs


def plan_notes(sizes: dict[str, int], runs: int, scenarios: list[Scenario]) -> list[str]:
    notes = [
        f"- Runs per contender: {runs}, alternating contenders (A B A B ...). Wall time is the upload "
        "call inside the child process (interpreter start and imports excluded).",
        "- Each upload contender runs as its own child process; peak RSS is that process's maximum "
        "resident set size as reported by GNU `/usr/bin/time -f %M` (the child's own `VmHWM` where GNU "
        "time is missing), so it includes the interpreter and its imports.",
        "- Emulator: `airflow-files emulator` as a separate process on 127.0.0.1 (uvicorn), one per profile. "
        f"WAN profile: each TCP connection capped at {WAN_BANDWIDTH_MBPS:.0f} MB/s both ways, "
        f"{WAN_LATENCY_MS:.0f} ms added before every response. Loopback: no limits. Client and emulator "
        "share the 2 cores, so loopback figures are bounded by the emulator's own CPU use too.",
        "- Inputs are real files, written once per run (random 64 MiB block with a distinct header per "
        "block; JSONL lines of ~4 KB with unique custom_id values); they sit in the page cache.",
        "- ours-chunked: `ChunkedUploader(FilesClient(settings)).upload(path, ...)` with the engine's "
        "defaults (part size, concurrency, md5 computed and sent on complete, so the emulator verifies "
        "it); ours-chunked-no-md5: the same with `send_md5=False`; sdk-chunked: "
        "`OpenAI(...).uploads.upload_file_chunked(file=Path)` (sequential 64 MiB parts, no md5).",
        "- raw-upload (the ceiling): the Uploads API over plain `http.client` sockets with the engine's part "
        "size and connections, part bytes sent with `os.sendfile`, no md5, no retries: what the emulator "
        "ingests from a client that does nothing else. md5-alone: `hashlib.md5` over the file, nothing "
        "else (the CPU the md5 costs). Client CPU is user + system seconds of the call (every thread and "
        "waited-for child, validation workers included), per GiB of input.",
        "- CLI end to end: whole processes timed from start to exit (the JSON is printed last): "
        "`airflow-files upload FILE --files-conn-id bench_cli` with the connection in `AIRFLOW_CONN_BENCH_CLI` "
        "(md5 computed and sent) vs `bench/perf/sdk_script.py` (`OpenAI().uploads.upload_file_chunked`, "
        "printing the file as JSON); their CPU is the whole process's.",
        "- Single request: `FilesHook.upload_file(path)` vs `OpenAI(...).files.create(file=open(path))` vs "
        "`OpenAIHook.upload_file(path)` (apache-airflow-providers-openai), each through an Airflow "
        "connection from an `AIRFLOW_CONN_*` variable where it is a hook.",
        "- Validation: `bench.perf.validate.run(path)` (all rules, default limits and settings: worker "
        "processes from three cores up), `run(path, workers=1)` (serial: one parsing core, md5 on a "
        "thread) and `run(path, workers=2)` (two worker processes parse line-aligned 4 MiB ranges while "
        "the driver reads and hashes) vs a `json.loads` loop adding each custom_id to a set, all in the "
        "driver process, file in page cache.",
        "- Validate + upload: `ensure_valid_batch_file` (size/line limits lifted: the 1 GiB file is above "
        "the API's 200 MB batch limit on purpose) then the engine upload given the md5 taken while "
        "validating (as the JSONL operator does), vs the engine upload alone (hashing as it sends), same file.",
        "- Batch results: one batch per size made on the emulator before the runs "
        f"({result_lines(sizes['results']):,} requests whose `max_tokens` sets the output's size); "
        "ours-collect: `collect_results` (`batches/collect.py`) through `FilesHook`'s client from an "
        "`AIRFLOW_CONN_*` connection, input ids downloaded, output streamed to a file through the "
        "custom_id accounting; sdk-content: `OpenAI().batches.retrieve` + `files.content(...)` "
        "written to a file + `json.loads` per line into a set of ids; raw-download (the ceiling): "
        "`httpx` streaming the output to /dev/null. Sizes are the output file's; each written file's "
        "md5 must equal the emulator's.",
        "- Object storage: `ChunkedUploadOperator` (8 MiB parts, default concurrency) from "
        "`s3://<aws connection>@bucket/key` (ObjectStoragePath, apache-airflow-providers-amazon with "
        "s3fs; the connection's `endpoint_url` is a moto S3 server in the driver process that counts "
        "the body bytes it sends); engine-s3: the upload engine alone (no Airflow) from an s3fs "
        "filesystem on the same server, as the other upload rows measure the client; vs the operator "
        "reading the same bytes from a local file (the ceiling). The object is fetched once into a "
        "spool file that the md5 and the parts read: bytes fetched is the server's count over the "
        "whole run; peak RSS is shown with the peak before the first byte (imports and setup).",
        "- Sizes: " + ", ".join(f"{key}={size_label(value)}" for key, value in sizes.items()) + ". "
        "The 4 GiB upload runs on loopback only (it is there for peak RSS; the SDK needs about 45 s per "
        "GiB on the WAN profile), the WAN figures use the 1 GiB file.",
        "- Scenarios: " + ", ".join(scenario.id for scenario in scenarios) + ".",
    ]
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="smaller files (for a first look); 1 run unless --runs"
    )
    parser.add_argument(
        "--sizes", type=parse_sizes, default={}, help="e.g. chunked=1GiB,large=4GiB,single=400MB"
    )
    parser.add_argument("--profiles", default="loopback,wan", help="loopback,wan (default both)")
    parser.add_argument("--only", default="", help="comma-separated scenario ids to run (default all)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="where latest.{md,json,png} go")
    parser.add_argument("--workdir", type=Path, default=None, help="where inputs and emulator data go")
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers")
    parser.add_argument("--no-chart", action="store_true", help="do not draw latest.png")
    args = parser.parse_args(argv)
    raw_argv = " ".join(sys.argv[1:] if argv is None else argv)

    sizes = dict(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    sizes.update(args.sizes)
    runs = args.runs if args.runs or not args.quick else 1
    if runs < 1:
        parser.error("--runs must be at least 1")
    profiles = [item.strip() for item in args.profiles.split(",") if item.strip()]
    if unknown := set(profiles) - {"loopback", "wan"}:
        parser.error(f"unknown profile(s) {', '.join(sorted(unknown))}")
    only = {item.strip() for item in args.only.split(",") if item.strip()} or None

    started = time.monotonic()
    if not args.no_install:
        ensure_installed(PEER_REQUIREMENTS, "airflow.providers.openai")
        ensure_installed(CHART_REQUIREMENTS, "matplotlib")
    machine = machine_info()
    scenarios = build_scenarios(sizes, profiles, only)
    needed = {scenario.input_key for scenario in scenarios}
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine['load_avg_start']}")

    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="airflow-files-bench-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        inputs = make_inputs(workdir, sizes, needed)
        for scenario in scenarios:
            if scenario.profile == "local":
                run_validation_scenario(scenario, inputs[scenario.input_key], runs)
        for profile in profiles:
            todo = [scenario for scenario in scenarios if scenario.profile == profile]
            if not todo:
                continue
            log(f"starting the emulator ({profile})")
            with emulator_for(profile, workdir / f"emulator-{profile}") as emulator:
                for scenario in todo:
                    if scenario.id == OBJECT_STORAGE_SCENARIO:
                        run_object_storage_scenario(scenario, inputs[scenario.input_key], emulator, runs)
                    elif scenario.input_key in RESULT_SIZE_KEYS:
                        run_batch_results_scenario(
                            scenario, inputs[scenario.input_key], emulator, runs, workdir / "results-runs"
                        )
                    else:
                        run_upload_scenario(scenario, inputs[scenario.input_key], emulator, runs, workdir)
    machine["load_avg_end"] = [round(value, 2) for value in os.getloadavg()]
    machine["bench_minutes"] = round((time.monotonic() - started) / 60, 1)

    by_id = {scenario.id: scenario for scenario in scenarios}
    figures = compute_figures(by_id)
    plan = {
        "argv": raw_argv,
        "runs": runs,
        "sizes": sizes,
        "profiles": profiles,
        "notes": [*plan_notes(sizes, runs, scenarios), f"- Whole bench took {machine['bench_minutes']} min."],
    }
    paths = write_results(args.output, machine, plan, by_id, figures, chart=not args.no_chart)
    for figure in figures:
        log(
            f"{figure.what}: ours {figure.ours} | peer {figure.peer} | {figure.ratio} | {figure.target}: {figure.met}"
        )
    log("wrote " + ", ".join(str(path) for path in paths.values()))
    invalid = any(
        not run.md5_ok for scenario in scenarios for runs_ in scenario.runs.values() for run in runs_
    )
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
