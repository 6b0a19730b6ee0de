"""Issue 12 item 4: the unknown-outcome window. A send whose outcome is unknown is resent only after it
has been absent from ``GET /messages`` for ``settle_time`` since it was made (the try waits and looks
again meanwhile), and the gateway's clock is read from its ``Date`` header instead of a fixed
5-minute allowance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.bulk import send_all
from airflow_provider_smsww.sending.ledger import MemoryLedger
from airflow_provider_smsww.sending.reconcile import reconcile
from tests.fakes import FakeGateway

TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"


class Clock:
    """A fake clock for ``now`` and ``sleep``: sleeping moves it on."""

    def __init__(self) -> None:
        self.at = [datetime.now(UTC)]
        self.naps: list[float] = []

    def now(self) -> datetime:
        return self.at[0]

    async def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.at[0] += timedelta(seconds=seconds)


async def send(recipients: list[str], ledger: MemoryLedger, clock: Clock, settle_time: float) -> Any:
    hook = SmsWwHook()
    try:
        return await send_all(
            hook,
            check_locally(recipients, TEXT),
            ledger,
            now=clock.now,
            settle_time=settle_time,
            sleep=clock.sleep,
        )
    finally:
        await hook.aclose()


def lagging(gateway: FakeGateway, clock: Clock, lag: timedelta) -> FakeGateway:
    """The gateway lists each message ``lag`` after it stored it, by ``clock``."""
    gateway.clock, gateway.list_lag = clock.now, lag
    return gateway


async def test_an_unknown_outcome_listed_after_a_lag_is_found_not_resent(gateway: FakeGateway) -> None:
    """The gateway lists the message 60 s after storing it (longer than a 5 s retry_delay): the try
    waits and looks again, and finds it; nothing is sent twice."""
    clock = Clock()
    lagging(gateway, clock, timedelta(seconds=60)).uncertain_once.add(BOB)
    report = await send([ALICE, BOB], MemoryLedger(), clock, settle_time=300)
    assert report.failures == {}
    assert gateway.real_sends() == [ALICE, BOB]
    assert [r["id"] for r in report.records] == [m["id"] for m in gateway.stored]
    assert 60 <= sum(clock.naps) < 300  # waited until it was listed, not the whole settle time


async def test_an_unknown_outcome_absent_for_the_settle_time_is_sent_again(gateway: FakeGateway) -> None:
    clock = Clock()
    lagging(gateway, clock, timedelta(days=1)).uncertain_once.add(ALICE)  # never listed in time
    report = await send([ALICE], MemoryLedger(), clock, settle_time=120)
    assert gateway.real_sends() == [ALICE, ALICE]
    assert sum(clock.naps) == 120  # not one second earlier
    assert report.failures == {}


async def test_a_retry_after_a_crash_waits_the_settle_time_before_sending_unrecorded_ones(
    gateway: FakeGateway,
) -> None:
    """The earlier try stopped mid-round (no round closed in the ledger): an unrecorded recipient may
    have been sent just before the crash, so the retry looks and waits before sending it."""
    clock = Clock()
    lagging(gateway, clock, timedelta(seconds=30))
    # The crashed try sent to ALICE (accepted, not recorded, not listed yet).
    hook = SmsWwHook()
    try:
        batch = check_locally([ALICE, BOB], TEXT)
        await hook.asend_request(batch.request(batch.recipients[0], dry_run=False))
    finally:
        await hook.aclose()
    ledger = MemoryLedger(started=clock.now() - timedelta(seconds=1))
    report = await send([ALICE, BOB], ledger, clock, settle_time=300)
    assert report.failures == {}
    assert gateway.real_sends().count(ALICE) == 1  # found once listed, never resent
    assert gateway.real_sends().count(BOB) == 1  # sent once it had been absent for the settle time
    assert sum(clock.naps) >= 300


async def test_the_gateway_clock_is_read_from_its_date_header(gateway: FakeGateway) -> None:
    """A gateway clock 6 minutes behind: its createdAt is before our batch start by more than a fixed
    5-minute allowance would cover; the Date header says by how much."""
    clock = Clock()
    gateway.clock_behind = timedelta(minutes=6)
    since = datetime.now(UTC)
    gateway.uncertain_once.add(ALICE)
    report = await send([ALICE], MemoryLedger(started=None), clock, settle_time=300)
    assert gateway.real_sends() == [ALICE]  # found, though created "6 minutes before" the batch
    assert report.failures == {}
    # And the offset narrows the window: a message of an earlier run 1 minute before, on a gateway
    # whose clock is right, is not taken for this batch's.
    gateway.clock_behind = timedelta(0)
    gateway.listing = [
        (clock.now(), {**gateway.stored[0], "createdAt": (since - timedelta(minutes=1)).isoformat()})
    ]
    hook = SmsWwHook()
    try:
        found = await reconcile(hook, check_locally([ALICE], TEXT), [ALICE], since)
    finally:
        await hook.aclose()
    assert dict(found) == {}


@pytest.mark.parametrize("bad", [-1, "300", float("nan"), True])
def test_settle_time_is_checked_at_parse_time(bad: Any) -> None:
    with pytest.raises(ValueError, match="settle_time"):
        SmsSendOperator(task_id="t", recipients=ALICE, message=TEXT, settle_time=bad)


def test_settle_time_takes_a_timedelta() -> None:
    op = SmsSendOperator(task_id="t", recipients=ALICE, message=TEXT, settle_time=timedelta(minutes=2))
    assert op.settle_time == 120.0
