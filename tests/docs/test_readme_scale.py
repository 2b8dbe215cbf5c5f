"""The README's "Running at scale" section: the settings it names exist, and its snippet builds."""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_files.get_provider_info import get_provider_info
from airflow_provider_files.operators._checkpoint import warn_if_not_shared

from .support import README, section

SECTION = section(README.read_text(encoding="utf-8"), "Running at scale")


def test_every_option_of_the_config_section_is_explained() -> None:
    options = get_provider_info()["config"]["openai_files"]["options"]
    for option in options:
        assert f"[openai_files] {option}" in SECTION or f"{option} =" in SECTION, option
    assert "AIRFLOW__OPENAI_FILES__CHECKPOINT_FOLDER" in SECTION
    assert f"(default {options['checkpoint_retention_days']['default']}," in SECTION


def test_the_warning_names_the_setting_the_section_explains(monkeypatch: Any, tmp_path: Any) -> None:
    from airflow.sdk import ObjectStoragePath

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    warnings: list[str] = []

    class Log:
        def warning(self, message: str, *args: Any) -> None:
            warnings.append(message % args)

    assert warn_if_not_shared(ObjectStoragePath(f"file://{tmp_path}/readme-scale"), Log())
    assert "[openai_files] checkpoint_folder" in warnings[0]
    assert "[openai_files]\ncheckpoint_folder = " in SECTION


def test_the_mapped_upload_snippet_builds_a_task() -> None:
    import pendulum
    from airflow.sdk import DAG

    (snippet,) = re.findall(r"```python\n(.*?)\n```", SECTION, re.DOTALL)
    with DAG("readme_scale", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        exec(compile(snippet, "README.md", "exec"), {})
    task = dag.get_task("upload_corpus")
    partial_kwargs = getattr(task, "partial_kwargs", None)
    assert partial_kwargs is not None, "the snippet's task is not mapped"
    assert partial_kwargs["concurrency"] * partial_kwargs["max_active_tis_per_dagrun"] == 16
    assert partial_kwargs["pool"] == "openai_files"
