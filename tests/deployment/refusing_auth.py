"""An auth manager that can refuse a DAG: Airflow's simple auth manager, except that it refuses every DAG
named in ``SMSWW_REFUSED_DAGS`` (comma separated). The LocalExecutor stack runs with it and a real login
(its ``admin`` user), so that a test proves the Messages view asks the configured auth manager instead of
trusting any caller."""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

REFUSED = {d for d in os.environ.get("SMSWW_REFUSED_DAGS", "").split(",") if d}


class RefusingAuthManager(SimpleAuthManager):
    """:class:`SimpleAuthManager`, refusing the DAGs of ``SMSWW_REFUSED_DAGS``."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if details is not None and getattr(details, "id", None) in REFUSED:
            return False
        return bool(
            super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        )
