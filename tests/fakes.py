"""Stand-ins for Airflow pieces that the operator tests drive by hand (imported, not fixtures)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import httpx

API = "https://sms.example.test"
TOKEN = "unit-test-token-0123456789"
#: Message ids the delivery tests watch, and the recipient each was sent to.
IDS = ["aaaaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaaaa2", "aaaaaaaaaaaaaaaaaaaaaaa3"]
RECIPIENTS = ["+393331234500", "+393331234501", "+393331234502"]
#: The text and a callback header of every message: neither may reach XCom, an event or a log.
TEXT = "secret-ish text that must not reach XCom"
CALLBACK_SECRET = "callback-secret"


class FakeStore:
    """Airflow 3.3's ``task_state_store``: a key/value store that survives task retries.

    ``set`` raises on the ``fail_on_set``-th write, which is how the tests crash a worker between the
    gateway accepting a message and the ledger recording it. Values go through JSON, as in the real
    store.
    """

    def __init__(self, fail_on_set: int | None = None) -> None:
        self.data: dict[str, Any] = {}
        self.sets = 0
        self.gets: list[str] = []
        self.fail_on_set = fail_on_set

    def get(self, key: str, default: Any = None) -> Any:
        self.gets.append(key)
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.sets += 1
        if self.fail_on_set is not None and self.sets == self.fail_on_set:
            raise RuntimeError("worker crashed while recording an accepted message")
        self.data[key] = json.loads(json.dumps(value))


class FakeMessages:
    """``GET /messages/{id}`` for the sensor and trigger tests: each id walks through its list of
    states, one per read (the last repeats); ids not listed answer 404; ``faults`` are answered
    first, one per request. :meth:`slow` answers after a short sleep and counts reads in flight."""

    def __init__(self, states: dict[str, Iterable[str]], blocklisted: Iterable[str] = ()) -> None:
        self.states = {i: list(s) for i, s in states.items()}
        self.blocklisted = set(blocklisted)
        self.reads: list[str] = []
        self.faults: list[httpx.Response] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def record(self, message_id: str) -> dict[str, Any]:
        states = self.states[message_id]
        state = states.pop(0) if len(states) > 1 else states[0]
        return {
            "id": message_id,
            "state": state,
            "recipient": RECIPIENTS[IDS.index(message_id)] if message_id in IDS else "+393331234599",
            "message": TEXT,
            "encoding": "GSM-7",
            "messageCount": 1,
            "price": 0.05,
            "totalPrice": 0.05,
            "blocklisted": message_id in self.blocklisted,
            "blocklistedReason": "forbidden word" if message_id in self.blocklisted else None,
            "callback": {"url": "https://hooks.example.test/x", "headers": {"X-Key": CALLBACK_SECRET}},
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        message_id = request.url.path.rsplit("/", 1)[-1]
        self.reads.append(message_id)
        if self.faults:
            return self.faults.pop(0)
        if message_id not in self.states:
            return httpx.Response(404, json={"code": 404, "message": "Message not found"})
        return httpx.Response(200, json={"data": self.record(message_id)})

    async def slow(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return self(request)
