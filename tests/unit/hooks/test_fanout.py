"""The one fan-out of sends (hooks/fanout.py) on its own, over an outbox of the test's making: the
first refusal of the account stops the sends not yet started, and a dry-run fan-out sends nothing."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_smsww.exceptions import SmsWwInsufficientCreditError
from airflow_provider_smsww.hooks.fanout import FanOut
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.models import Message, Region, SendRequest
from airflow_provider_smsww.validation import Recipient
from tests.fakes import FakeGateway

ALICE, BOB, CAROL = "+393331234567", "+393331234568", "+393331234569"


@dataclass(frozen=True)
class OneText:
    """An outbox that sends one text to every recipient."""

    region: Region = "WW"

    def request(self, recipient: Recipient, *, dry_run: bool) -> SendRequest:
        return SendRequest.of(
            recipient.e164, "Hi", sender=None, dry_run=dry_run, fail_on_multiple_messages=False, callback=None
        )


def recipients(*numbers: str) -> list[Recipient]:
    return [Recipient(n, "IT", "39") for n in numbers]


async def test_a_refusal_of_the_account_stops_the_sends_not_yet_started(
    gateway: FakeGateway, hook: SmsWwHook
) -> None:
    gateway.fail[BOB] = (402, {"code": 1, "message": "Insufficient credit"})
    failures: dict[str, str] = {}
    fanout = FanOut(hook, OneText(), 1, failures)
    sent: list[Message] = []

    async def send(recipient: Recipient) -> None:
        if not fanout.stopped(recipient) and (message := await fanout.send(recipient)) is not None:
            sent.append(message)

    await fanout.run(recipients(ALICE, BOB, CAROL), send)
    assert [m.recipient for m in sent] == [ALICE]
    assert isinstance(fanout.fatal, SmsWwInsufficientCreditError)
    assert fanout.refused == {BOB: fanout.fatal}
    assert failures == {BOB: fanout.fatal.message, CAROL: f"not sent: {fanout.fatal.message}"}
    assert [m["recipient"] for m in gateway.stored] == [ALICE]


async def test_a_dry_run_fan_out_sends_nothing(gateway: FakeGateway, hook: SmsWwHook) -> None:
    fanout = FanOut(hook, OneText(), 2, {}, dry_run=True)
    results = await fanout.run(recipients(ALICE, BOB), fanout.send)
    assert all(isinstance(r, Message) for r in results)
    assert gateway.stored == []
    assert sorted(gateway.dry_run_to()) == [ALICE, BOB]
