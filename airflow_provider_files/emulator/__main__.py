"""``python -m airflow_provider_files.emulator``: same as ``airflow-files emulator``."""

from __future__ import annotations

import argparse
import sys

from airflow_provider_files.emulator.cli import configure_parser, run


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_files.emulator",
        description="Run the local OpenAI-compatible Files/Uploads/Batches API emulator.",
    )
    configure_parser(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
