"""``final_at_look``: a message reaches its final state at a client's Nth look, not by the clock, so a
test can see its sensor find the message in flight and then delivered on any machine."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import in_process_sandbox
from tests.sandbox.helpers import FakeClock

IT = "+393331234567"
UNDELIVERABLE = "+393330000001"


def send(client: httpx.Client, recipient: str) -> str:
    answer = client.post("/WW-messages", json={"recipient": recipient, "message": "hello"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


@pytest.mark.parametrize("read", ["by id", "by listing"])
def test_the_second_look_finds_the_final_state_whatever_the_clock(read: str) -> None:
    clock = FakeClock()
    with in_process_sandbox(clock=clock, final_at_look=2) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as client:
            ids = [send(client, IT), send(client, UNDELIVERABLE)]
            clock.tick(3600)  # an hour on the clock: still in flight until looked at twice

            def look() -> dict[str, str]:
                if read == "by id":
                    return {i: client.get(f"/messages/{i}").json()["data"]["state"] for i in ids}
                return {m["id"]: m["state"] for m in client.get("/messages").json()["data"]}

            assert {box.sandbox.view(i)["state"] for i in ids} == {"PENDING"}  # the test's own reads
            assert set(look().values()) == {"PENDING"}
            assert look() == {ids[0]: "DELIVERED", ids[1]: "UNDELIVERABLE"}
            assert box.sandbox.view(ids[0])["deliveredAt"] is not None


def test_without_final_at_look_the_clock_delivers() -> None:
    clock = FakeClock()
    with in_process_sandbox(clock=clock) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as client:
            message_id = send(client, IT)
            assert client.get(f"/messages/{message_id}").json()["data"]["state"] == "NEW"
            clock.tick(box.sandbox.config.delivered_after)
            assert client.get(f"/messages/{message_id}").json()["data"]["state"] == "DELIVERED"
