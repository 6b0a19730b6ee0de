"""The Messages view (airflow_provider_smsww/plugins/messages.py) in a real API server and a headless
chromium: a tab on the DAG run page from Airflow 3.1, its own URL on 3.0. Run by test_local_executor.py
on its stack, whose auth manager refuses one DAG (refusing_auth.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, AirflowStack, phase, wait_until

from airflow_provider_smsww.compat import AIRFLOW_VERSION

#: A DAG of the stack that the auth manager refuses to everyone: its view answers 403.
REFUSED_DAG = "example_smsww_taskflow"
#: Set to refresh the docs' screenshot of the view from this test's run.
DOCS_SHOT = REPO / "docs" / "images" / "messages-view.png"


def stack_env() -> dict[str, str]:
    """What the stack's services need for the refusing auth manager."""
    here = str(Path(__file__).parent)
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": "refusing_auth.RefusingAuthManager",
        "SMSWW_REFUSED_DAGS": REFUSED_DAG,
        "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p),
    }


def view_json(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, Any]:
    """The view's JSON, read with the REST API's token."""
    answer = stack.api.http.get(f"/smsww/runs/{dag_id}/{run_id}/messages.json")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def settled(stack: AirflowStack, dag_id: str, run_id: str, count: int) -> dict[str, Any]:
    """The view once its ``count`` messages reached a final state (their receipts came)."""

    def final() -> dict[str, Any] | None:
        view = view_json(stack, dag_id, run_id)
        done = view["messages"] == count and not {"NEW", "PENDING"} & set(view["states"])
        return view if done else None

    return dict(wait_until(f"the view of {run_id} to settle", final, timeout=90))


def open_in_browser(page: Any, stack: AirflowStack, dag_id: str, run_id: str) -> Any:
    """The view as a user reaches it: the run page's SMS tab (3.1+), or its URL (3.0). Returns the frame
    (or page) that shows it."""
    with phase("browser: the Messages view"):
        if AIRFLOW_VERSION < (3, 1):  # before the UI, which moves the login cookie into its storage
            page.goto(f"{stack.url}/smsww/runs/{dag_id}/{run_id}/messages")
            view = page
        else:
            page.goto(f"{stack.url}/dags/{dag_id}/runs/{run_id}")
            page.get_by_text("SMS", exact=True).click()
            view = page.frame_locator("iframe").first
        view.locator("#count").wait_for()
        page.screenshot(path=str(page.shots / "messages-view.png"), full_page=True)
        if os.environ.get("SMSWW_UPDATE_DOCS_SCREENSHOTS"):
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            shutil.copy(page.shots / "messages-view.png", DOCS_SHOT)
        return view


def refusals(stack: AirflowStack, dag_id: str, run_id: str) -> tuple[int, int]:
    """The status of the view with no token, and of the refused DAG's view with a valid one."""
    anonymous = httpx.get(f"{stack.url}/smsww/runs/{dag_id}/{run_id}/messages", timeout=10)
    refused = stack.api.http.get(f"/smsww/runs/{REFUSED_DAG}/{run_id}/messages")
    return anonymous.status_code, refused.status_code
