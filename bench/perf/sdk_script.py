"""The SDK script the ``sdk-script`` contender runs: what a user writes to upload a file with the
openai SDK (``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` from the environment), printing the file
object as JSON. ``python bench/perf/sdk_script.py PATH --purpose P --mime-type M``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import openai


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--purpose", required=True)
    parser.add_argument("--mime-type", required=True)
    args = parser.parse_args()
    client = openai.OpenAI()
    upload = client.uploads.upload_file_chunked(
        file=args.path, mime_type=args.mime_type, purpose=args.purpose
    )
    if upload.file is None:
        print(f"upload {upload.id} ended {upload.status}", file=sys.stderr)
        return 1
    print(upload.file.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
