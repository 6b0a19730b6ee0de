"""Step 2 of a send (:mod:`.order`), on a retry: one budget for the whole task instance, over every try.

``max_total_price`` is the task instance's, not each try's: a try that timed out, failed or was killed
part-way has spent money, and the next try may spend only what is left. Before anything is priced, a
retry counts what the earlier tries spent (:func:`earlier_spend`):

- each message they had accepted (the ledger) at its real price: the send answer's, or, for a worldwide
  message priced only once sent, what ``GET /messages`` shows now;
- a message still unpriced at the higher of its estimate and the highest price per part that the
  batch's priced messages show (fail closed: the real rate is the better guess);
- sends an earlier try left of unknown outcome (a killed try leaves every unrecorded recipient so) are
  looked up in ``GET /messages`` first: the found ones count as accepted, the others are held at their
  estimate (:meth:`Spend.hold`) until proven unsent.

The per-try token then gets what is left (``walletAmount``) and the gate checks the remaining
recipients' estimate against it; when nothing is left the task fails without retry, naming who was not
sent (:func:`budget_spent`). ``docs/money.md`` tells the rule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import SmsWwSpendingCapError, describe_problems
from airflow_provider_smsww.models import Estimate
from airflow_provider_smsww.sending.cost import estimate_price
from airflow_provider_smsww.sending.credit import MIN_CREDIT_PER_PART
from airflow_provider_smsww.sending.ledger import record_of, unknown_among
from airflow_provider_smsww.sending.reconcile import reconcile
from airflow_provider_smsww.sending.settle import Evidence

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger

log = logging.getLogger(__name__)

#: How deep a look-up of an earlier try's unknown outcomes scans ``GET /messages`` beyond the batch's
#: own messages (as :func:`.bulk.send_all` does).
SCAN_LIMIT = 10_000


@dataclass(frozen=True)
class Spend:
    """What the earlier tries of a task instance spent, and what is left of its budget.

    :param budget: ``max_total_price`` (None: no budget).
    :param messages: messages the earlier tries got accepted.
    :param priced: how many of them the gateway has priced (the others count at an estimate).
    :param spent: EUR they cost: real prices, else estimates (unpriced parts at
        ``price_per_part_if_unknown``, or 1 EUR without it).
    :param unknown: recipients whose earlier send is of unknown outcome (not found in ``GET /messages``).
    :param held: EUR held for them, at their estimate, until they are proven unsent.
    """

    budget: Decimal | None
    messages: int = 0
    priced: int = 0
    spent: Decimal = Decimal(0)
    unknown: frozenset[str] = frozenset()
    held: Decimal = Decimal(0)

    @property
    def left(self) -> Decimal | None:
        """What this try may spend (never below 0), or None without a budget."""
        if self.budget is None:
            return None
        return max(self.budget - self.spent - self.held, Decimal(0))

    @property
    def token_amount(self) -> Decimal | None:
        """:attr:`left` rounded down to the cent's hundredth: the per-try token's ``walletAmount``."""
        left = self.left
        return None if left is None else left.quantize(Decimal("0.0001"), rounding=ROUND_DOWN)

    def hold(self, estimates: Iterable[Estimate], price_per_part_if_unknown: float | None) -> Spend:
        """This spend with the estimates of the :attr:`unknown` sends held (fail closed: one of them may
        have been sent, and charged through an earlier try's token, though the listing does not show it
        yet). Unpriced parts count at ``price_per_part_if_unknown``, or 1 EUR without it."""
        assumed = _assumed(price_per_part_if_unknown)
        held = sum(
            (estimate_price(e, assumed) or Decimal(0) for e in estimates if e.recipient in self.unknown),
            Decimal(0),
        )
        return replace(self, held=held)

    def describe(self) -> str:
        """One line for the log and the errors."""
        unpriced = self.messages - self.priced
        text = (
            f"earlier tries spent {self.spent:.4f} EUR on {self.messages} message(s)"
            + (f" ({unpriced} not priced yet, counted at their estimate)" if unpriced else "")
            + (
                f", {self.held:.4f} EUR held for {len(self.unknown)} send(s) of unknown outcome"
                if self.held
                else ""
            )
        )
        left = self.left
        return text if left is None else f"{text}; {left:.4f} EUR left of {self.budget:g}"


def _assumed(price_per_part_if_unknown: float | None) -> Decimal:
    """EUR per unpriced part: the user's assumption, else the gateway's 1 EUR per part (fail closed)."""
    return (
        MIN_CREDIT_PER_PART if price_per_part_if_unknown is None else Decimal(str(price_per_part_if_unknown))
    )


async def earlier_spend(
    hook: SmsWwHook,
    batch: Batch,
    ledger: Ledger,
    *,
    budget: float | None,
    price_per_part_if_unknown: float | None,
    now: Callable[[], datetime],
) -> Spend:
    """What the earlier tries of this task instance spent (see the module docstring); nothing on a first
    try. With a budget, the earlier try's unknown outcomes are looked up first (the found ones are
    recorded in the ledger, the others left as the ledger's closed round for the sends to settle), and
    the unpriced messages are read back; without one, the ledger's figures alone are counted.

    :param hook: the connection's hook (before the per-try token is minted).
    :param batch: the checked batch.
    :param ledger: the task's ledger.
    :param budget: ``max_total_price``.
    :param price_per_part_if_unknown: EUR per part to assume for an unpriced message.
    :param now: the clock.
    """
    limit = None if budget is None else Decimal(str(budget))
    started = ledger.started_at()
    if started is None:
        return Spend(limit)
    recorded = {r.key: rec for r in batch.recipients if (rec := ledger.get(r.key)) is not None}
    unknown: dict[str, datetime] = {}
    prices: dict[str, Decimal] = {}
    if limit is not None:
        unknown = await _look_up_unknown(hook, batch, ledger, recorded, started, now)
        prices = await _read_prices(hook, recorded)
    spend = _count(recorded, prices, price_per_part_if_unknown)
    return replace(spend, budget=limit, unknown=frozenset(unknown))


async def _look_up_unknown(
    hook: SmsWwHook,
    batch: Batch,
    ledger: Ledger,
    recorded: dict[str, dict[str, Any]],
    started: datetime,
    now: Callable[[], datetime],
) -> dict[str, datetime]:
    """Look the earlier try's sends of unknown outcome up in ``GET /messages`` before the money is
    counted: record the found ones (into ``recorded`` too), close the round with the others (and when
    they were sent), which the sends then settle as :func:`.bulk.send_all` would have."""
    unknown = unknown_among(ledger, [r.key for r in batch.recipients if r.key not in recorded], now)
    if not unknown:
        return unknown
    evidence = ledger.settle_evidence()  # what the earlier tries saw: kept for the sends' settle window
    found = await reconcile(
        hook,
        batch,
        list(unknown),
        started,
        scan_limit=SCAN_LIMIT + len(batch.recipients),
        clock_offset=Evidence.from_dict(evidence).clock_offset,
    )
    for recipient, message in found.items():
        number = next(r.e164 for r in batch.recipients if r.key == recipient)
        recorded[recipient] = {**record_of(message), "recipient": number}
        await ledger.arecord(recipient, recorded[recipient])
        del unknown[recipient]
    if found:
        log.info("%d send(s) of an earlier try found in GET /messages: counted as spent", len(found))
    ledger.set_round(unknown, open=False, evidence=evidence)
    return unknown


async def _read_prices(hook: SmsWwHook, recorded: dict[str, dict[str, Any]]) -> dict[str, Decimal]:
    """The gateway's price now of each recorded message whose record has none (a worldwide message is
    priced only once sent), by recipient; messages still unpriced are left out."""
    ids = {rec["id"]: who for who, rec in recorded.items() if rec.get("price") is None and rec.get("id")}
    if not ids:
        return {}
    read = await hook.aget_messages(list(ids), by_listing=True)
    return {ids[i]: price for i, m in read.items() if i in ids and (price := m.charged_price) is not None}


def _count(
    recorded: dict[str, dict[str, Any]], prices: dict[str, Decimal], price_per_part_if_unknown: float | None
) -> Spend:
    """The spend of the recorded messages: real prices, else the higher of the estimate and the highest
    price per part of the batch's priced messages."""
    real: dict[str, tuple[Decimal, int]] = {}
    unpriced: list[dict[str, Any]] = []
    for who, rec in recorded.items():
        parts = int(rec.get("messageCount") or 1)
        price = prices.get(who, None if rec.get("price") is None else Decimal(str(rec["price"])))
        if price:
            real[who] = (price, parts)
        else:
            unpriced.append(rec)
    rate = max((price / parts for price, parts in real.values()), default=Decimal(0))
    assumed = _assumed(price_per_part_if_unknown)
    spent = sum((price for price, _ in real.values()), Decimal(0))
    for rec in unpriced:
        parts = int(rec.get("messageCount") or 1)
        recorded_estimate = rec.get("estimate")
        estimate = Decimal(str(recorded_estimate)) if recorded_estimate is not None else assumed * parts
        spent += max(estimate, rate * parts)
    return Spend(None, messages=len(recorded), priced=len(real), spent=spent)


def budget_spent(spend: Spend, not_sent: Iterable[str], why: str) -> SmsWwSpendingCapError:
    """The error of a retry the budget has no room for: it names every recipient not sent, and is a
    spending-cap error, which the task fails with for good (a retry would meet the same budget)."""
    who = list(not_sent)
    head = f"max_total_price is spent over this task's tries; {len(who)} recipient(s) not sent:"
    problems = {", ".join(r for r in who if r not in spend.unknown): why}
    if unknown := [r for r in who if r in spend.unknown]:  # an earlier try's send may have gone out
        problems[", ".join(unknown)] = f"{why}; an earlier send of unknown outcome, not in GET /messages"
    return SmsWwSpendingCapError(
        describe_problems(head, {k: v for k, v in problems.items() if k})
        + f"\n{spend.describe()}. Not retried: check the real prices, raise max_total_price, then clear "
        "the task to send the rest (the ledger keeps what was sent)."
    )
