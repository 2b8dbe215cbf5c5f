"""Airflow's Providers page links the package's own documentation, not a dead airflow.apache.org page."""

from __future__ import annotations

import sys
from importlib import metadata

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .support import REPO_ROOT

DIST = "airflow-provider-files"


def _project_urls() -> dict[str, str]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"]["urls"])


def test_pyproject_names_documentation_source_and_changelog() -> None:
    urls = _project_urls()
    assert set(urls) == {"Documentation", "Source", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    assert "airflow.apache.org" not in urls["Documentation"]
    assert urls["Changelog"].endswith("/CHANGELOG.md") and (REPO_ROOT / "CHANGELOG.md").is_file()
    assert urls["Documentation"].startswith(urls["Source"])


def test_airflow_reads_our_documentation_url_from_the_installed_metadata() -> None:
    """Airflow takes the Providers page link from the ``Project-URL: Documentation`` metadata
    (``providers_discovery``): installed metadata must carry it (``make setup`` reinstalls when
    pyproject.toml changes)."""
    from airflow.providers_manager import ProvidersManager

    installed = dict(entry.split(", ", 1) for entry in metadata.metadata(DIST).get_all("Project-URL") or [])
    assert installed == _project_urls()
    provider = ProvidersManager().providers[DIST]
    assert provider.data["documentation-url"] == _project_urls()["Documentation"]


def test_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    from airflow_provider_files import __version__

    text = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "\n## Unreleased\n" in text
    assert f"\n## {__version__} " in text
