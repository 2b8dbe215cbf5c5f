"""Every Python snippet of the README parses, and what it imports from the provider exists."""

from __future__ import annotations

import ast
import importlib
import re

import pytest

from .support import README

_PYTHON_BLOCK = re.compile(r"```python\n(.*?)\n```", re.DOTALL)
SNIPPETS = _PYTHON_BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_snippets() -> None:
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_parses_and_its_provider_imports_exist(index: int) -> None:
    tree = ast.parse(SNIPPETS[index])
    imported = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_provider_files"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
                imported += 1
    if "pendulum." in SNIPPETS[index]:
        assert "import pendulum" in SNIPPETS[index], "the snippet uses pendulum without importing it"
    assert imported, "a snippet shows the provider: it imports from it"
