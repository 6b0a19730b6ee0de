"""A deferrable settle wait (``SmsSendOperator(deferrable=True)``): the try leaves its unknown outcomes
to the triggerer instead of waiting in the worker, and the resumed order sends only what is proven
unsent, never twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.sending import order
from airflow_provider_smsww.sending.ledger import MemoryLedger
from airflow_provider_smsww.sending.lookup import batch_of, look_up, lookup_of
from airflow_provider_smsww.sending.settle import NO_EVIDENCE_WAIT
from airflow_provider_smsww.triggers.send_wait import SmsSendWaitTrigger
from tests.fakes import FakeGateway

ALICE, BOB = "+393331234567", "+393331234568"
SPEC = order.SendSpec(recipients=[ALICE, BOB], message="Your order shipped", settle_in_place=False)


async def send_at(moment: datetime, ledger: MemoryLedger) -> order.SendOutcome:
    batch = order.check(SPEC, "dag", "task", "run", -1)
    hook = SmsWwHook()
    try:
        return await order.send(hook, batch, ledger, SPEC, now=lambda: moment)
    finally:
        await hook.aclose()


async def test_an_unknown_outcome_is_left_to_the_triggerer_then_resent_once_when_due(
    gateway: FakeGateway,
) -> None:
    gateway.lose_once.add(BOB)  # a 502 before anything is stored
    ledger = MemoryLedger()
    start = datetime.now(UTC)

    first = await send_at(start, ledger)
    assert gateway.real_sends() == [ALICE, BOB]
    assert first.error is None  # not a failure: the wait goes on elsewhere
    assert first.lookup is not None
    assert [m["recipient"] for m in first.lookup["messages"]] == [BOB]
    assert "headers" not in str(first.lookup)
    # Alice's message is listed at once (the fake gateway's listing has no lag): the window is the floor.
    assert first.settle_at is not None
    assert timedelta(0) < first.settle_at - start < timedelta(seconds=NO_EVIDENCE_WAIT)
    assert ledger.unknown_outcomes() == {BOB: start}

    early = await send_at(start + timedelta(seconds=1), ledger)  # resumed before due: waits again
    assert gateway.real_sends() == [ALICE, BOB]
    assert early.settle_at == first.settle_at

    resumed = await send_at(first.settle_at, ledger)
    assert gateway.real_sends() == [ALICE, BOB, BOB]
    assert (resumed.error, resumed.settle_at) == (None, None)
    assert [r["recipient"] for r in resumed.records] == [ALICE, BOB]
    assert [m["recipient"] for m in gateway.stored] == [ALICE, BOB]


async def test_a_stored_send_is_found_on_resume_and_not_sent_again(gateway: FakeGateway) -> None:
    gateway.uncertain_once.add(BOB)  # stored, then a 502
    ledger = MemoryLedger()
    start = datetime.now(UTC)
    first = await send_at(start, ledger)
    # Found by the round's own look-up already, or on resume: either way never sent again.
    if first.settle_at is not None:
        await send_at(first.settle_at, ledger)
    assert gateway.real_sends() == [ALICE, BOB]
    assert [m["recipient"] for m in gateway.stored] == [ALICE, BOB]


async def test_the_trigger_fires_early_once_every_unknown_outcome_is_listed(gateway: FakeGateway) -> None:
    spec = order.SendSpec(recipients=[ALICE, BOB], message="Your order shipped")
    batch = order.check(spec, "dag", "task", "run", -1)
    started = datetime.now(UTC) - timedelta(seconds=5)
    lookup = lookup_of(batch, [BOB], started, None)
    later = datetime.now(UTC) + timedelta(minutes=5)
    trigger = SmsSendWaitTrigger(later, "1 send to settle", lookup, poll_interval=0.05, rounds=1)

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    waiting = asyncio.create_task(first_event())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # not listed yet: the trigger keeps looking
    hook = SmsWwHook()  # Bob's send was stored after all (its answer was lost)
    try:
        await hook.asend_request(batch.request(batch.recipients[1], dry_run=False), "WW")
    finally:
        await hook.aclose()
    payload = await asyncio.wait_for(waiting, timeout=5)
    assert payload == {"status": "resume", "settled": True, "rounds": 1}
    assert gateway.real_sends() == [BOB]  # the trigger itself sends nothing


def test_the_trigger_serializes_its_lookup_and_round(gateway: FakeGateway) -> None:
    moment = datetime(2026, 12, 5, tzinfo=UTC)
    path, kwargs = SmsSendWaitTrigger(moment, "why", {"messages": []}, rounds=2).serialize()
    assert path == "airflow_provider_smsww.triggers.send_wait.SmsSendWaitTrigger"
    assert kwargs["rounds"] == 2
    assert SmsSendWaitTrigger(**kwargs).lookup == {"messages": []}
    assert SmsSendWaitTrigger(**kwargs).not_before == kwargs["not_before"]  # kept across the triggerer


async def test_the_trigger_neither_looks_nor_fires_within_one_interval_of_the_deferral() -> None:
    """A moment already past fires one ``poll_interval`` after the deferral, not at once."""
    made = datetime.now(UTC)
    trigger = SmsSendWaitTrigger(made - timedelta(seconds=1), "window open", None, poll_interval=0.3)
    events = [event.payload async for event in trigger.run()]
    assert events == [{"status": "resume", "settled": False, "rounds": 0}]
    assert datetime.now(UTC) - made >= timedelta(seconds=0.3)
    with pytest.raises(ValueError, match="timezone-aware"):
        SmsSendWaitTrigger(datetime(2026, 12, 5))


async def test_a_personalised_batch_settles_each_entry_by_its_own_text(gateway: FakeGateway) -> None:
    """The trigger's look-up rebuilds the entries: a number with two texts is two messages."""
    entries = [
        {"recipient": ALICE, "message": "Order A1 shipped"},
        {"recipient": BOB, "message": "Order B1 shipped"},
        {"recipient": BOB, "message": "Order B2 shipped"},
    ]
    spec = order.SendSpec(recipients=[], message="", messages=entries, settle_in_place=False)
    batch = order.check(spec, "dag", "task", "run", -1)
    gateway.lose_once.add(BOB)  # the first of Bob's two messages is lost before storing
    ledger = MemoryLedger()
    start = datetime.now(UTC)
    hook = SmsWwHook()
    try:
        first = await order.send(hook, batch, ledger, spec, now=lambda: start)
        assert first.lookup is not None
        assert [m["message"] for m in first.lookup["messages"]] == ["Order B1 shipped"]
        assert first.settle_at is not None
        unknown = batch_of(first.lookup)
        keys = {r.key for r in unknown.recipients}
        assert await look_up(hook, unknown, first.lookup, keys) == set()  # not listed
        await order.send(hook, batch, ledger, spec, now=lambda: first.settle_at)
    finally:
        await hook.aclose()
    texts = sorted(m["message"] for m in gateway.stored)
    assert texts == ["Order A1 shipped", "Order B1 shipped", "Order B2 shipped"]
