"""The provider's Airflow plugin: the receipts endpoint and the Messages view on Airflow's API server
(docs/receipts.md).

Registered as an ``airflow.plugins`` entry point (pyproject.toml says why not the provider info's
``plugins``), so every Airflow component that loads plugins imports this module: it imports neither
FastAPI nor the endpoint until the API server asks for its apps.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: Where the API server mounts the provider's app: receipts arrive at ``<API server>/smsww/receipts``.
URL_PREFIX = "/smsww"


class _LazyApps:
    """``fastapi_apps`` built on first read, so that a worker or a DAG processor loading plugins does not
    pay for the endpoint's imports (the plugins manager reads the attribute on the class)."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type) -> list[dict[str, Any]]:
        if self._apps is None:
            from airflow_provider_smsww.plugins.app import create_app

            self._apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "SMS Worldwide"}]
        return self._apps


class SmsWwPlugin(AirflowPlugin):
    """The receipts endpoint and the Messages view, mounted by Airflow's API server (3.0 and up); the
    view is a tab on the DAG run page from 3.1 (``external_views``; 3.0 ignores the attribute)."""

    name = "smsww"
    fastapi_apps = _LazyApps()
    external_views = [
        {
            "name": "SMS",
            "href": URL_PREFIX + "/runs/{DAG_ID}/{RUN_ID}/messages",
            "destination": "dag_run",
            "url_route": "smsww_messages",
            "category": "SMS Worldwide",
        }
    ]
