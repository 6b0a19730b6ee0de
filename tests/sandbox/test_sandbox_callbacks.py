"""Callbacks: one POST per state change, JSON or form, with the caller's headers and custom data, retried;
received by a real HTTP server on 127.0.0.1 (and, in process, by an ASGI receiver)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.sandbox.server import in_process_sandbox, run_sandbox
from tests.sandbox.helpers import FakeClock, Receiver

pytestmark = pytest.mark.integration

US = "+14155550123"


def post(url: str, token: str, body: dict[str, Any], region: str = "WW") -> httpx.Response:
    return httpx.post(f"{url}/{region}-messages", json=body, headers={"Authorization": f"Bearer {token}"})


def test_json_callbacks_on_each_transition(receiver: Receiver) -> None:
    callback = {
        "url": receiver.url,
        "headers": {"Authorization": "Bearer receiver-secret"},
        "custom": {"order": 42},
    }
    with run_sandbox(pending_after=0.02, delivered_after=0.05) as server:
        response = post(server.url, server.token, {"recipient": US, "message": "hi", "callback": callback})
        message_id = response.json()["data"]["id"]
        server.wait_for(lambda: len(receiver.received) == 2, timeout=5)
    pending, delivered = receiver.received
    assert pending.content_type == "application/json"
    assert pending.headers["Authorization"] == "Bearer receiver-secret"
    assert pending.path == "/hook"
    assert pending.payload["custom"] == {"order": 42}
    assert [r.payload["data"]["state"] for r in receiver.received] == ["PENDING", "DELIVERED"]
    assert pending.payload["data"]["id"] == message_id
    assert pending.payload["data"]["totalPrice"] == 0.01  # priced on provider acceptance
    assert delivered.payload["data"]["deliveredAt"] is not None
    attempts = server.sandbox.callback_attempts
    assert [(a.state, a.attempt, a.status) for a in attempts] == [("PENDING", 1, 200), ("DELIVERED", 1, 200)]
    assert all("receiver-secret" not in repr(a) for a in attempts)
    assert (
        pending.payload["data"]["callback"]["headers"] == callback["headers"]
    )  # the message as GET shows it


def test_form_callbacks_use_the_field(receiver: Receiver) -> None:
    callback = {"url": receiver.url, "method": "POST", "field": "payload", "custom": {"k": "v"}}
    with run_sandbox(pending_after=0, delivered_after=0.01) as server:
        post(
            server.url,
            server.token,
            {"recipient": "+393330000003", "message": "hi", "callback": callback},
            "IT",
        )
        server.wait_for(lambda: len(receiver.received) == 2, timeout=5)
    first = receiver.received[0]
    assert first.content_type.startswith("application/x-www-form-urlencoded")
    assert set(first.payload) == {"payload"}
    assert first.payload["payload"]["custom"] == {"k": "v"}
    assert [r.payload["payload"]["data"]["state"] for r in receiver.received] == ["PENDING", "REJECTED"]


def test_retries_until_success_then_stops(receiver: Receiver) -> None:
    receiver.statuses = [503, 500]
    callback = {"url": receiver.url, "retry": 3}
    with run_sandbox(pending_after=0, delivered_after=10, callback_backoff=0.001) as server:
        post(server.url, server.token, {"recipient": US, "message": "hi", "callback": callback})
        server.wait_for(lambda: any(a.ok for a in server.sandbox.callback_attempts), timeout=5)
        attempts = [(a.state, a.attempt, a.status) for a in server.sandbox.callback_attempts]
    assert attempts == [("PENDING", 1, 503), ("PENDING", 2, 500), ("PENDING", 3, 200)]


def test_retries_are_bounded_and_connection_errors_count(receiver: Receiver) -> None:
    dead = receiver.url.replace("/hook", "").rsplit(":", 1)[0] + ":9"  # discard port: refused
    with run_sandbox(pending_after=0, delivered_after=10, callback_backoff=0.001) as server:
        post(
            server.url, server.token, {"recipient": US, "message": "x", "callback": {"url": dead, "retry": 2}}
        )
        server.wait_for(lambda: len(server.sandbox.callback_attempts) == 3, timeout=5)
        attempts = server.sandbox.callback_attempts
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.status is None and a.error for a in attempts)


def test_only_loopback_is_called_back(receiver: Receiver) -> None:
    with run_sandbox(pending_after=0, delivered_after=10) as server:
        body = {
            "recipient": US,
            "message": "x",
            "callback": {"url": "https://www.mysite.com/myEndpoint", "retry": 5},
        }
        post(server.url, server.token, body)
        server.wait_for(lambda: len(server.sandbox.callback_attempts) == 1, timeout=5)
        (attempt,) = server.sandbox.callback_attempts
    assert attempt.status is None
    assert "loopback" in (attempt.error or "")


def test_blocked_message_calls_back_rejected(receiver: Receiver) -> None:
    with run_sandbox() as server:
        body = {"recipient": US, "message": "forbiddenword", "callback": {"url": receiver.url}}
        assert post(server.url, server.token, body).status_code == 422
        server.wait_for(lambda: len(receiver.received) == 1, timeout=5)
    data = receiver.received[0].payload["data"]
    assert (data["state"], data["blocklisted"]) == ("REJECTED", True)


async def test_in_process_callbacks_with_injected_clock_and_asgi_receiver() -> None:
    """No socket at all: the receiver is an ASGI app behind the callback transport."""
    seen: list[dict[str, Any]] = []

    async def receiver_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen.append({"headers": headers, "body": json.loads(body)})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    clock = FakeClock()
    transport = httpx.ASGITransport(app=receiver_app)
    with in_process_sandbox(clock=clock, callback_transport=transport) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        async with httpx.AsyncClient(
            transport=box.async_transport, base_url=box.url, headers=headers
        ) as http:
            callback = {"url": "http://127.0.0.1/cb", "headers": {"X-Key": "k1"}}
            response = await http.post(
                "/WW-messages", json={"recipient": US, "message": "x", "callback": callback}
            )
            assert response.status_code == 201
            assert seen == []
            clock.tick(5)  # both transitions due: the runner notices within its poll cap
            box.wait_for(lambda: len(seen) == 2, timeout=5)
    assert [s["body"]["data"]["state"] for s in seen] == ["PENDING", "DELIVERED"]
    assert seen[0]["headers"]["x-key"] == "k1"
