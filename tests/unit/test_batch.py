"""The money path's fail-closed rules (batch.py), each against what a real gateway might plausibly do
that the spec does not rule out: ignore ``dryRun``, list dry runs, list oldest first, write timestamps
without an offset or numbers without ``+``, answer a real send with something unreadable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwGateError,
    SmsWwReconcileError,
)
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.rendered import as_list
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.bulk import send_all
from airflow_provider_smsww.sending.gate import gate
from airflow_provider_smsww.sending.ledger import MemoryLedger
from airflow_provider_smsww.sending.reconcile import reconcile

API = "https://sms.example.test"
TEXT = "Report ready"
ALICE, BOB = "+393331234567", "+393331234568"
SINCE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def listed(recipient: str, *, minutes: float, id: str, **extra: Any) -> dict[str, Any]:
    """A message as GET /messages lists it, created ``minutes`` after SINCE."""
    created = SINCE + timedelta(minutes=minutes)
    return {
        "id": id,
        "recipient": recipient,
        "message": TEXT,
        "sender": "Openapi",
        "createdAt": created.isoformat(),
        "options": {"dryRun": False},  # positive evidence of a real send (issue 12 item 3)
        **extra,
    }


def serve_list(httpx_mock: Any, messages: list[dict[str, Any]]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"data": messages[skip : skip + limit]})

    httpx_mock.add_callback(handler, method="GET", is_reusable=True)


async def find(recipients: list[str], **kwargs: Any) -> dict[str, Any]:
    batch = check_locally(recipients, TEXT)
    hook = SmsWwHook()
    try:
        found = await reconcile(hook, batch, recipients, SINCE, **kwargs)
    finally:
        await hook.aclose()
    return {r: m.id for r, m in found.items()}


async def test_listed_dry_runs_are_not_taken_for_sends(httpx_mock: Any) -> None:
    serve_list(httpx_mock, [listed(ALICE, minutes=1, id="dry1", options={"dryRun": True})])
    assert await find([ALICE]) == {}


async def test_an_oldest_first_listing_is_scanned_to_the_end(httpx_mock: Any) -> None:
    old = [listed(BOB, minutes=-60 - i, id=f"old{i}") for i in range(3)]
    serve_list(httpx_mock, [*reversed(old), listed(ALICE, minutes=1, id="ours")])
    assert await find([ALICE]) == {ALICE: "ours"}


async def test_a_newest_first_listing_stops_at_the_batch_start(httpx_mock: Any) -> None:
    serve_list(httpx_mock, [listed(BOB, minutes=1, id="b"), listed(ALICE, minutes=-60, id="yesterday")])
    assert await find([ALICE, BOB]) == {BOB: "b"}


async def test_timestamps_without_an_offset_are_utc_not_ignored(httpx_mock: Any) -> None:
    yesterday = (SINCE - timedelta(days=1)).replace(tzinfo=None).isoformat()
    serve_list(httpx_mock, [{**listed(ALICE, minutes=0, id="old"), "createdAt": yesterday}])
    assert await find([ALICE]) == {}


async def test_numbers_listed_without_plus_or_country_prefix_still_match(httpx_mock: Any) -> None:
    serve_list(
        httpx_mock,
        [
            listed("393331234567", minutes=2, id="a"),
            listed("3331234568", minutes=1, id="b", internationalPrefix="39"),
        ],
    )
    assert await find([ALICE, BOB]) == {ALICE: "a", BOB: "b"}


async def test_a_scan_that_cannot_reach_the_batch_start_fails_closed(httpx_mock: Any) -> None:
    serve_list(httpx_mock, [listed(BOB, minutes=5 - i / 100, id=f"m{i}") for i in range(20)])
    with pytest.raises(SmsWwReconcileError, match="could not be confirmed or ruled out within 10"):
        await find([ALICE], scan_limit=10)


class Gateway:
    """Answers sends per ``script`` (recipient -> list of behaviours), lists what it stored."""

    def __init__(self) -> None:
        self.stored: list[dict[str, Any]] = []
        self.posts: list[tuple[str, bool]] = []
        self.dry_run_echo: bool | None = True
        self.blocklist_dry_runs: set[str] = set()
        self.lose_once: set[str] = set()
        self.garble_once: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
            return httpx.Response(200, json={"data": list(reversed(self.stored))[skip : skip + limit]})
        body = json.loads(request.content)
        recipient, dry = body["recipient"], body["options"]["dryRun"]
        self.posts.append((recipient, dry))
        message = {
            "id": f"{len(self.posts):024x}",
            "recipient": recipient,
            "message": body["message"],
            "sender": "Openapi",
            "messageCount": 1,
            "createdAt": datetime.now(UTC).isoformat(),
            "options": {"dryRun": dry} if self.dry_run_echo is not None else {},
        }
        if dry:
            if self.dry_run_echo is False:
                message["options"] = {"dryRun": False}
            if recipient in self.blocklist_dry_runs:
                message |= {"blocklisted": True, "blocklistedReason": "forbidden word"}
            return httpx.Response(201, json={"data": message})
        if recipient in self.lose_once:  # a 502 before the gateway stored anything
            self.lose_once.discard(recipient)
            return httpx.Response(502)
        self.stored.append(message)
        if recipient in self.garble_once:  # stored, but the answer cannot be read
            self.garble_once.discard(recipient)
            return httpx.Response(201, html="<html>accepted</html>")
        return httpx.Response(201, json={"data": message})

    def real_sends(self) -> list[str]:
        return [r for r, dry in self.posts if not dry]


@pytest.fixture
def gateway(httpx_mock: Any) -> Gateway:
    fake = Gateway()
    httpx_mock.add_callback(fake, is_reusable=True, is_optional=True)
    return fake


async def run_gate(recipients: list[str]) -> Any:
    hook = SmsWwHook()
    try:
        return await gate(hook, check_locally(recipients, TEXT), concurrency=20)
    finally:
        await hook.aclose()


async def test_a_dry_run_answered_as_a_real_send_stops_after_one_message(gateway: Gateway) -> None:
    gateway.dry_run_echo = False
    with pytest.raises(SmsWwDryRunIgnoredError, match=r"options\.dryRun false"):
        await run_gate([f"+39333123{i:04d}" for i in range(30)])
    assert len(gateway.posts) == 1  # the canary alone, not 20 in flight


async def test_a_dry_run_answer_without_options_is_not_taken_for_a_real_send(gateway: Gateway) -> None:
    gateway.dry_run_echo = None
    result = await run_gate([ALICE, BOB])
    assert result.total_parts == 2


async def test_a_blocklisted_dry_run_answer_refuses_the_batch(gateway: Gateway) -> None:
    gateway.blocklist_dry_runs.add(BOB)
    with pytest.raises(SmsWwGateError, match="would block") as info:
        await run_gate([ALICE, BOB])
    assert list(info.value.problems) == [BOB]


async def send(recipients: list[str], ledger: MemoryLedger) -> Any:
    hook = SmsWwHook()
    try:
        return await send_all(hook, check_locally(recipients, TEXT), ledger, now=lambda: datetime.now(UTC))
    finally:
        await hook.aclose()


async def test_an_unknown_outcome_not_listed_yet_waits_for_the_next_try(gateway: Gateway) -> None:
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


async def test_an_unreadable_answer_to_a_real_send_is_looked_up_not_resent(gateway: Gateway) -> None:
    gateway.garble_once.add(ALICE)
    report = await send([ALICE], MemoryLedger())
    assert report.failures == {}
    assert [r["id"] for r in report.records] == [gateway.stored[0]["id"]]
    assert gateway.real_sends() == [ALICE]


def test_unknown_callback_keys_are_refused_before_any_request(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match=r"unknown key\(s\) 'header', 'retries'"):
        check_locally([ALICE], TEXT, callback={"url": "https://h.example.test", "header": {}, "retries": 3})
    assert httpx_mock.get_requests() == []


def test_a_budget_without_the_gate_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="needs gate=True"):
        SmsSendOperator(task_id="t", recipients=ALICE, message=TEXT, gate=False, max_total_price=1.0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+393331234567, +393331234568", [ALICE, BOB]),
        ("['+393331234567', '+393331234568']", [ALICE, BOB]),  # a list rendered without native objects
        ('["+393331234567"]', [ALICE]),
        ([ALICE, BOB], [ALICE, BOB]),
    ],
)
def test_recipients_in_every_rendered_shape(given: Any, expected: list[str]) -> None:
    assert as_list(given) == expected


def test_the_notifier_reads_its_dry_run_like_the_gate(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for both: an alert whose dry run comes back as a real send sends nothing more."""
    from airflow_provider_smsww.notifications.smsww import SmsWwNotifier

    gateway.dry_run_echo = False
    with pytest.raises(SmsWwError, match=r"options\.dryRun false"):
        SmsWwNotifier(recipients=[ALICE, BOB], message="DAG failed").notify({"run_id": "r"})
    assert gateway.posts == [(ALICE, True)]
