"""Reconciliation (sending/reconcile.py) against what a real gateway might plausibly do that the spec
does not rule out: list dry runs, list oldest first, write timestamps without an offset or numbers
without ``+``, list fewer messages than the scan needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwReconcileError,
)
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.reconcile import reconcile

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


async def test_personalised_entries_are_matched_by_their_own_text_and_sender(httpx_mock: Any) -> None:
    from airflow_provider_smsww.sending.entries import check_entries

    batch = check_entries(
        [
            {"recipient": ALICE, "message": "Order A1 shipped"},
            {"recipient": ALICE, "message": "Order A3 shipped"},
            {"recipient": BOB, "message": "Order B2 shipped", "sender": "Shop"},
            {"recipient": BOB, "message": "Order B2 shipped", "sender": "Negozio"},
        ]
    )
    a1, a3, b_shop, b_negozio = (e.key for e in batch.recipients)
    assert len({a1, a3, b_shop, b_negozio}) == 4
    serve_list(
        httpx_mock,
        [
            listed(ALICE, minutes=3, id="a3", message="Order A3 shipped"),
            listed(BOB, minutes=2, id="b-shop", message="Order B2 shipped", sender="Shop"),
            listed(ALICE, minutes=1, id="other", message="Order A9 shipped"),  # not a text of the batch
        ],
    )
    hook = SmsWwHook()
    try:
        found = await reconcile(hook, batch, [a1, a3, b_shop, b_negozio], SINCE)
    finally:
        await hook.aclose()
    # A1 and Bob's "Negozio" message are not listed: not found, so they may be sent (after settle_time).
    assert {k: m.id for k, m in found.items()} == {a3: "a3", b_shop: "b-shop"}
    assert found.undecided == frozenset()


async def test_a_listing_without_sender_cannot_tell_two_senders_apart(httpx_mock: Any) -> None:
    from airflow_provider_smsww.sending.entries import check_entries

    batch = check_entries(
        [
            {"recipient": BOB, "message": "Order B2 shipped", "sender": "Shop"},
            {"recipient": BOB, "message": "Order B2 shipped", "sender": "Negozio"},
        ]
    )
    keys = [e.key for e in batch.recipients]
    serve_list(httpx_mock, [listed(BOB, minutes=1, id="b", message="Order B2 shipped", sender=None)])
    hook = SmsWwHook()
    try:
        found = await reconcile(hook, batch, keys, SINCE)
    finally:
        await hook.aclose()
    assert dict(found) == {}
    assert found.undecided == frozenset(keys)  # fail closed: neither taken for sent nor resent
