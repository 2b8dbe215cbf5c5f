"""Helpers of the documentation tests: where the README is, and its marked blocks."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"

_MARKED_BLOCK = re.compile(r"<!-- (quickstart:[\w-]+)(?: ([^>]*?))? -->\n```(\w+)\n(.*?)\n```", re.DOTALL)


def marked_blocks(text: str) -> dict[str, tuple[str, str]]:
    """``{marker: (argument, code)}`` of the fenced blocks preceded by ``<!-- quickstart:NAME [ARG] -->``."""
    blocks: dict[str, tuple[str, str]] = {}
    for match in _MARKED_BLOCK.finditer(text):
        marker, argument, _language, code = match.groups()
        assert marker not in blocks, f"{marker} appears twice in the README"
        blocks[marker] = (argument or "", code)
    return blocks


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## `` heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]
