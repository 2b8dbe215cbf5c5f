"""Names that moved between Airflow 3.1 and 3.3 come from ``_airflow_compat`` only, and on the Airflow
of the dev environment they are the task SDK's own objects (``make test-airflow-floor`` runs the
DAG-level tests on Airflow 3.1)."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow.sdk
import airflow.sdk.exceptions
import airflow.sdk.log
import pytest

from airflow_provider_files import _airflow_compat

PACKAGE = Path(_airflow_compat.__file__).parent
# Modules or names that Airflow 3.1 does not have where Airflow 3.3 keeps them.
MOVED_MODULES = ("airflow.sdk.exceptions", "airflow.sdk.configuration", "airflow.sdk.log")
MOVED_SDK_NAMES = {"conf"}


def moved_imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if node.module in MOVED_MODULES:
            found.append(node.module)
        elif node.module == "airflow.sdk":
            found.extend(f"airflow.sdk.{a.name}" for a in node.names if a.name in MOVED_SDK_NAMES)
    return found


def test_only_the_compat_module_imports_names_that_moved_since_airflow_3_1() -> None:
    modules = [
        p for p in PACKAGE.rglob("*.py") if "emulator" not in p.parts and p != Path(_airflow_compat.__file__)
    ]
    assert len(modules) > 20
    offenders = {str(p.relative_to(PACKAGE)): moved_imports(p) for p in modules if moved_imports(p)}
    assert offenders == {}


def test_the_detector_sees_a_moved_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from airflow.sdk import BaseOperator, conf\nfrom airflow.sdk.exceptions import X\n")
    assert moved_imports(module) == ["airflow.sdk.conf", "airflow.sdk.exceptions"]


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("conf", airflow.sdk),
        ("AirflowException", airflow.sdk.exceptions),
        ("AirflowFailException", airflow.sdk.exceptions),
        ("AirflowNotFoundException", airflow.sdk.exceptions),
        ("AirflowSensorTimeout", airflow.sdk.exceptions),
        ("AirflowSkipException", airflow.sdk.exceptions),
        ("mask_secret", airflow.sdk.log),
        ("amask_secret", airflow.sdk.log),
    ],
)
def test_on_the_dev_airflow_the_names_are_the_task_sdks_own(name: str, home: object) -> None:
    assert getattr(_airflow_compat, name) is getattr(home, name)
