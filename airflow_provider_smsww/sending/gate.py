"""Step 3 of a send (:mod:`.order`): the dry-run gate. Every message is priced with ``dryRun`` (free) and the
whole batch is refused, with every reason named, unless all pass and the total is within budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.concurrency import Progress, bounded
from airflow_provider_smsww.exceptions import SmsWwGateError, SmsWwValidationError, describe_problems
from airflow_provider_smsww.models import Estimate
from airflow_provider_smsww.sending.cost import estimate_price
from airflow_provider_smsww.sending.refusals import RECIPIENT_CODES

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.validation import Recipient


@dataclass
class GateResult:
    estimates: list[Estimate]
    total_parts: int
    total_price: Decimal | None
    #: With ``skip_recipients``: the messages whose number the gateway refused (key -> why), left out.
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "recipients": [e.as_dict() for e in self.estimates],
            "total_parts": self.total_parts,
            "estimated_total_price": None if self.total_price is None else float(self.total_price),
        }


async def gate(
    hook: SmsWwHook,
    batch: Batch,
    *,
    concurrency: int = 20,
    max_parts_per_message: int | None = None,
    max_total_price: float | None = None,
    price_per_part_if_unknown: float | None = None,
    spent_before: Decimal = Decimal(0),
    skip_recipients: bool = False,
) -> GateResult:
    """Dry-run every message; raise :class:`SmsWwGateError` naming each refused message, or return the
    estimate. Errors that are not about one message (auth, credit, transport) propagate as they are.

    The budget fails closed: when a budget is set and the API leaves a price at 0 in dry run (worldwide
    prices are only final after sending), ``price_per_part_if_unknown`` must say what to assume. On a
    retry the budget is what the earlier tries left: ``max_total_price`` less ``spent_before``.
    With ``skip_recipients`` (``on_invalid="skip"``) a message refused for its number is left out
    (:attr:`GateResult.skipped`) and the budget is judged on the rest.
    """
    dry_runs = _DryRuns(hook, batch, skip_recipients)
    answers = await dry_runs.price_all(concurrency)
    problems = dry_runs.refused
    estimates = [e for e in answers if e is not None]
    if max_parts_per_message is not None:
        problems.update(_too_many_parts(batch, answers, max_parts_per_message))
    total_parts = sum(e.parts for e in estimates)
    unpriced = sum(1 for e in estimates if e.price is None)
    total: Decimal | None = None
    if not unpriced or price_per_part_if_unknown is not None:
        prices = (estimate_price(e, price_per_part_if_unknown) or Decimal(0) for e in estimates)
        total = sum(prices, Decimal(0))
    if max_total_price is not None and not problems:  # the budget is judged on a whole estimate
        over = _over_budget(total, unpriced, total_parts, max_total_price, spent_before)
        problems.update({"budget": over} if over else {})
    if problems:
        raise SmsWwGateError(
            describe_problems("SMS batch refused by the dry-run gate; nothing was sent.", problems),
            problems=problems,
        )
    return GateResult(estimates, total_parts, total, dry_runs.skipped)


class _DryRuns:
    """The dry runs of a batch's messages; each one the API refuses goes into ``refused`` under its
    label, or with ``skip_recipients`` into ``skipped`` under its key when the refusal is about its number.
    Errors that are not about one message propagate and stop the gate."""

    def __init__(self, hook: SmsWwHook, batch: Batch, skip_recipients: bool = False) -> None:
        self.hook, self.batch, self.skip_recipients = hook, batch, skip_recipients
        self.refused: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.progress = Progress(len(batch.recipients), "priced (dry run)")

    async def price_all(self, concurrency: int) -> list[Estimate | None]:
        """Every message's estimate (None if refused), in recipient order. One dry run alone first: if
        the API ignored dryRun, only that one message was sent, not ``concurrency`` of them."""
        canary, *rest = self.batch.recipients
        first = await self.price(canary)
        return [first, *await bounded(rest, self.price, concurrency)]

    async def price(self, recipient: Recipient) -> Estimate | None:
        try:
            return await self.hook.aestimate(self.batch.request(recipient, dry_run=True), self.batch.region)
        except SmsWwValidationError as exc:
            if self.skip_recipients and exc.code in RECIPIENT_CODES:
                self.skipped[recipient.key] = exc.message
            else:
                self.refused[recipient.label] = exc.message
            return None
        finally:
            self.progress.tick()
        # Any other error (auth, credit, transport, server) is about the account or the link, not
        # this recipient: it propagates and stops the gate, so nothing is sent.


def _too_many_parts(
    batch: Batch, answers: list[Estimate | None], max_parts_per_message: int
) -> dict[str, str]:
    """The messages the API counts more parts for than allowed, by label."""
    return {
        recipient.label: (
            f"the API counts {estimate.parts} parts; max_parts_per_message is {max_parts_per_message}"
        )
        for recipient, estimate in zip(batch.recipients, answers, strict=True)
        if estimate is not None and estimate.parts > max_parts_per_message
    }


def _over_budget(
    total: Decimal | None, unpriced: int, total_parts: int, max_total_price: float, spent_before: Decimal
) -> str | None:
    """Why the estimate does not fit what is left of the budget, or None. Fails closed: an unknown total
    (messages the dry run left unpriced, nothing to assume for them) does not fit."""
    if total is None:
        return (
            f"the API did not price {unpriced} message(s) in dry run (worldwide prices are final "
            "only after sending); set price_per_part_if_unknown to check max_total_price"
        )
    if total > Decimal(str(max_total_price)) - spent_before:
        return (
            f"estimated total {total:.4f} EUR for {total_parts} part(s) exceeds max_total_price "
            f"{max_total_price}"
            + (f" less the {spent_before:.4f} EUR earlier tries spent" if spent_before else "")
        )
    return None
