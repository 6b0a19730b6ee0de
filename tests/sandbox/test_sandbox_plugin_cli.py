"""The pytest fixtures users get with the package, the CLI, and the import-cost promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from airflow_provider_smsww._http.client import SmsWwClient
from airflow_provider_smsww.models import SendRequest
from airflow_provider_smsww.sandbox.server import InProcessSandbox, SandboxHandle

US = "+14155550123"


@pytest.mark.integration
@pytest.mark.parametrize("round_", [1, 2])
def test_smsww_sandbox_fixture_drives_the_hook(smsww_sandbox: SandboxHandle, round_: int) -> None:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook

    server = smsww_sandbox
    assert os.environ["AIRFLOW_CONN_SMSWW_DEFAULT"] == server.conn_json
    assert server.sandbox.messages == {}  # reset between tests
    hook = SmsWwHook()
    try:
        sent = hook.get_conn().send_message(SendRequest(recipient=US, message=f"round {round_}"))
        assert hook.test_connection()[0] is True
    finally:
        hook.close()
    assert list(server.sandbox.messages) == [sent.id]


def test_smsww_sandbox_app_fixture(smsww_sandbox_app: InProcessSandbox) -> None:
    box = smsww_sandbox_app
    with SmsWwClient(box.url, token=box.token, transport=box.transport) as client:
        sent = client.send_message(SendRequest(recipient=US, message="x"))
        assert client.get_message(sent.id).id == sent.id
    assert box.sandbox.per_recipient() == {US: 1}


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def test_plugin_and_package_import_cheaply() -> None:
    heavy = ("fastapi", "uvicorn", "starlette", "airflow_provider_smsww.sandbox.state")
    code = (
        "import sys; "
        "import airflow_provider_smsww.sandbox.pytest_plugin, airflow_provider_smsww._http.client; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    assert _run(code) == "[]"


@pytest.mark.integration
def test_cli_serves_and_prints_the_connection(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_smsww.sandbox.cli",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--credit",
            "5",
            "--state-file",
            str(tmp_path / "state.sqlite"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("SMS Worldwide sandbox on http://127.0.0.1:")
        line = proc.stdout.readline().strip()
        conn = json.loads(line.split("=", 1)[1].strip("'"))
        assert conn["conn_type"] == "smsww"
        assert conn["password"] == "cli-token"
        response = httpx.post(
            f"{conn['host']}/WW-messages",
            json={"recipient": US, "message": "x" * 1000},
            headers={"Authorization": "Bearer cli-token"},
        )
        assert (response.status_code, response.json()["code"]) == (402, 2030)  # 7 parts > 5 EUR
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "cli-token" not in err
    assert (tmp_path / "state.sqlite").stat().st_size > 0


@pytest.mark.integration
def test_smsww_sandbox_fixture_reads_wallet_transactions_and_token_stats(
    smsww_sandbox: SandboxHandle,
) -> None:
    server = smsww_sandbox
    config = server.sandbox.config
    with httpx.Client(base_url=server.url) as http:
        token = http.post(
            "/tokens",
            json={"scopes": ["*:*/*"], "limits": {"walletRequests": 5}},
            auth=(config.email, config.api_key),
        ).json()["token"]
        sent = http.post(
            "/IT-messages",
            json={"recipient": "+393331234567", "message": "x"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 201
    assert server.wallet()["credit"] == pytest.approx(100 - 0.065)
    assert [(t["id"], t["amount"]) for t in server.transactions()] == [
        (f"txn_{sent.json()['data']['id']}", -0.065)
    ]
    assert server.token_stats(token) == {"totalRequests": 1, "walletRequests": 1, "walletAmount": 0.065}
    assert server.token_stats("unknown") is None
