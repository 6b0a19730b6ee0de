"""Quiet hours (sending/window.py and the send order): each recipient is texted only inside the
window of its local time; the others wait for theirs, and nobody is sent twice across the rounds."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import SmsWwGateError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sending import order
from airflow_provider_smsww.sending.ledger import MemoryLedger
from airflow_provider_smsww.sending.window import Schedule, SendWindow, schedule
from tests.fakes import FakeGateway

ROME, NEW_YORK = "+393331234567", "+12125551234"
RUSSIA = "+79161234567"  # a mobile range listed in 16 zones, Kaliningrad to Kamchatka
DAYTIME = SendWindow(time(8), time(20))
#: 10:00 in Rome, 04:00 in New York (winter).
MORNING_IN_ROME = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
#: 08:00 in New York.
NY_OPENS = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        (DAYTIME, [time(8), time(12), time(19, 59, 59)], [time(20), time(3), time(7, 59)]),
        (SendWindow(time(21), time(7)), [time(21), time(23, 59), time(0), time(6, 59)], [time(7), time(12)]),
    ],
)
def test_a_window_holds_its_start_not_its_end_and_may_wrap_past_midnight(
    window: SendWindow, inside: list[time], outside: list[time]
) -> None:
    assert all(window.contains(t) for t in inside)
    assert not any(window.contains(t) for t in outside)


@pytest.mark.parametrize(
    ("window", "default_tz", "error"),
    [
        ((time(8),), None, "two datetime.time"),
        ("08:00-20:00", None, "two datetime.time"),
        ((datetime(2026, 1, 1, 8), time(20)), None, "two datetime.time"),
        ((time(8), time(8)), None, "same time"),
        ((time(8, tzinfo=UTC), time(20)), None, "without a tzinfo"),
        ((time(8), time(20)), "Mars/Olympus", "not a known IANA time zone"),
        (None, "Europe/Rome", "only used with a send_window"),
    ],
)
def test_a_malformed_window_is_refused_when_the_dag_is_parsed(
    window: Any, default_tz: Any, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        SmsSendOperator(
            task_id="t", recipients=ROME, message="hi", send_window=window, send_window_default_tz=default_tz
        )


def test_each_number_waits_for_the_window_of_its_own_time_zone() -> None:
    plan = schedule(DAYTIME, [ROME, NEW_YORK], MORNING_IN_ROME)
    assert plan.problems == {}
    assert plan.waiting == {NEW_YORK: NY_OPENS}


def test_a_number_in_several_zones_waits_for_the_hours_they_all_share() -> None:
    # 08-20 in Kaliningrad (UTC+2) and in Kamchatka (UTC+12) overlap from 06:00 to 08:00 UTC only.
    at_night = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
    assert schedule(DAYTIME, [RUSSIA], at_night).waiting == {RUSSIA: datetime(2026, 12, 5, 6, 0, tzinfo=UTC)}
    assert schedule(DAYTIME, [RUSSIA], datetime(2026, 12, 5, 7, 0, tzinfo=UTC)).waiting == {}


def test_zones_that_share_no_hour_of_the_window_are_refused() -> None:
    # Two hours a day cannot be shared by Kaliningrad and Kamchatka, ten hours apart.
    plan = schedule(SendWindow(time(9), time(11)), [RUSSIA, ROME], MORNING_IN_ROME)
    assert list(plan.problems) == [RUSSIA]
    assert "share no hour" in plan.problems[RUSSIA]


def test_a_number_without_a_zone_is_refused_unless_a_default_zone_is_given() -> None:
    nowhere = "+80012345678"  # an international freephone number: no country, no zone
    assert "time zone is unknown" in schedule(DAYTIME, [nowhere], MORNING_IN_ROME).problems[nowhere]
    given = SendWindow(time(8), time(20), default_tz="Europe/Rome")
    assert schedule(given, [nowhere], MORNING_IN_ROME) == Schedule({}, {})  # 10:00 in Rome: open


def test_the_opening_follows_daylight_saving_time() -> None:
    # New York moves to UTC-4 on 2027-03-14: 08:00 there is 12:00 UTC from that day on.
    before, after = datetime(2027, 3, 13, 2, 0, tzinfo=UTC), datetime(2027, 3, 14, 2, 0, tzinfo=UTC)
    assert schedule(DAYTIME, [NEW_YORK], before).waiting[NEW_YORK] == datetime(2027, 3, 13, 13, 0, tzinfo=UTC)
    assert schedule(DAYTIME, [NEW_YORK], after).waiting[NEW_YORK] == datetime(2027, 3, 14, 12, 0, tzinfo=UTC)


def spec(**kwargs: Any) -> order.SendSpec:
    return order.SendSpec(
        recipients=[ROME, NEW_YORK], message="Your order shipped", send_window=DAYTIME, **kwargs
    )


async def send_at(moment: datetime, ledger: MemoryLedger, **kwargs: Any) -> order.SendOutcome:
    batch = order.check(spec(**kwargs), "dag", "task", "run", -1)
    hook = SmsWwHook()
    try:
        return await order.send(hook, batch, ledger, spec(**kwargs), now=lambda: moment)
    finally:
        await hook.aclose()


async def test_a_frozen_clock_sends_rome_at_once_and_new_york_when_its_window_opens_once(
    gateway: FakeGateway,
) -> None:
    ledger = MemoryLedger()
    first = await send_at(MORNING_IN_ROME, ledger)
    assert gateway.real_sends() == [ROME]
    assert (first.waiting, first.waiting_until) == (1, NY_OPENS)
    assert [r["recipient"] for r in first.records] == [ROME]

    early = await send_at(NY_OPENS - timedelta(seconds=1), ledger)  # a wake-up a second early
    assert gateway.real_sends() == [ROME]
    assert early.waiting_until == NY_OPENS

    second = await send_at(NY_OPENS, ledger)
    assert gateway.real_sends() == [ROME, NEW_YORK]
    assert (second.waiting, second.waiting_until, second.error) == (0, None, None)
    assert [r["recipient"] for r in second.records] == [ROME, NEW_YORK]  # the whole batch, in order

    third = await send_at(NY_OPENS + timedelta(hours=1), ledger)
    assert gateway.real_sends() == [ROME, NEW_YORK]  # nobody twice
    assert len(third.records) == 2


async def test_a_crash_before_the_window_opens_leaves_the_waiting_numbers_looked_up_not_resent(
    gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A round that stopped mid-way may have sent anyone not recorded: the waiting recipients are kept
    as unknown outcomes in the ledger, so their window's round looks them up first."""
    ledger = MemoryLedger(started=MORNING_IN_ROME - timedelta(minutes=1))  # round left open: a crash
    # settle_time 0: Rome, not listed, is sent again at once (the frozen clock would wait forever).
    await send_at(MORNING_IN_ROME, ledger, settle_time=0)
    assert gateway.real_sends() == [ROME]
    assert ledger.unknown_outcomes() == {NEW_YORK: MORNING_IN_ROME}
    await send_at(NY_OPENS, ledger, settle_time=0)
    assert gateway.real_sends() == [ROME, NEW_YORK]
    # Each round looked its number up in GET /messages, and sent it only once found absent.
    assert sum("of unknown outcome absent" in r.getMessage() for r in caplog.records) == 2


def test_a_gate_error_names_the_number_no_window_fits_before_any_request(gateway: FakeGateway) -> None:
    bad = order.SendSpec(recipients=[ROME, RUSSIA], message="hi", send_window=SendWindow(time(9), time(11)))
    with pytest.raises(SmsWwGateError, match=r"\+79161234567: send_window"):
        order.check(bad, "dag", "task", "run", -1)
    assert gateway.posts == []


async def test_a_personalised_batch_waits_per_number_and_sends_each_text_once(gateway: FakeGateway) -> None:
    entries = [
        {"recipient": ROME, "message": "Order A1 shipped"},
        {"recipient": NEW_YORK, "message": "Order B1 shipped"},
        {"recipient": NEW_YORK, "message": "Order B2 shipped"},
    ]
    personal = order.SendSpec(recipients=[], message="", messages=entries, send_window=DAYTIME)
    batch = order.check(personal, "dag", "task", "run", -1)
    ledger = MemoryLedger()
    hook = SmsWwHook()
    try:
        first = await order.send(hook, batch, ledger, personal, now=lambda: MORNING_IN_ROME)
        assert (first.waiting, first.waiting_until) == (2, NY_OPENS)
        second = await order.send(hook, batch, ledger, personal, now=lambda: NY_OPENS)
        await order.send(hook, batch, ledger, personal, now=lambda: NY_OPENS + timedelta(hours=1))
    finally:
        await hook.aclose()
    assert gateway.real_sends() == [ROME, NEW_YORK, NEW_YORK]
    assert [r["recipient"] for r in second.records] == [ROME, NEW_YORK, NEW_YORK]


async def test_a_round_leaves_a_wait_for_the_next_window_that_is_no_settle_round(
    gateway: FakeGateway,
) -> None:
    ledger = MemoryLedger()
    first = (await send_at(MORNING_IN_ROME, ledger)).next_wait()
    assert first == order.SendWait(NY_OPENS, "1 recipient(s) outside their send window", None, settles=False)
    assert (await send_at(NY_OPENS, ledger)).next_wait() is None
