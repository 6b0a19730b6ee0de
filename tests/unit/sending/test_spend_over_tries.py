"""One budget over every try (sending/budget.py): what earlier tries spent, what is held, what is left."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_smsww.models import Estimate
from airflow_provider_smsww.sending.budget import Spend, _count, budget_spent, earlier_spend
from airflow_provider_smsww.sending.ledger import MemoryLedger

A, B, C, D = "+393331000001", "+393331000002", "+393331000003", "+393331000004"


def rec(who: str, *, price: float | None, estimate: float | None = None, parts: int = 1) -> dict[str, Any]:
    record = {"recipient": who, "id": f"id-{who}", "state": "NEW", "messageCount": parts, "encoding": "GSM-7"}
    return {**record, "price": price, **({} if estimate is None else {"estimate": estimate})}


def test_real_prices_count_and_an_unpriced_message_counts_at_the_real_rate_seen() -> None:
    recorded = {A: rec(A, price=0.065), B: rec(B, price=0.13, parts=2), C: rec(C, price=None, estimate=0.01)}
    spend = _count(recorded, {}, price_per_part_if_unknown=0.01)
    # C is not priced yet: 0.065 per part (what A and B show), not its 0.01 estimate.
    assert spend.spent == Decimal("0.065") + Decimal("0.13") + Decimal("0.065")
    assert (spend.messages, spend.priced) == (3, 2)


def test_without_any_price_an_unpriced_message_counts_at_its_estimate_or_1_eur_a_part() -> None:
    recorded = {A: rec(A, price=None, estimate=0.02), B: rec(B, price=None, parts=2)}
    assert _count(recorded, {}, price_per_part_if_unknown=None).spent == Decimal("0.02") + 2
    # B read back at 0.10 for 2 parts: A counts at that 0.05 per part rather than its 0.02 estimate.
    assert _count(recorded, {B: Decimal("0.1")}, price_per_part_if_unknown=None).spent == Decimal("0.15")


def test_what_is_left_takes_off_the_spend_and_what_is_held_never_below_zero() -> None:
    spend = Spend(Decimal("1.2"), messages=12, priced=12, spent=Decimal("0.78"), unknown=frozenset({C, D}))
    held = spend.hold(
        [Estimate(C, 1, "GSM-7", None), Estimate(D, 2, "GSM-7", None), Estimate(A, 1, None, None)], 0.01
    )
    assert held.held == Decimal("0.03")  # C and D only, at 0.01 per part
    assert held.left == Decimal("0.39")
    assert held.token_amount == Decimal("0.3900")
    assert Spend(Decimal(1), spent=Decimal(2)).left == 0
    assert Spend(None).left is None
    assert Spend(None).token_amount is None


def test_the_budget_error_names_who_was_not_sent_and_who_is_of_unknown_outcome() -> None:
    spend = Spend(Decimal("1.2"), messages=18, priced=18, spent=Decimal("1.17"), unknown=frozenset({D}))
    text = budget_spent(spend, [C, D], "nothing is left of max_total_price for them").message
    assert f"{C}: nothing is left" in text
    assert f"{D}: nothing is left of max_total_price for them; an earlier send of unknown outcome" in text
    assert "earlier tries spent 1.1700 EUR on 18 message(s); 0.0300 EUR left of 1.2" in text


async def test_a_first_try_has_spent_nothing() -> None:
    spend = await earlier_spend(
        None,  # type: ignore[arg-type]  # not called on a first try
        None,  # type: ignore[arg-type]
        MemoryLedger(),
        budget=1.0,
        price_per_part_if_unknown=None,
        now=lambda: datetime.now(UTC),
    )
    assert spend == Spend(Decimal(1))


@pytest.mark.parametrize("estimate", [None, 0.05])
def test_the_ledger_keeps_the_estimate_a_send_was_made_at(estimate: float | None) -> None:
    ledger = MemoryLedger()
    ledger.expect({A: None if estimate is None else Decimal(str(estimate))})
    ledger.record(A, rec(A, price=None))
    ledger.record(B, rec(B, price=None))
    assert ledger.get(A) == {**rec(A, price=None), "estimate": estimate}
    assert "estimate" not in (ledger.get(B) or {})


async def test_looking_up_an_earlier_tries_unknown_outcomes_keeps_its_settle_evidence(gateway: Any) -> None:
    """The budget's look-up closes the earlier round again with what is still unknown: the lag and clock
    evidence that round saved stays for the sends' settle window (it was dropped, and the retry waited
    the no-evidence window)."""
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending import order

    spec = order.SendSpec(recipients=[A, B], message="Your order shipped", max_total_price=1.0)
    batch = order.check(spec, "dag", "task", "run", -1)
    sent_at = datetime.now(UTC)
    ledger = MemoryLedger(started=sent_at)
    evidence = {"listed": 3, "longest_absence": 1.5, "offset": [-0.2, 0.4]}
    ledger.set_round({A: sent_at}, open=False, evidence=evidence)
    hook = SmsWwHook()
    try:
        spend = await earlier_spend(
            hook, batch, ledger, budget=1.0, price_per_part_if_unknown=0.01, now=lambda: datetime.now(UTC)
        )
    finally:
        await hook.aclose()
    assert spend.unknown == frozenset({A})  # not listed: still held
    assert ledger.unknown_outcomes() == {A: sent_at}
    assert ledger.settle_evidence() == evidence
