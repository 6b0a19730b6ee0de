"""Steps 4 and 7 of a send (:mod:`.order`): the credit pre-flight and the cost summary.

The gateway sends a worldwide message only while the account holds at least 1 EUR per part, and
charges its final price after it was sent, so a batch that passes the dry-run gate can still stop
half-sent when the credit runs out. The pre-flight reads the credit (``GET /wallet``) and refuses the
batch before its first real send unless the credit covers it. ``docs/money.md`` tells the whole path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import SmsWwInsufficientCreditError

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.budget import Spend

#: A worldwide send needs this much credit on hand per message part (the gateway's rule); the
#: pre-flight also counts a part the dry run left unpriced at this much unless told otherwise.
MIN_CREDIT_PER_PART = Decimal(1)


@dataclass(frozen=True)
class CreditNeed:
    """What a batch needs on the account before its first real send."""

    #: The batch's estimated total, unpriced parts counted at ``assumed`` EUR each.
    estimate: Decimal
    #: What the last message still needs on hand once the others are charged (WW: 1 EUR per part).
    floor: Decimal
    unpriced_parts: int
    assumed: Decimal

    @property
    def total(self) -> Decimal:
        return self.estimate + self.floor

    def describe(self, credit: Decimal) -> str:
        unpriced = (
            f", {self.unpriced_parts} unpriced part(s) counted at {self.assumed:.2f} EUR each"
            if self.unpriced_parts
            else ""
        )
        return (
            f"credit {credit:.2f} EUR, needed {self.total:.2f} EUR (estimated total {self.estimate:.2f} EUR"
            f"{unpriced}, plus {self.floor:.2f} EUR the last message must find on hand), shortfall "
            f"{max(self.total - credit, Decimal(0)):.2f} EUR"
        )


def local_estimates(batch: Batch) -> list[Estimate]:
    """Unpriced estimates from the local part count, for a batch sent without the dry-run gate."""
    from airflow_provider_smsww.models import Estimate

    return [
        Estimate(r.e164, batch.segments_of(r).parts, batch.segments_of(r).encoding, None)
        for r in batch.recipients
    ]


def credit_needed(
    estimates: Iterable[Estimate], region: str, price_per_part_if_unknown: float | Decimal | None
) -> CreditNeed:
    """The batch's estimate plus the floor: worldwide, the last message needs 1 EUR per part on hand
    after every other message was charged; IT/ES sends are charged at their (known) price at once.
    Unpriced parts count at ``price_per_part_if_unknown``, or at 1 EUR when it is not set."""
    assumed = (
        MIN_CREDIT_PER_PART if price_per_part_if_unknown is None else Decimal(str(price_per_part_if_unknown))
    )
    listed = list(estimates)
    unpriced = sum(e.parts for e in listed if e.price is None)
    total = sum((estimate_price(e, assumed) or Decimal(0) for e in listed), Decimal(0))
    floor = MIN_CREDIT_PER_PART * max((e.parts for e in listed), default=0) if region == "WW" else Decimal(0)
    return CreditNeed(total, floor, unpriced, assumed)


async def preflight(
    hook: SmsWwHook,
    estimates: list[Estimate],
    region: str,
    price_per_part_if_unknown: float | Decimal | None,
) -> Decimal | None:
    """Read the credit and refuse the batch with :class:`SmsWwInsufficientCreditError` (naming
    credit, need and shortfall) unless it covers :func:`credit_needed`. Returns the credit, or None
    when the connection cannot read it (token only: the hook says so once)."""
    credit = await hook.aget_credit()
    if credit is None or not estimates:
        return credit
    need = credit_needed(estimates, region, price_per_part_if_unknown)
    if credit < need.total:
        raise SmsWwInsufficientCreditError(
            f"Credit pre-flight refused the batch; nothing was sent: {need.describe(credit)}. Top up the "
            "account, send to fewer recipients, or set price_per_part_if_unknown to the expected price "
            "per part when the dry run leaves prices unknown."
        )
    hook.log.info("Credit pre-flight passed: %s", need.describe(credit).replace(", shortfall 0.00 EUR", ""))
    return credit


def cost_summary(
    estimates: Iterable[Estimate],
    records: list[dict[str, Any]],
    *,
    price_per_part_if_unknown: float | Decimal | None,
    credit: Decimal | None,
    spend: Spend,
    limit: str,
) -> dict[str, Any]:
    """The operator's ``cost`` XCom (JSON-safe): the messages this try got accepted, their parts and
    estimated total (None when a price is unknown and nothing says what to assume); the messages the
    earlier tries had accepted (not counted again) and what they spent (``spend``); the budget, what was
    left of it for this try and which limit applied (``gateway_token``: the per-try token's
    ``walletAmount``; ``client_estimate``: the dry-run estimate only, a token-only connection;
    ``none``); and the credit read before sending."""
    by_recipient: Mapping[str, Estimate] = {e.recipient: e for e in estimates}
    now = [(r, by_recipient[r["recipient"]]) for r in records if r.get("recipient") in by_recipient]
    total: Decimal | None = Decimal(0)
    for _, estimate in now:
        price = estimate_price(estimate, price_per_part_if_unknown)
        total = None if total is None or price is None else total + price
    left = spend.token_amount
    return {
        "currency": "EUR",
        "messages": len(now),
        "parts": sum(int(r.get("messageCount") or e.parts) for r, e in now),
        "estimated_total_price": None if total is None else float(total),
        "from_earlier_try": len(records) - len(now),
        "earlier_tries_spent": float(spend.spent),
        "earlier_tries_priced": spend.priced,
        "held_for_unknown_outcomes": float(spend.held),
        "max_total_price": None if spend.budget is None else float(spend.budget),
        "budget_left": None if left is None else float(left),
        "limit": limit,
        "credit_before": None if credit is None else float(credit),
    }


def estimate_price(estimate: Estimate, price_per_part_if_unknown: float | Decimal | None) -> Decimal | None:
    """One message's estimated price: the dry run's, else the assumed price per part, else None. The one
    place the assumed price is applied (the gate's budget, the credit pre-flight, the cost summary)."""
    if estimate.price is not None:
        return estimate.price
    if price_per_part_if_unknown is None:
        return None
    return Decimal(str(price_per_part_if_unknown)) * estimate.parts
