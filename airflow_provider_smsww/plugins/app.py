"""The app the plugin mounts under ``/smsww`` on Airflow's API server: the receipts endpoint
(:mod:`.receipts`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from airflow_provider_smsww.plugins import receipts


def create_app() -> FastAPI:
    """The routes, with no docs pages: the API server's own docs stay the API's."""
    app = FastAPI(title="SMS Worldwide", docs_url=None, redoc_url=None, openapi_url=None)
    secrets = receipts.Secrets()

    @app.post("/receipts", status_code=202)
    async def receive(request: Request) -> dict[str, Any]:
        return await receipts.receive(request, secrets)

    return app
