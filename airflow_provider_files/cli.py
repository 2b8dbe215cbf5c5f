"""The ``airflow-files`` console script.

Each sub-command lives beside the layer it drives and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int``; this module only wires them,
importing each lazily so that ``airflow-files validate`` never pays for Airflow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# sub-command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("airflow_provider_files.jsonl.cli", "validate a Batch JSONL file"),
    "emulator": ("airflow_provider_files.emulator.cli", "run the local Files/Uploads API emulator"),
    "upload": ("airflow_provider_files.upload_cli", "upload a file through a connection, outside Airflow"),
    "demo": ("airflow_provider_files.demo", "run the example DAG end to end against the emulator"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="airflow-files")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(_module=module_name)
        if args_list[:1] == [name]:
            importlib.import_module(module_name).configure_parser(command_parser)
    parser.description = "Upload files to OpenAI-compatible Files and Uploads APIs."
    args = parser.parse_args(args_list)
    module = importlib.import_module(args._module)
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
