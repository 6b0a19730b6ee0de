"""Issue 23 item 2: the settle rule (sending/settle.py), a pure function of the batch's evidence: how
long an unknown outcome must stay unlisted before it is sent again, and the gateway's clock offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sending.ledger import MemoryLedger, TaskStateLedger
from airflow_provider_smsww.sending.settle import (
    FLOOR,
    NO_EVIDENCE_WAIT,
    Evidence,
    resend_at,
    settle_window,
)
from tests.fakes import FakeStore

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_without_evidence_the_window_is_the_old_default_or_the_users_choice() -> None:
    """No message of the batch seen listed yet: nothing shows the listing works, so fail closed."""
    evidence = Evidence()
    evidence.accepted("a", at(0), at(0.1), None)
    evidence.scanned(at(1), [], complete=True)  # looked, not listed yet
    assert settle_window(evidence) == NO_EVIDENCE_WAIT == 300
    assert settle_window(evidence, settle_time=30) == 30
    assert resend_at(at(5), evidence) == at(305)


def test_a_consistent_listing_settles_after_the_floor() -> None:
    evidence = Evidence()
    for i in range(3):
        evidence.accepted(str(i), at(i), at(i + 0.2), None)
    evidence.scanned(at(3), ["0", "1", "2", "someone else's"], complete=True)
    assert (evidence.listed, evidence.longest_absence) == (3, 0.0)
    assert settle_window(evidence) == FLOOR == 15
    assert resend_at(at(3), evidence) == at(18)


@pytest.mark.parametrize("lag", [6.0, 60.0])
def test_a_lagging_listing_waits_three_times_the_longest_lag_seen(lag: float) -> None:
    """The same rule at any scale: messages listed only ``lag`` after they were stored."""
    evidence = Evidence()
    evidence.accepted("a", at(0), at(0.1), None)
    evidence.accepted("b", at(0), at(0.1), None)
    polls = [at(0.1 + k * lag / 10) for k in range(1, 13)]
    for when in polls:
        listed = ["a", "b"] if when - at(0) >= timedelta(seconds=lag) else []
        evidence.scanned(when, listed, complete=True)
    assert lag * 0.85 <= evidence.longest_absence < lag
    assert 3 * lag * 0.85 <= settle_window(evidence) < 3 * lag
    # The user's settle_time is a minimum: it can lengthen the window, never shorten it.
    assert settle_window(evidence, settle_time=0.05) == settle_window(evidence)
    assert settle_window(evidence, settle_time=10 * lag) == 10 * lag


def test_messages_still_unlisted_keep_the_window_growing() -> None:
    """One message seen listed at once, another still absent after 100 s: its absence is a lag too."""
    evidence = Evidence()
    evidence.accepted("fast", at(0), at(0.1), None)
    evidence.accepted("slow", at(0), at(0.1), None)
    evidence.scanned(at(1), ["fast"], complete=True)
    evidence.scanned(at(100.1), [], complete=True)
    assert evidence.listed == 1
    assert settle_window(evidence) == pytest.approx(300)


def test_a_scan_that_stopped_early_is_no_evidence_of_absence() -> None:
    """A look-up stops once every unknown outcome is found: what it did not read is not absent."""
    evidence = Evidence()
    evidence.accepted("a", at(0), at(0.1), None)
    evidence.scanned(at(50), [], complete=False)
    assert evidence.longest_absence == 0.0


def test_an_earlier_trys_messages_are_evidence_dated_from_the_resume() -> None:
    """Issue 28 item 4: a resumed try awaits the earlier try's messages from when it read the ledger (at
    100 s here), on its own clock: listed at once, they settle after the floor; one still missing keeps
    the window past every look-up that misses it, its absence counted from the resume, never before."""
    listed = Evidence()
    listed.recorded_before(["a", "b"], at(100))
    listed.scanned(at(100), ["a", "b"], complete=True)
    assert (listed.listed, settle_window(listed)) == (2, FLOOR)
    lagging = Evidence()
    lagging.recorded_before(["a", "b"], at(100))
    lagging.scanned(at(100), ["a"], complete=True)
    assert resend_at(at(100), lagging) > at(100)
    for look in (103, 110, 140):
        lagging.scanned(at(look), [], complete=True)
        assert lagging.longest_absence == look - 100
        assert resend_at(at(100), lagging) > at(look)  # nothing resent while "b" is missing


def test_an_unknown_outcome_found_late_is_lag_evidence() -> None:
    evidence = Evidence()
    evidence.found_after(answered=at(0), last_missed=at(40))
    assert (evidence.listed, evidence.longest_absence) == (1, 40.0)
    assert settle_window(evidence) == 120


def test_created_at_bounds_the_gateway_clock_offset() -> None:
    """createdAt is stamped between our request and its answer, on the gateway's clock."""
    behind = timedelta(minutes=6)
    evidence = Evidence()
    assert evidence.clock_offset is None
    evidence.accepted("a", at(0), at(0.5), at(0.2) - behind)
    evidence.accepted("b", at(1), at(1.1), at(1.05) - behind)
    assert evidence.offset_low is not None
    assert evidence.offset_high is not None
    assert evidence.offset_low <= -behind <= evidence.offset_high
    assert evidence.offset_high - evidence.offset_low <= timedelta(seconds=0.1)
    assert evidence.clock_offset == evidence.offset_low - timedelta(seconds=2)
    # A createdAt stamped after the answer contradicts the others: the lower bound wins.
    evidence.accepted("c", at(2), at(2.1), at(30) - behind)
    assert evidence.clock_offset == evidence.offset_high - timedelta(seconds=2)
    assert evidence.clock_offset < -behind


def test_evidence_goes_to_the_next_try_through_the_ledger() -> None:
    evidence = Evidence()
    evidence.accepted("a", at(0), at(0.5), at(0.2) - timedelta(minutes=6))
    evidence.found_after(answered=at(0), last_missed=at(7))
    for ledger in (MemoryLedger(), TaskStateLedger(FakeStore())):
        assert Evidence.from_dict(ledger.settle_evidence()) == Evidence()
        ledger.set_round({"+393330000001": at(1)}, open=False, evidence=evidence.as_dict())
        carried = Evidence.from_dict(ledger.settle_evidence())
        assert carried == Evidence(1, 7.0, evidence.offset_low, evidence.offset_high)
        assert ledger.unknown_outcomes() == {"+393330000001": at(1)}
    assert Evidence.from_dict({"listed": "x"}) == Evidence()


def test_the_operator_settles_from_evidence_by_default() -> None:
    op = SmsSendOperator(task_id="t", recipients="+393331234567", message="Hi")
    assert op.settle_time is None
