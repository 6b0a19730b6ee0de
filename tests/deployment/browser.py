"""The connection form and its Test button in a real browser, as a user makes an smsww connection: run by
``test_local_executor.py`` on its stack (one Airflow started for the example runs, the approval and this).

Debian's chromium, headless, driven by playwright-python (``executable_path``: no browser is downloaded),
on a new empty profile, against a real api-server with ``[core] test_connection = Enabled``. The user
adds a connection of type "SMS Worldwide (Openapi)" in the form (host, port, token), saves it, and
presses the row's Test button: the api-server runs the hook's ``test_connection`` against the sandbox.
Screenshots of every step are kept in ``$SMSWW_SCREENSHOTS`` (default ``deployment-screenshots/``)
when the test fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from harness import FAILED, REPO, AirflowStack, phase

from airflow_provider_smsww.compat import AIRFLOW_VERSION

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("SMSWW_SCREENSHOTS", REPO / "deployment-screenshots"))


@contextmanager
def open_page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of a headless chromium on a new empty profile; its screenshots kept when the test, or the
    fixture steps run in it, failed."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="smsww-chromium-")
    shots = Path(tempfile.mkdtemp(prefix="smsww-shots-"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.shots = shots  # type: ignore[attr-defined]
        raised = False
        try:
            yield page
        except BaseException:  # a fixture's steps failed (the approval's): no test item is marked
            raised = True
            raise
        finally:
            failed = raised or request.node.stash.get(FAILED, False)
            if failed:
                page.screenshot(path=str(shots / "99-at-failure.png"), full_page=True)
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                for shot in shots.iterdir():
                    shutil.copy(shot, SCREENSHOTS / f"{request.node.name}-{shot.name}")
                print(f"screenshots kept in {SCREENSHOTS}")
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)
            shutil.rmtree(shots, ignore_errors=True)


def log_in(page: Any, stack: AirflowStack) -> None:
    """Log the browser in as the stack's API client is: the token in the cookie where Airflow's login
    puts it (a stack under all_admins needs none: its UI logs itself in)."""
    if stack.password is not None:
        page.context.add_cookies([{"name": "_token", "value": stack.api.token, "url": stack.url}])


def check_a_connection_made_in_the_form_passes_the_test_button(
    page: Any, stack: AirflowStack, sandbox: Any
) -> None:
    shot = lambda name: page.screenshot(path=str(page.shots / f"{name}.png"), full_page=True)  # noqa: E731
    with phase("browser: connection form, Save, Test"):
        page.goto(f"{stack.url}/connections")
        page.get_by_role("button", name="Add Connection").click()
        page.get_by_label("Connection ID").fill("smsww_from_the_form")
        page.get_by_role("combobox").fill("SMS Worldwide")
        page.keyboard.press("Enter")
        # Airflow 3.2+ label the fields from the provider info; 3.0 and 3.1 show the standard labels.
        relabelled = AIRFLOW_VERSION >= (3, 2)
        page.get_by_label("API host" if relabelled else "Host", exact=True).fill(sandbox.url)
        port = urlsplit(sandbox.url).port
        page.get_by_label("Port").fill(str(port))
        page.get_by_label("Bearer token" if relabelled else "Password", exact=True).fill(sandbox.token)
        shot("01-form-filled")
        page.get_by_role("button", name="Save").click()
        if AIRFLOW_VERSION >= (3, 1):
            page.get_by_text("Connection has been successfully created").wait_for()
        else:  # Airflow 3.0 closes the form without a notice: the new row is the proof
            page.get_by_role("cell", name="smsww_from_the_form").wait_for()
        shot("02-saved")

        requests_before = len(sandbox.sandbox.requests)
        if AIRFLOW_VERSION < (3, 1):  # Airflow 3.0's UI has no Test button: the same test, through its API
            saved = stack.api.call("GET", "/connections/smsww_from_the_form")
            assert (saved["conn_type"], saved["host"], saved["port"]) == ("smsww", sandbox.url, port)
            body = {"connection_id": "smsww_from_the_form", "conn_type": "smsww", "host": sandbox.url}
            result = stack.api.call(
                "POST", "/connections/test", json={**body, "port": port, "password": sandbox.token}
            )
            assert result["status"] is True, result
        else:
            with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
                row = page.get_by_role("row").filter(has_text="smsww_from_the_form")
                row.get_by_role("button", name="Test Connection").click()
            shot("03-tested")
            assert answer.value.status == 200, answer.value.text()
            assert answer.value.json()["status"] is True, answer.value.json()
            page.get_by_text("Test Connection Successful").wait_for()
    # The api-server's hook really read the sandbox (GET /messages), with the token saved in the form.
    assert ("GET", "/messages", 200) in sandbox.sandbox.requests[requests_before:]
