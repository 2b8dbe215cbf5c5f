"""Example DAGs shipped with the package, so that an installed wheel can run ``airflow-files demo``.

``example_batch_loop.py`` is a DAG file, not a library module: the demo copies it into its dags
folder, and the repository's ``example_dags/example_batch_loop.py`` is a link to it.
"""

from __future__ import annotations
