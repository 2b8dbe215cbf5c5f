"""Apache Airflow provider for OpenAI-compatible Files and Uploads APIs."""

from __future__ import annotations

__version__ = "0.1.0"
