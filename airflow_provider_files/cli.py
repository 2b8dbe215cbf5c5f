"""The ``airflow-files`` console script.

Each sub-command lives beside the layer it drives and exposes a parser-configuring function
and a runner returning the exit code; this module only wires them, importing each lazily so
that ``airflow-files validate`` never pays for Airflow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    module: str
    help: str
    configure: str = "configure_parser"
    run: str = "run"


COMMANDS: dict[str, Command] = {
    "validate": Command("airflow_provider_files.jsonl.cli", "validate a Batch JSONL file"),
    "shard": Command(
        "airflow_provider_files.jsonl.cli",
        "split a Batch JSONL file into valid batch-sized files",
        "configure_shard_parser",
        "run_shard",
    ),
    "upload": Command(
        "airflow_provider_files.upload_cli", "upload a file through a connection, outside Airflow"
    ),
    "batch": Command(
        "airflow_provider_files.batch_cli",
        "create, inspect, download and cancel Batch jobs, outside Airflow",
    ),
    "emulator": Command("airflow_provider_files.emulator.cli", "run the local Files/Uploads API emulator"),
    "demo": Command(
        "airflow_provider_files.demo", "run the whole batch loop in Airflow against the emulator"
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="airflow-files", description="Upload files to OpenAI-compatible Files and Uploads APIs."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, command in COMMANDS.items():
        command_parser = sub.add_parser(name, help=command.help, description=command.help)
        command_parser.set_defaults(_command=command)
        # Only the command being run is configured, so one command never imports the others.
        if args_list[:1] == [name]:
            getattr(importlib.import_module(command.module), command.configure)(command_parser)
    args = parser.parse_args(args_list)
    command = args._command
    return int(getattr(importlib.import_module(command.module), command.run)(args))


if __name__ == "__main__":
    sys.exit(main())
