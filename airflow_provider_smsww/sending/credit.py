"""Step 4 of a send (:mod:`.order`): the credit pre-flight.

The gateway sends a worldwide message only while the account holds at least 1 EUR per part, and
charges its final price after it was sent, so a batch that passes the dry-run gate can still stop
half-sent when the credit runs out. The pre-flight reads the credit (``GET /wallet``) and refuses the
batch before its first real send unless the credit covers it. ``docs/money.md`` tells the whole path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from airflow_provider_smsww.exceptions import SmsWwInsufficientCreditError
from airflow_provider_smsww.sending.cost import estimate_price

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Estimate

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
