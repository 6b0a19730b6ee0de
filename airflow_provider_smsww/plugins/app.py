"""The app the plugin mounts under ``/smsww`` on Airflow's API server: the receipts endpoint
(:mod:`.receipts`) and the Messages view (:mod:`.messages`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_smsww.plugins import messages, receipts


def create_app() -> FastAPI:
    """The routes, with no docs pages: the API server's own docs stay the API's."""
    app = FastAPI(title="SMS Worldwide", docs_url=None, redoc_url=None, openapi_url=None)
    secrets = receipts.Secrets()

    @app.post("/receipts", status_code=202)
    async def receive(request: Request) -> dict[str, Any]:
        return await receipts.receive(request, secrets)

    @app.get("/runs/{dag_id}/{run_id}/messages", response_class=HTMLResponse)
    async def messages_page(request: Request, dag_id: str, run_id: str) -> str:
        await messages.allowed(request, dag_id)
        rows = await run_in_threadpool(messages.run_messages, dag_id, run_id)
        return messages.as_html(dag_id, run_id, rows)

    @app.get("/runs/{dag_id}/{run_id}/messages.json")
    async def messages_json(request: Request, dag_id: str, run_id: str) -> dict[str, Any]:
        await messages.allowed(request, dag_id)
        rows = await run_in_threadpool(messages.run_messages, dag_id, run_id)
        return messages.as_json(dag_id, run_id, rows)

    return app
