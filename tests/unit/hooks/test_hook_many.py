"""SmsWwHook.send_many / asend_many against pytest-httpx: a text per recipient, one result per entry,
bounded concurrency, local refusals per entry, and a refusal of the account stopping the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwError,
    SmsWwGateError,
    SmsWwInsufficientCreditError,
    SmsWwValidationError,
)
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.models import Message
from tests.fakes import FakeGateway

ALICE, BOB = "+393331234567", "+393331234568"


def test_one_result_per_entry_in_entry_order(gateway: FakeGateway) -> None:
    entries = [
        {"recipient": ALICE, "message": "Order A1 shipped"},
        {"recipient": "3331234567", "message": "no plus"},
        {"recipient": BOB, "message": "Order B2 shipped", "sender": "Shop"},
        {"recipient": ALICE, "message": "Order A3 shipped"},
        {"recipient": "+39 333 123 4567", "message": "Order A1 shipped"},  # an exact duplicate
    ]
    results = SmsWwHook().send_many(entries, sender="Negozio", max_concurrency=2)
    assert len(results) == 5
    assert isinstance(results[1], SmsWwValidationError)
    first, _, bob, second, duplicate = results
    assert isinstance(first, Message)
    assert isinstance(bob, Message)
    assert isinstance(second, Message)
    assert duplicate is first  # sent once, the same result for both entries
    assert sorted((m["recipient"], m["message"], m["sender"]) for m in gateway.stored) == [
        (ALICE, "Order A1 shipped", "Negozio"),
        (ALICE, "Order A3 shipped", "Negozio"),
        (BOB, "Order B2 shipped", "Shop"),
    ]


def test_dry_run_sends_nothing(gateway: FakeGateway) -> None:
    results = SmsWwHook().send_many([{"recipient": ALICE, "message": "Hi"}], dry_run=True)
    assert isinstance(results[0], Message)
    assert gateway.stored == []
    assert len(gateway.dry_runs) == 1


def test_a_list_of_the_wrong_shape_is_refused_before_any_request(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match=r"messages\[0\] needs message as a string"):
        SmsWwHook().send_many([{"recipient": ALICE}])
    assert httpx_mock.get_requests() == []


def test_a_refusal_of_the_account_stops_the_rest(gateway: FakeGateway) -> None:
    gateway.fail[BOB] = (402, {"code": 1, "message": "Insufficient credit"})
    entries = [{"recipient": n, "message": "Hi"} for n in (ALICE, BOB, "+393331234569", "+393331234560")]
    results = SmsWwHook().send_many(entries, max_concurrency=1)
    assert isinstance(results[0], Message)
    assert all(isinstance(r, SmsWwInsufficientCreditError) for r in results[1:])
    assert [m["recipient"] for m in gateway.stored] == [ALICE]


def test_concurrency_is_bounded(gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    in_flight = peak = 0
    real = SmsWwHook.asend_request

    async def counting(self: SmsWwHook, *args: Any, **kwargs: Any) -> Message:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        try:
            return await real(self, *args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(SmsWwHook, "asend_request", counting)
    entries = [{"recipient": f"+39333123{i:04d}", "message": f"Order {i}"} for i in range(12)]

    async def run() -> list[Message | SmsWwError]:
        hook = SmsWwHook()
        try:
            return await hook.asend_many(entries, max_concurrency=3)
        finally:
            await hook.aclose()

    results = asyncio.run(run())
    assert all(isinstance(r, Message) for r in results)
    assert peak == 3
    assert len(gateway.stored) == 12
