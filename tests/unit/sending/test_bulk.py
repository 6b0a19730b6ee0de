"""The bulk send (sending/bulk.py) when a real send's outcome is unknown: looked up, never resent
blindly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.bulk import send_all
from airflow_provider_smsww.sending.ledger import MemoryLedger
from tests.fakes import FakeGateway

TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"
SINCE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def send(recipients: list[str], ledger: MemoryLedger) -> Any:
    hook = SmsWwHook()
    try:
        return await send_all(hook, check_locally(recipients, TEXT), ledger, now=lambda: datetime.now(UTC))
    finally:
        await hook.aclose()


async def test_an_unknown_outcome_not_listed_yet_waits_for_the_next_try(gateway: FakeGateway) -> None:
    """A slow gateway may list the message a moment after the look-up: the try does not resend, the
    next one looks again and sends only then."""
    gateway.lose_once.add(BOB)
    clock = [datetime.now(UTC)]
    naps: list[float] = []

    async def sleep(seconds: float) -> None:  # issue 12 item 4: the try waits, it does not resend
        assert gateway.real_sends() == [ALICE, BOB]  # BOB tried once so far
        naps.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    hook = SmsWwHook()
    try:
        report = await send_all(
            hook,
            check_locally([ALICE, BOB], TEXT),
            MemoryLedger(),
            now=lambda: clock[0],
            settle_time=60,
            sleep=sleep,
        )
    finally:
        await hook.aclose()
    assert report.failures == {}
    assert sum(naps) == 60  # absent for the settle time, then sent again
    assert gateway.real_sends() == [ALICE, BOB, BOB]
    assert [m["recipient"] for m in gateway.stored] == [ALICE, BOB]


async def test_an_unreadable_answer_to_a_real_send_is_looked_up_not_resent(gateway: FakeGateway) -> None:
    gateway.garble_once.add(ALICE)
    report = await send([ALICE], MemoryLedger())
    assert report.failures == {}
    assert [r["id"] for r in report.records] == [gateway.stored[0]["id"]]
    assert gateway.real_sends() == [ALICE]


class StallingLedger(MemoryLedger):
    """A ledger whose write for one recipient never finishes (a slow store when the timeout strikes)."""

    def __init__(self, stall_on: str) -> None:
        super().__init__()
        self.stall_on = stall_on
        self.stalled = asyncio.Event()

    async def arecord(self, recipient: str, record: dict[str, Any]) -> None:
        if recipient == self.stall_on:
            self.stalled.set()
            await asyncio.Event().wait()
        await super().arecord(recipient, record)


async def test_a_try_stopped_by_its_timeout_leaves_only_its_unrecorded_sends_unknown(
    gateway: FakeGateway,
) -> None:
    """Cancelled part-way (``execution_timeout``, through ``run_in_new_loop``), a try closes its round:
    the send whose record was being written is an unknown outcome, the recipients never sent are not.
    The next try finds the first in ``GET /messages`` and sends the others at once, without waiting
    the no-evidence window; nobody is sent twice."""
    numbers = [f"+39333123450{n}" for n in range(5)]
    ledger = StallingLedger(stall_on=numbers[1])
    hook = SmsWwHook()
    try:
        first = asyncio.create_task(
            send_all(hook, check_locally(numbers, TEXT), ledger, now=lambda: datetime.now(UTC), concurrency=1)
        )
        await ledger.stalled.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    finally:
        await hook.aclose()
    assert gateway.real_sends() == numbers[:2]
    assert set(ledger.unknown_outcomes() or {}) == {numbers[1]}  # the round is closed, not left open

    async def no_wait(seconds: float) -> None:
        raise AssertionError(f"the retry waited {seconds} s")

    ledger.stall_on = ""
    hook = SmsWwHook()
    try:
        report = await send_all(
            hook, check_locally(numbers, TEXT), ledger, now=lambda: datetime.now(UTC), sleep=no_wait
        )
    finally:
        await hook.aclose()
    assert report.failures == {}
    assert sorted(gateway.real_sends()) == numbers  # each once: the stalled one found, not resent
    assert [r["recipient"] for r in report.records] == numbers
