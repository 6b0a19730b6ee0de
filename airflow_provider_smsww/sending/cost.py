"""Steps 3 and 7 of a send (:mod:`.order`): what the messages cost. Each message's estimate comes from
the dry-run gate, or from the local part count when the gate does not run; its price is the dry run's,
else the assumed price per part. The cost summary tells what a try got accepted and at what estimated
price, beside what the earlier tries spent; the operator reports it (log, XCom, metrics).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_smsww.models import Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.budget import Spend


def estimate_price(estimate: Estimate, price_per_part_if_unknown: float | Decimal | None) -> Decimal | None:
    """One message's estimated price: the dry run's, else the assumed price per part, else None. The one
    place the assumed price is applied (the gate's budget, the credit pre-flight, the cost summary)."""
    if estimate.price is not None:
        return estimate.price
    if price_per_part_if_unknown is None:
        return None
    return Decimal(str(price_per_part_if_unknown)) * estimate.parts


def local_estimates(batch: Batch) -> list[Estimate]:
    """Unpriced estimates from the local part count, for a batch sent without the dry-run gate."""
    from airflow_provider_smsww.models import Estimate

    return [
        Estimate(r.e164, batch.segments_of(r).parts, batch.segments_of(r).encoding, None)
        for r in batch.recipients
    ]


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
