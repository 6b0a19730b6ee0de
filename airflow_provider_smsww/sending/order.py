"""The order of a send, told once and run here. It is what keeps money safe:

1. **local checks** (:func:`check`, :mod:`.batch`): numbers, sender, text, parts and callback are
   refused with no request at all, and each recipient gets its idempotency key.
2. **ledger** (:mod:`.ledger`): an earlier try that met an ignored dry run stops the task for good; on
   a retry, the recipients an earlier try recorded as accepted are neither priced nor sent again.
3. **gate** (:mod:`.gate`): every remaining message is priced with ``dryRun`` (free); the whole batch
   is refused if any message fails, needs too many parts, or the total is over budget.
4. **credit** (:mod:`.credit`): the account's credit must cover the estimate (email + API key only).
5. **capped sends** (:mod:`.bulk` over :mod:`.fanout`): the real sends go through a per-task token the
   gateway caps at the budget (``SmsWwHook.scoped``), each accepted id written to the ledger at once.
6. **reconcile / settle** (:mod:`.reconcile`): an unknown outcome, and on a retry every recipient the
   ledger lacks, is looked up in ``GET /messages`` before anything is resent.
7. **cost** (:func:`.credit.cost_summary`): what this try got accepted and its estimated price; the
   caller reports it (log, XCom, metrics), then raises :attr:`SendOutcome.error` if anything failed.

Free of Airflow's task machinery: the operator hands in the hook, the ledger and the settings, so the
whole order runs in a test or a benchmark on its own. ``docs/operator.md`` tells the guarantees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwSpendingCapError,
    describe_problems,
)
from airflow_provider_smsww.sending.batch import check_locally, idempotency_key
from airflow_provider_smsww.sending.bulk import DEFAULT_SETTLE_TIME, send_all
from airflow_provider_smsww.sending.credit import cost_summary, local_estimates, preflight
from airflow_provider_smsww.sending.entries import check_entries
from airflow_provider_smsww.sending.gate import GateResult, gate
from airflow_provider_smsww.sending.ledger import not_yet_recorded

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Callback, Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendSpec:
    """What to send and within which limits: the operator's arguments, rendered (see
    :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` for each)."""

    recipients: Sequence[str]
    message: str
    sender: str | None = None
    #: A personalised batch instead of ``recipients`` + ``message``: ``{recipient, message, sender?}``
    #: per entry (:mod:`.entries`); ``sender`` is then the default of the entries that name none.
    messages: Sequence[Mapping[str, Any]] | None = None
    region: str = "WW"
    callback: Callback | dict[str, Any] | None = None
    fail_on_multiple_messages: bool = False
    max_parts_per_message: int | None = None
    gate: bool = True
    max_total_price: float | None = None
    price_per_part_if_unknown: float | None = None
    max_concurrency: int = 20
    settle_time: float = DEFAULT_SETTLE_TIME
    #: Seconds the per-task capped token lives if revoking it fails.
    token_ttl: int = 3600


@dataclass
class SendOutcome:
    """What :func:`send` got done: the accepted records in recipient (entry) order, who failed and why, the
    ``cost`` summary, and the error to raise once the cost is reported (None when all were accepted)."""

    records: list[dict[str, Any]]
    failures: dict[str, str]
    reused: int
    cost: dict[str, Any]
    credit: Decimal | None
    error: SmsWwError | None = field(default=None)


@dataclass(frozen=True)
class _Priced:
    """Steps 2-4 done: the recipients left to send, their estimates, the gate's result (None when it
    did not run) and the credit read before sending (None when it cannot be read)."""

    to_send: Batch
    estimates: list[Estimate]
    gated: GateResult | None
    credit: Decimal | None


def check(spec: SendSpec, *task_keys: object) -> Batch:
    """Step 1: the local checks, and each recipient's idempotency key from ``task_keys`` (dag, task,
    run, map index), stable across retries. Raises :class:`SmsWwGateError` naming every problem."""
    if spec.messages is not None:
        batch = check_entries(
            spec.messages,
            sender=spec.sender,
            region=spec.region,
            callback=spec.callback,
            fail_on_multiple_messages=spec.fail_on_multiple_messages,
            max_parts_per_message=spec.max_parts_per_message,
        )
    else:
        batch = check_locally(
            spec.recipients,
            spec.message,
            sender=spec.sender,
            region=spec.region,
            callback=spec.callback,
            fail_on_multiple_messages=spec.fail_on_multiple_messages,
            max_parts_per_message=spec.max_parts_per_message,
        )
    keys = {r.key: idempotency_key(*task_keys, r.key) for r in batch.recipients}
    return replace(batch, keys=keys)


async def estimate(hook: SmsWwHook, batch: Batch, ledger: Ledger, spec: SendSpec) -> dict[str, Any]:
    """Steps 2-4 only (``dry_run=True``): the dry-run estimate of every recipient and the credit."""
    priced = await _gate_and_credit(hook, batch, ledger, spec, dry_run_only=True)
    assert priced.gated is not None  # an estimate always runs the gate
    return {**priced.gated.as_dict(), "credit": None if priced.credit is None else float(priced.credit)}


async def send(
    hook: SmsWwHook,
    batch: Batch,
    ledger: Ledger,
    spec: SendSpec,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendOutcome:
    """Steps 2-7: the real send of ``batch``, never twice across retries (see the module docstring)."""
    priced = await _gate_and_credit(hook, batch, ledger, spec, dry_run_only=False)
    to_send, credit = priced.to_send, priced.credit
    cap = hook.scoped(
        budget=spec.max_total_price, requests=len(to_send.recipients), region=batch.region, ttl=spec.token_ttl
    )
    async with cap if to_send.recipients else nullcontext(hook) as sender:
        report = await send_all(
            sender, batch, ledger, now=now, concurrency=spec.max_concurrency, settle_time=spec.settle_time
        )
    cost = cost_summary(
        priced.estimates,
        # Matched by key: one number may have several messages, each with its own estimate.
        [{**rec, "recipient": key} for key, rec in zip(report.keys, report.records, strict=True)],
        price_per_part_if_unknown=spec.price_per_part_if_unknown,
        credit=credit,
        cap=spec.max_total_price,
    )
    outcome = SendOutcome(report.records, report.failures, report.reused, cost, credit)
    if report.failures:
        outcome.error = _failed(batch, report.records, report.failures, report.fatal, spec)
    return outcome


async def _gate_and_credit(
    hook: SmsWwHook, batch: Batch, ledger: Ledger, spec: SendSpec, *, dry_run_only: bool
) -> _Priced:
    """Steps 2-4: the ledger, the dry-run gate and the credit pre-flight."""
    if (why := ledger.dry_run_ignored()) is not None:
        # Any further dry run through this gateway would be one more real SMS.
        raise SmsWwDryRunIgnoredError(f"An earlier try of this task stopped for good: {why}")
    # On a retry only the recipients an earlier try did not record need the gate: the others
    # passed it then and will not be sent again (and re-pricing them could fail on credit).
    to_gate = batch if dry_run_only else not_yet_recorded(batch, ledger)
    estimates: list[Estimate] = local_estimates(to_gate)
    checked: GateResult | None = None
    if (spec.gate or dry_run_only) and to_gate.recipients:
        try:
            checked = await gate(
                hook,
                to_gate,
                concurrency=spec.max_concurrency,
                max_parts_per_message=spec.max_parts_per_message,
                max_total_price=spec.max_total_price,
                price_per_part_if_unknown=spec.price_per_part_if_unknown,
            )
        except SmsWwDryRunIgnoredError as exc:
            ledger.mark_dry_run_ignored(exc.message)  # so that no retry dry-runs again
            raise
        estimates = checked.estimates
        total = checked.total_price
        log.info(
            "Dry-run gate passed: %d message(s), %d part(s), estimated %s EUR",
            len(checked.estimates),
            checked.total_parts,
            "unknown (priced after sending)" if total is None else f"{total:.4f}",
        )
    elif spec.gate:
        log.info("Every recipient was accepted by an earlier try: no dry-run gate needed.")
    credit = None
    if to_gate.recipients:
        credit = await preflight(hook, estimates, batch.region, spec.price_per_part_if_unknown)
    # The cost summary finds each message's estimate by its key (a number may have several messages).
    keyed = [replace(e, recipient=r.key) for r, e in zip(to_gate.recipients, estimates, strict=True)]
    return _Priced(to_gate, keyed, checked, credit)


def _failed(
    batch: Batch,
    records: list[dict[str, Any]],
    failures: dict[str, str],
    fatal: SmsWwError | None,
    spec: SendSpec,
) -> SmsWwError:
    """The one error naming every recipient not accepted, grouped by reason: a spending cap's own
    class (not retried: a retry would get a fresh cap), the class of a 401/403 (not retried either),
    else :class:`SmsWwError` (retried: a retry sends only to these)."""
    by_reason: dict[str, list[str]] = {}
    labels = {r.key: r.label for r in batch.recipients}
    for who, why in failures.items():
        by_reason.setdefault(why, []).append(labels.get(who, who))
    head = (
        f"{len(records)} of {len(batch.recipients)} message(s) accepted; "
        f"{len(failures)} failed (a retry sends only to these):"
    )
    summary = describe_problems(head, {", ".join(w): why for why, w in by_reason.items()})
    if isinstance(fatal, SmsWwSpendingCapError):
        return SmsWwSpendingCapError(
            f"{summary}\nThe per-task spending cap (max_total_price {spec.max_total_price} EUR) "
            "stopped the batch: real prices are above the estimate. Not retried, since a retry "
            "would get a fresh cap; check the prices, raise max_total_price, then clear the task "
            "to send the rest."
        )
    return (type(fatal) if isinstance(fatal, SmsWwAuthError) else SmsWwError)(summary)
