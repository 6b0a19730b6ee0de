"""Issue 12 items 2 and 3: how reconciliation reads ``GET /messages``.

Item 2: a listed recipient in national form (``3931234567`` with ``internationalPrefix`` ``39``, i.e.
+39 393 1234567) was read as +3931234567, missed, and the message was sent again. Item 3: a dry run
listed without an ``options`` object was taken for a real send: the recipient was recorded as sent
while nothing was. A listed message is ours only on positive evidence that it was really sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.models import Message
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.bulk import send_all
from airflow_provider_smsww.sending.ledger import MemoryLedger
from airflow_provider_smsww.sending.reconcile import is_real_send, listed_numbers
from tests.fakes import FakeGateway

TEXT = "Report ready"
NATIONAL = "+393931234567"  # listed as "3931234567" with internationalPrefix "39"


async def send(recipients: list[str], ledger: MemoryLedger) -> Any:
    hook = SmsWwHook()
    try:
        # A short settle time: what stays undecided is reported once it has settled (issue 12 item 4).
        return await send_all(
            hook, check_locally(recipients, TEXT), ledger, now=lambda: datetime.now(UTC), settle_time=0.05
        )
    finally:
        await hook.aclose()


def test_a_national_form_listing_is_read_with_its_prefix() -> None:
    listed = Message.model_validate({"recipient": "3931234567", "internationalPrefix": "39"})
    assert listed_numbers(listed) == {NATIONAL}


def test_an_ambiguous_listing_names_every_reading() -> None:
    # "390612345" with prefix 39: +39 0612345 and +39 390612345 are both valid Italian numbers.
    listed = Message.model_validate({"recipient": "390612345", "internationalPrefix": "39"})
    assert listed_numbers(listed) == {"+390612345", "+39390612345"}


async def test_a_national_form_listing_is_found_not_resent(gateway: FakeGateway) -> None:
    gateway.list_national = True
    gateway.uncertain_once.add(NATIONAL)
    ledger = MemoryLedger()
    report = await send([NATIONAL], ledger)
    assert report.failures == {}
    assert gateway.real_sends() == [NATIONAL]  # one SMS, not a second one after the 502
    assert [r["id"] for r in report.records] == [gateway.stored[0]["id"]]


async def test_an_ambiguous_listing_is_undecided_not_resent(gateway: FakeGateway) -> None:
    """+39 390612345 is listed as "390612345", which +39 0612345 could be too: neither is resent and
    +39 390612345 is not taken for sent; +39 0612345, listed unambiguously as "0612345", is found."""
    both = ["+390612345", "+39390612345"]
    gateway.list_national = True
    gateway.uncertain_once.update(both)
    report = await send(both, MemoryLedger())
    assert [r["recipient"] for r in report.records] == ["+390612345"]
    assert list(report.failures) == ["+39390612345"]
    assert "undecided" in report.failures["+39390612345"]
    assert sorted(gateway.real_sends()) == sorted(both)  # each once, neither resent


def test_only_positive_evidence_makes_a_real_send() -> None:
    assert not is_real_send(Message.model_validate({"id": "x", "state": "NEW"}))
    assert not is_real_send(Message.model_validate({"id": "x", "options": {}}))
    assert not is_real_send(Message.model_validate({"id": "x", "options": {"dryRun": True}}))
    assert is_real_send(Message.model_validate({"id": "x", "options": {"dryRun": False}}))
    assert is_real_send(Message.model_validate({"id": "x", "state": "DELIVERED"}))
    assert is_real_send(Message.model_validate({"id": "x", "sentAt": "2026-01-01T00:00:00Z"}))


async def test_a_dry_run_listed_without_options_is_never_taken_for_sent(gateway: FakeGateway) -> None:
    """The gate's dry run is listed (no options object); the real send is lost before storing (502):
    the recipient must not be recorded as sent, and must not be sent blindly either."""
    recipient = "+393331234567"
    gateway.list_dry_runs = True
    hook = SmsWwHook()
    try:
        batch = check_locally([recipient], TEXT)
        await hook.aestimate(batch.request(batch.recipients[0], dry_run=True))  # the gate's dry run
    finally:
        await hook.aclose()
    gateway.lose_once.add(recipient)
    report = await send([recipient], MemoryLedger())
    assert report.records == []  # not "sent": nothing was
    assert "undecided" in report.failures[recipient]
    assert gateway.real_sends() == [recipient]
