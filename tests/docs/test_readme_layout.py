""" "How the code is laid out" names every package folder, and the import rules it states hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .support import README, REPO_ROOT, section

PACKAGE = REPO_ROOT / "airflow_provider_files"
CLIENT_SIDE = ("api", "uploads", "batches", "jsonl", "hooks", "operators", "sensors", "triggers")


def _layout_block() -> str:
    text = section(README.read_text(encoding="utf-8"), "How the code is laid out")
    match = re.search(r"```\n(airflow_provider_files/\n.*?)```", text, re.DOTALL)
    assert match, "the section has no layout block"
    return match.group(1)


def test_layout_names_every_package_folder_and_nothing_that_is_gone() -> None:
    block = _layout_block()
    listed = set(re.findall(r"^  (\w+)/", block, re.MULTILINE))
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert present - listed == set(), "package folders the README's layout does not describe"
    assert listed - present == set(), "folders the README's layout describes that are gone"
    for top in re.findall(r"^([\w/]+)/ ", block, re.MULTILINE):
        assert (REPO_ROOT / top).is_dir(), top
    for module in ("exceptions.py", "cli.py"):
        assert f"  {module}" in block and (PACKAGE / module).is_file()


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        bad = sorted(m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(REPO_ROOT))] = bad
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("api", ("airflow",)),
        ("uploads", ("airflow",)),
        ("batches", ("airflow",)),
        ("jsonl", ("airflow", "httpx")),
        ("emulator", tuple(f"airflow_provider_files.{name}" for name in CLIENT_SIDE)),
        ("operators", ("httpx", "airflow_provider_files.sensors")),
        ("sensors", ("httpx",)),
        ("triggers", ("httpx",)),
    ],
)
def test_the_import_rules_the_readme_states_hold(folder: str, forbidden: tuple[str, ...]) -> None:
    rules = section(README.read_text(encoding="utf-8"), "How the code is laid out")
    assert f"`{folder}/`" in rules
    assert _offenders(folder, forbidden) == {}


MAX_MODULE_LINES = 500


def test_no_module_is_over_500_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
    assert "No module over 500 lines" in section(
        README.read_text(encoding="utf-8"), "How the code is laid out"
    )
