"""``--state-file``: the sandbox keeps messages, credit, tokens and transactions across a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import in_process_sandbox, run_sandbox
from tests.sandbox.helpers import FakeClock

pytestmark = pytest.mark.integration

IT = "+393331234567"
US = "+14155550123"


def test_restart_on_the_same_file_keeps_the_state(tmp_path: Path) -> None:
    state_file = str(tmp_path / "sandbox.sqlite")
    config = {"state_file": state_file, "pending_after": 0.05, "delivered_after": 0.1}
    with run_sandbox(**config) as first:
        basic = (first.sandbox.config.email, first.sandbox.config.api_key)
        token = httpx.post(
            f"{first.url}/tokens", json={"scopes": ["*:*/*"], "limits": {"walletRequests": 2}}, auth=basic
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        sent = httpx.post(
            f"{first.url}/WW-messages", json={"recipient": US, "message": "before"}, headers=auth
        )
        regional = httpx.post(
            f"{first.url}/IT-messages", json={"recipient": IT, "message": "x"}, headers=auth
        )
        ids = [sent.json()["data"]["id"], regional.json()["data"]["id"]]
        first.wait_for(lambda: first.sandbox.messages[ids[0]].state == "DELIVERED")
        before = httpx.get(f"{first.url}/messages/{ids[0]}", headers=auth).json()["data"]
        credit, transactions = first.wallet()["credit"], first.transactions()
        stats = first.token_stats(token)

    with run_sandbox(**config) as second:
        auth = {"Authorization": f"Bearer {token}"}  # the minted token is still valid
        assert httpx.get(f"{second.url}/messages/{ids[0]}", headers=auth).json()["data"] == before
        listed = httpx.get(f"{second.url}/messages", headers=auth).json()["data"]
        assert [m["id"] for m in listed] == ids[::-1]
        assert second.wallet()["credit"] == credit == pytest.approx(100 - 0.01 - 0.065)
        assert second.transactions() == transactions
        assert second.token_stats(token) == {**(stats or {}), "totalRequests": 5}  # + the 2 GETs above
        # Its walletRequests limit (2) was used up before the restart.
        refused = httpx.post(
            f"{second.url}/IT-messages", json={"recipient": IT, "message": "x"}, headers=auth
        )
        assert (refused.status_code, refused.json()["code"]) == (402, 2035)
        new = httpx.post(
            f"{second.url}/WW-messages",
            json={"recipient": US, "message": "after"},
            headers={"Authorization": f"Bearer {second.token}"},
        ).json()["data"]["id"]
        assert new not in ids

    with run_sandbox(pending_after=0.05) as memory_only:  # without a file nothing is kept
        assert memory_only.sandbox.messages == {}


def test_messages_in_flight_move_on_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    config = {"state_file": str(tmp_path / "s.sqlite"), "clock": clock}
    with in_process_sandbox(**config) as first:
        first.sandbox.send(
            "WW", {"recipient": US, "message": "x", "callback": {"url": "http://127.0.0.1:9/"}}
        )
        (message_id,) = first.sandbox.messages
    clock.now = 0.0  # another process: another monotonic clock
    with in_process_sandbox(**config) as second:
        assert second.sandbox.view(message_id)["state"] == "NEW"
        assert second.sandbox.view(message_id)["callback"]["url"] == "http://127.0.0.1:9/"
        clock.tick(1)
        assert second.sandbox.view(message_id)["state"] == "DELIVERED"
        assert second.sandbox.credit == pytest.approx(99.99)  # WW charged at PENDING, after the restart


def test_reset_empties_the_file(tmp_path: Path) -> None:
    config = {"state_file": str(tmp_path / "s.sqlite")}
    with in_process_sandbox(**config) as first:
        first.sandbox.send("IT", {"recipient": IT, "message": "x"})
        first.reset()
    with in_process_sandbox(**config) as second:
        assert second.sandbox.messages == {}
        assert second.sandbox.credit == 100
        assert second.transactions() == []
