"""Run an example DAG for real (``dag.test()``) with its connection pointed at a gateway."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .support import REPO_ROOT


def run_example_dag(name: str, **run_conf: Any) -> Any:
    path = REPO_ROOT / "example_dags" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"interop_example_dags.{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test(run_conf=run_conf)


def xcom_of(dag_run: Any, task_id: str) -> Any:
    for ti in dag_run.get_task_instances():
        if ti.task_id == task_id:
            return ti.xcom_pull(task_ids=task_id)
    raise AssertionError(f"no task instance {task_id}")


def task_states(dag_run: Any) -> dict[str, Any]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def checkpoint_env(tmp_path: Path) -> dict[str, str]:
    return {"AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER": str(tmp_path / "checkpoints")}
