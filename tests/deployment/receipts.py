"""Delivery receipts in a real deployment: the provider's plugin mounted by Airflow's API server, the
sandbox posting each message's state changes to it over loopback as the gateway would, a DAG scheduled
on the receipts asset (example_dags/example_smsww_receipts.py)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from harness import AirflowStack, wait_until

from airflow_provider_smsww.receipts import DEFAULT_ASSET, RECEIPT_HEADER

DAG_ID, FALLBACK_DAG_ID = "example_smsww_receipts", "example_smsww_receipts_fallback"
#: 20 readers; the sandbox ends a message to +393330000001 UNDELIVERABLE.
READERS = [f"+39333{n:07d}" for n in range(2_000_100, 2_000_119)] + ["+393330000001"]
SECRET = secrets.token_urlsafe(32)
#: How soon a receipt must be an asset event once the sandbox starts posting it.
RECORDED_WITHIN = 5.0


def connection_extra(stack_url: str) -> dict[str, str]:
    """The extras that switch receipts on for the stack's API server."""
    return {"receipts_url": f"{stack_url}/smsww/receipts", "receipts_secret": SECRET}


def events_of(stack: AirflowStack, run_id: str) -> list[dict[str, Any]]:
    """The receipts asset's events that the run's messages caused (the REST API, as a user reads them)."""
    assets = stack.api.call("GET", "/assets", params={"name_pattern": DEFAULT_ASSET})["assets"]
    (asset,) = [a for a in assets if a["name"] == DEFAULT_ASSET]
    params = {"asset_id": asset["id"], "source_dag_id": DAG_ID, "source_run_id": run_id, "limit": 100}
    return list(stack.api.call("GET", "/assets/events", params=params)["asset_events"])


def wait_for_events(stack: AirflowStack, run_id: str, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        events = events_of(stack, run_id)
        return events if len(events) >= count else None

    return list(wait_until(f"{count} receipts of {run_id}", enough, timeout=90))


def fallback_runs_for(stack: AirflowStack, message_id: str) -> list[dict[str, Any]]:
    """The fallback DAG's successful runs whose e-mails name ``message_id``."""
    runs = stack.api.call("GET", f"/dags/{FALLBACK_DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]
    found = []
    for run in runs:
        if run["state"] == "success":
            emails = stack.api.xcom(FALLBACK_DAG_ID, run["dag_run_id"], "email_report_link")
            if any(e["message_id"] == message_id for e in emails):
                found.append(run)
    return found


def forge(stack: AirflowStack, payload: dict[str, Any], header: str | None) -> httpx.Response:
    """Post a receipt to the API server as anyone on the network could."""
    headers = {RECEIPT_HEADER: header} if header is not None else {}
    return httpx.post(f"{stack.url}/smsww/receipts", json=payload, headers=headers, timeout=10)
