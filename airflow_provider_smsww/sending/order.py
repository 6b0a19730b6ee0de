"""The order of a send, told once and run here. It is what keeps money safe:

1. **local checks** (:func:`check`, :mod:`.batch`, :mod:`.entries` for a text per recipient):
   numbers, senders, texts, parts and callback are refused with no request at all, and each message
   gets its idempotency key.
2. **ledger** (:mod:`.ledger`): an earlier try that met an ignored dry run stops the task for good; on
   a retry, the recipients an earlier try recorded as accepted are neither priced nor sent again, and
   what the earlier tries spent is counted (:mod:`.budget`): the budget is the task instance's.
3. **gate** (:mod:`.gate`): every remaining message is priced with ``dryRun`` (free); the whole batch
   is refused if any message fails, needs too many parts, or the total is over what is left of the
   budget.
4. **credit** (:mod:`.credit`): the account's credit must cover the estimate (email + API key only).
5. **capped sends** (:mod:`.bulk` over ``hooks.fanout``): the real sends go through a per-try token the
   gateway caps at what is left of the budget (``SmsWwHook.scoped``), each accepted id written to the
   ledger at once.
6. **reconcile / settle** (:mod:`.reconcile`): an unknown outcome, and on a retry every recipient the
   ledger lacks, is looked up in ``GET /messages`` before anything is resent.
7. **cost** (:func:`.cost.cost_summary`): what this try got accepted and its estimated price; the
   caller reports it (log, XCom, metrics), then raises :attr:`SendOutcome.error` if anything failed.

With a send window (quiet hours, :mod:`.window`), steps 5-6 send only the recipients inside their
window; :attr:`SendOutcome.waiting_until` tells the caller when to run the order again for the rest
(the ledger makes a resumed order skip whoever was sent before, as it does for a retry).

Free of Airflow's task machinery: the operator hands in the hook, the ledger and the settings, so the
whole order runs in a test or a benchmark on its own. ``docs/operator.md`` tells the guarantees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwGateError,
    SmsWwSpendingCapError,
    describe_problems,
)
from airflow_provider_smsww.sending.batch import check_locally, idempotency_key, refused_locally
from airflow_provider_smsww.sending.budget import Spend, budget_spent, earlier_spend
from airflow_provider_smsww.sending.bulk import SendReport, send_all
from airflow_provider_smsww.sending.cost import cost_summary, estimate_price, local_estimates
from airflow_provider_smsww.sending.credit import preflight
from airflow_provider_smsww.sending.entries import check_entries
from airflow_provider_smsww.sending.gate import GateResult, gate
from airflow_provider_smsww.sending.ledger import not_yet_recorded, public
from airflow_provider_smsww.sending.lookup import lookup_of
from airflow_provider_smsww.sending.refusals import MAX_REFUSED_FRACTION, OnInvalid, check_share
from airflow_provider_smsww.sending.window import hold_outside_window, schedule, unknown_while_waiting

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Callback, Estimate
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger
    from airflow_provider_smsww.sending.window import SendWindow

log = logging.getLogger(__name__)

#: Settle waits a try may leave to its caller (a deferral); the next is waited out in place, and what is
#: still unknown then fails the try (the next try looks it up again), as without deferral.
MAX_SETTLE_DEFERRALS = 3


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
    #: The country of the numbers written without ``+`` (ISO 3166 alpha-2); None: they are refused.
    default_country: str | None = None
    callback: Callback | dict[str, Any] | None = None
    fail_on_multiple_messages: bool = False
    max_parts_per_message: int | None = None
    gate: bool = True
    max_total_price: float | None = None
    price_per_part_if_unknown: float | None = None
    max_concurrency: int = 20
    #: The settle window's minimum in seconds; None: from the listing's observed lag (:mod:`.settle`).
    settle_time: float | None = None
    #: Seconds the per-task capped token lives if revoking it fails.
    token_ttl: int = 3600
    #: Quiet hours: each recipient is sent only inside this window of its local time.
    send_window: SendWindow | None = None
    #: False: the settle wait is left to the caller (a deferral): see :attr:`SendOutcome.lookup`.
    settle_in_place: bool = True
    #: ``"skip"``: leave out the rows refused for their number or entry, up to ``max_refused_fraction``
    #: of them (:mod:`.refusals`); ``"fail"``: refuse the whole batch.
    on_invalid: OnInvalid = "fail"
    max_refused_fraction: float = MAX_REFUSED_FRACTION

    @property
    def skips_invalid(self) -> bool:
        return self.on_invalid == "skip"

    @classmethod
    def of(cls, settings: object, **given: Any) -> SendSpec:
        """The spec of ``given`` fields, every other field read from the attribute of ``settings`` of
        the same name: :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` keeps its
        rendered arguments under the names of these fields."""
        return cls(
            **{f.name: given[f.name] if f.name in given else getattr(settings, f.name) for f in fields(cls)}
        )


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
    #: The rows left out (``on_invalid="skip"``), each :meth:`.refusals.Refused.as_dict`.
    refused: list[dict[str, Any]] = field(default_factory=list)
    #: Recipients left for their send window to open, and when the first of those windows opens.
    waiting: int = 0
    waiting_until: datetime | None = None
    #: With ``settle_in_place=False``: when the first unknown outcome may be resent, and what to look
    #: up meanwhile (:func:`.lookup.lookup_of`); None when nothing is left to settle.
    settle_at: datetime | None = None
    lookup: dict[str, Any] | None = None

    def next_wait(self) -> SendWait | None:
        """When the order must run again for what this one left (recipients outside their window,
        unknown outcomes to settle), and why; None when nothing is left. Every reason due is named,
        also two due at the same moment."""
        due = []
        if self.waiting_until is not None:
            due.append((self.waiting_until, f"{self.waiting} recipient(s) outside their send window"))
        if self.settle_at is not None:
            unknown = len((self.lookup or {}).get("messages", ()))
            due.append((self.settle_at, f"{unknown} send(s) of unknown outcome to settle"))
        if not due:
            return None
        due.sort(key=lambda moment_reason: moment_reason[0])
        reason = "; ".join(text for _, text in due)
        return SendWait(due[0][0], reason, self.lookup, settles=self.lookup is not None)


def settles_in_place(can_defer: bool, rounds: int) -> bool:
    """Whether the try waits for its unknown outcomes itself (:attr:`SendSpec.settle_in_place`).

    :param can_defer: the caller can wait elsewhere (a deferrable task with a lasting ledger).
    :param rounds: the settle waits this try has left to its caller so far.
    """
    return not can_defer or rounds >= MAX_SETTLE_DEFERRALS


@dataclass(frozen=True)
class SendWait:
    """The wait :meth:`SendOutcome.next_wait` decided: the caller resumes the order at ``until`` (or once
    every unknown outcome of ``lookup`` is listed)."""

    until: datetime
    #: Why, for the log (counts only: no recipients, no text).
    reason: str
    #: The unknown outcomes to look up meanwhile (:func:`.lookup.lookup_of`), or None to only wait.
    lookup: dict[str, Any] | None
    #: True when the wait settles unknown outcomes: it counts against the caller's settle waits.
    settles: bool


@dataclass(frozen=True)
class _Priced:
    """Steps 2-4 done: the recipients left to send, their estimates, the gate's result (None when it
    did not run) and the credit read before sending (None when it cannot be read)."""

    to_send: Batch
    #: The whole batch less the messages the gate left out (``on_invalid="skip"``).
    batch: Batch
    estimates: list[Estimate]
    gated: GateResult | None
    credit: Decimal | None


def check(spec: SendSpec, *task_keys: object) -> Batch:
    """Step 1: the local checks, and each recipient's idempotency key from ``task_keys`` (dag, task,
    run, map index), stable across retries. Raises :class:`SmsWwGateError` naming every problem."""
    rules: dict[str, Any] = {
        "sender": spec.sender,
        "region": spec.region,
        "callback": spec.callback,
        "fail_on_multiple_messages": spec.fail_on_multiple_messages,
        "max_parts_per_message": spec.max_parts_per_message,
        "default_country": spec.default_country,
        "skip_invalid": spec.skips_invalid,
    }
    if spec.messages is not None:
        batch = check_entries(spec.messages, **rules)
    else:
        batch = check_locally(spec.recipients, spec.message, **rules)
    window = spec.send_window
    if window is not None and (
        problems := schedule(window, {r.e164 for r in batch.recipients}, datetime.now(UTC)).problems
    ):
        if not spec.skips_invalid:
            raise refused_locally(problems)
        batch = batch.without(problems)
    check_share(batch.refused, batch.rows, spec.max_refused_fraction)
    keys = {r.key: idempotency_key(*task_keys, r.key) for r in batch.recipients}
    return replace(batch, keys=keys)


async def estimate(hook: SmsWwHook, batch: Batch, ledger: Ledger, spec: SendSpec) -> dict[str, Any]:
    """Steps 2-4 only (``dry_run=True``): the dry-run estimate of every recipient and the credit."""
    priced = await _gate_and_credit(hook, batch, ledger, spec, Spend(None), dry_run_only=True)
    assert priced.gated is not None  # an estimate always runs the gate
    credit = None if priced.credit is None else float(priced.credit)
    return {**priced.gated.as_dict(), "credit": credit, "refused": _refused(priced.batch)}


async def send(
    hook: SmsWwHook,
    batch: Batch,
    ledger: Ledger,
    spec: SendSpec,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendOutcome:
    """Steps 2-7: the real send of ``batch``, never twice across retries (see the module docstring)."""
    spend = await earlier_spend(
        hook,
        batch,
        ledger,
        budget=spec.max_total_price,
        price_per_part_if_unknown=spec.price_per_part_if_unknown,
        now=now,
    )
    if spend.messages or spend.unknown:
        log.info("Budget over every try: %s", spend.describe())
    priced = await _gate_and_credit(hook, batch, ledger, spec, spend, dry_run_only=False)
    batch = priced.batch
    spend = spend.hold(priced.estimates, spec.price_per_part_if_unknown)
    ledger.expect({e.recipient: estimate_price(e, spec.price_per_part_if_unknown) for e in priced.estimates})
    batch, to_send, waiting = hold_outside_window(spec.send_window, batch, priced.to_send, now)
    report, limit = await _send_capped(hook, batch, to_send, ledger, spec, spend, waiting, now)
    cost = cost_summary(
        priced.estimates,
        # Matched by key: one number may have several messages, each with its own estimate.
        [{**rec, "recipient": key} for key, rec in zip(report.keys, report.records, strict=True)],
        price_per_part_if_unknown=spec.price_per_part_if_unknown,
        credit=priced.credit,
        spend=spend,
        limit=limit,
    )
    records = [public(r) for r in report.records]
    outcome = SendOutcome(
        records, report.failures, report.reused, cost, priced.credit, refused=_refused(batch)
    )
    outcome.waiting, outcome.waiting_until = len(waiting), min(waiting.values(), default=None)
    if report.resume_at is not None and (started := ledger.started_at()) is not None:
        outcome.settle_at = report.resume_at
        outcome.lookup = lookup_of(batch, list(report.unsettled), started, ledger.settle_evidence())
    if report.failures:
        outcome.error = _failed(batch, records, report.failures, report.fatal, spend)
    return outcome


async def _send_capped(
    hook: SmsWwHook,
    batch: Batch,
    to_send: Batch,
    ledger: Ledger,
    spec: SendSpec,
    spend: Spend,
    waiting: dict[str, datetime],
    now: Callable[[], datetime],
) -> tuple[SendReport, str]:
    """Steps 5-6: the bulk send of ``batch`` (whose ``to_send`` recipients are not recorded yet)
    through a token the gateway caps at what is left of the budget. Returns the report and which
    limit held this try's spending, for the cost line (a token-only hook logged why it has no cap)."""
    cap = hook.scoped(
        budget=spend.token_amount, requests=len(to_send.recipients), region=batch.region, ttl=spec.token_ttl
    )
    carried = unknown_while_waiting(waiting, ledger, now)
    try:
        async with cap if to_send.recipients else nullcontext(hook) as sender:
            limit = "gateway_token" if sender is not hook else "client_estimate" if spend.budget else "none"
            report = await send_all(
                sender,
                batch,
                ledger,
                now=now,
                concurrency=spec.max_concurrency,
                settle_time=spec.settle_time,
                wait=spec.settle_in_place,
            )
    finally:
        # send_all saved the round of who it sent; the waiting recipients' unknown outcomes stay in it.
        if carried and (closed := ledger.unknown_outcomes()) is not None:
            ledger.set_round({**carried, **closed}, open=False, evidence=ledger.settle_evidence())
    return report, limit


async def _gate_and_credit(
    hook: SmsWwHook, batch: Batch, ledger: Ledger, spec: SendSpec, spend: Spend, *, dry_run_only: bool
) -> _Priced:
    """Steps 2-4: the ledger, the dry-run gate (within what ``spend`` left of the budget) and the credit
    pre-flight."""
    if (why := ledger.dry_run_ignored()) is not None:
        # Any further dry run through this gateway would be one more real SMS.
        raise SmsWwDryRunIgnoredError(f"An earlier try of this task stopped for good: {why}")
    # On a retry only the recipients an earlier try did not record need the gate: the others
    # passed it then and will not be sent again (and re-pricing them could fail on credit).
    to_gate = batch if dry_run_only else not_yet_recorded(batch, ledger)
    estimates: list[Estimate] = local_estimates(to_gate)
    checked: GateResult | None = None
    if spend.spent and to_gate.recipients and spend.left == 0:
        raise budget_spent(spend, _labels(to_gate), "nothing is left of max_total_price for them")
    if (spec.gate or dry_run_only) and to_gate.recipients:
        checked = await _gate(hook, to_gate, ledger, spec, spend)
        estimates = checked.estimates
        if checked.skipped:  # numbers the gateway refused, left out (on_invalid="skip")
            batch, to_gate = batch.without(checked.skipped), to_gate.without(checked.skipped)
            check_share(batch.refused, batch.rows, spec.max_refused_fraction)
    elif spec.gate:
        log.info("Every recipient was accepted by an earlier try: no dry-run gate needed.")
    credit = None
    if to_gate.recipients:
        credit = await preflight(hook, estimates, batch.region, spec.price_per_part_if_unknown)
    # The cost summary finds each message's estimate by its key (a number may have several messages).
    keyed = [replace(e, recipient=r.key) for r, e in zip(to_gate.recipients, estimates, strict=True)]
    return _Priced(to_gate, batch, keyed, checked, credit)


async def _gate(hook: SmsWwHook, to_gate: Batch, ledger: Ledger, spec: SendSpec, spend: Spend) -> GateResult:
    """Step 3: the dry-run gate of the recipients not recorded yet, within what ``spend`` left of the
    budget. An ignored dry run is written to the ledger, so that no retry dry-runs again; a budget the
    earlier tries spent is named as such."""
    try:
        checked = await gate(
            hook,
            to_gate,
            concurrency=spec.max_concurrency,
            max_parts_per_message=spec.max_parts_per_message,
            max_total_price=spec.max_total_price,
            price_per_part_if_unknown=spec.price_per_part_if_unknown,
            spent_before=spend.spent,
            skip_recipients=spec.skips_invalid,
        )
    except SmsWwDryRunIgnoredError as exc:
        ledger.mark_dry_run_ignored(exc.message)
        raise
    except SmsWwGateError as exc:
        if spend.spent and set(exc.problems) == {"budget"}:  # the earlier tries spent the room
            raise budget_spent(spend, _labels(to_gate), exc.problems["budget"]) from exc
        raise
    total = checked.total_price
    log.info(
        "Dry-run gate passed: %d message(s), %d part(s), estimated %s EUR",
        len(checked.estimates),
        checked.total_parts,
        "unknown (priced after sending)" if total is None else f"{total:.4f}",
    )
    return checked


def _refused(batch: Batch) -> list[dict[str, Any]]:
    return [r.as_dict() for r in batch.refused]


def _labels(batch: Batch) -> list[str]:
    return [r.label for r in batch.recipients]


def _failed(
    batch: Batch,
    records: list[dict[str, Any]],
    failures: dict[str, str],
    fatal: SmsWwError | None,
    spend: Spend,
) -> SmsWwError:
    """The one error naming every recipient not accepted, grouped by reason: a spending cap's own
    class (not retried: the budget is spent), the class of a 401/403 (not retried either), else
    :class:`SmsWwError` (retried: a retry sends only to these, within what is left of the budget)."""
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
            f"{summary}\nThe per-try token's cap ({spend.token_amount} EUR, what was left of max_total_price "
            f"{spend.budget} EUR over every try: {spend.describe()}) stopped the batch: real prices are "
            "above the estimate. Not retried, since the budget is spent; check the prices, raise "
            "max_total_price, then clear the task to send the rest."
        )
    return (type(fatal) if isinstance(fatal, SmsWwAuthError) else SmsWwError)(summary)
