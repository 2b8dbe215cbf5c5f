"""Names that moved between Airflow 3.1 and 3.3, imported from wherever the running Airflow keeps them.

Airflow 3.3 exports the configuration and the task exceptions from the task SDK (``airflow.sdk``);
Airflow 3.1 still keeps them in ``airflow.configuration`` and ``airflow.exceptions``, and has no
``amask_secret``. Hooks, operators, sensors and triggers import these names from here, never from
either place directly, so the package imports on every Airflow it claims (``apache-airflow>=3.1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import conf
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
    from airflow.sdk.log import amask_secret, mask_secret
else:
    try:  # Airflow 3.2+
        from airflow.sdk import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf

    try:  # Airflow 3.2+
        from airflow.sdk.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowNotFoundException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowNotFoundException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )

    from airflow.sdk.log import mask_secret

    try:  # Airflow 3.2+
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow 3.1, whose mask_secret is safe inside an event loop

        async def amask_secret(secret: str) -> None:
            """Mask ``secret`` in the logs (the synchronous call of Airflow 3.1)."""
            mask_secret(secret)


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "amask_secret",
    "conf",
    "mask_secret",
]
