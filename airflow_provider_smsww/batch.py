"""Sending one text to many recipients: local checks, the dry-run gate, the bulk send, reconciliation.

This is the money path of :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator`, kept free
of Airflow so that it can be tested and benchmarked on its own. The order is what keeps it safe:

1. :func:`check_locally` refuses bad input with no request at all.
2. :func:`gate` prices every message with ``dryRun`` (no cost) and refuses the whole batch if any
   message fails, if a message needs more parts than allowed, or if the total is over budget.
3. :func:`send_all` sends for real with a bounded number in flight. Each accepted id is written to a
   :class:`Ledger` *before* that slot starts another send, so a retried task skips what was accepted.
   A send whose outcome is unknown (connection dropped after the request was written, 5xx, an answer
   that cannot be read) is not resent blindly: :func:`reconcile` looks for it in ``GET /messages``,
   and what is not listed yet is left to the task's next try, which looks again first.

Remaining window, stated honestly: if the worker dies after the gateway accepted a message but before
the ledger write returned, the ledger does not know it. The retry therefore reconciles every recipient
the ledger lacks against ``GET /messages`` (same recipient, text and sender, created since the batch
started, not a dry run, and the callback key when a callback is set) before sending; a look-up that
cannot reach the batch's start fails closed. What is left is a message that the gateway accepted but
does not list yet at the moment of the retry.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from airflow_provider_smsww.client import AsyncSmsWwClient
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwDryRunIgnoredError,
    SmsWwError,
    SmsWwGateError,
    SmsWwInsufficientCreditError,
    SmsWwReconcileError,
    SmsWwResponseError,
    SmsWwSendUncertainError,
    SmsWwValidationError,
)
from airflow_provider_smsww.models import Callback, Message, MessageOptions, Region, SendRequest
from airflow_provider_smsww.segments import SegmentInfo
from airflow_provider_smsww.validation import (
    Problem,
    Recipient,
    check_message,
    check_region,
    check_sender,
    parse_recipient,
)

log = logging.getLogger(__name__)

#: Errors after which no further send of the batch can succeed: stop instead of hammering the API.
FATAL_ERRORS = (SmsWwAuthError, SmsWwInsufficientCreditError)
#: How far before the batch start a reconciled message may have been created (clock skew).
CLOCK_SKEW = timedelta(minutes=5)
#: Messages created at the same moment may be listed slightly out of order.
LISTING_ORDER_TOLERANCE = timedelta(seconds=2)
CALLBACK_KEY_FIELD = "smsww_key"
#: The keys a callback takes, in the spec's spelling (``url``, ``method``, ``field``, ``retry``,
#: ``headers``, ``custom``).
CALLBACK_KEYS = frozenset(info.alias or name for name, info in Callback.model_fields.items())


@dataclass(frozen=True)
class Batch:
    """A validated batch: what will be sent to whom. Built by :func:`check_locally`."""

    recipients: tuple[Recipient, ...]
    message: str
    sender: str | None
    region: Region
    segments: SegmentInfo
    fail_on_multiple_messages: bool = False
    callback: Callback | None = None
    #: Deterministic per-recipient keys (dag, task, run, map index, recipient), put in callback.custom.
    keys: dict[str, str] = field(default_factory=dict)

    def request(self, recipient: Recipient, *, dry_run: bool) -> SendRequest:
        callback = self.callback
        if callback is not None and recipient.e164 in self.keys:
            custom = {**callback.custom, CALLBACK_KEY_FIELD: self.keys[recipient.e164]}
            callback = callback.model_copy(update={"custom": custom})
        return SendRequest(
            recipient=recipient.e164,
            message=self.message,
            sender=self.sender,
            options=MessageOptions(dry_run=dry_run, fail_on_multiple_messages=self.fail_on_multiple_messages),
            callback=callback,
        )


def idempotency_key(*parts: object) -> str:
    """A stable key for one message of one task try family (same across retries)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def parse_literal(text: str) -> Any:
    """A list or record rendered to a string: JSON, or the Python repr that Jinja produces for a list
    when the DAG does not set ``render_template_as_native_obj``; None when it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def as_list(recipients: str | Iterable[str] | None) -> list[str]:
    """One string, a comma-separated string, a list rendered to a string (``"['+39...', ...]"``), or
    any iterable (a rendered XComArg) -> list."""
    if recipients is None:
        return []
    if isinstance(recipients, str):
        text = recipients.strip()
        if text.startswith("[") and isinstance(parsed := parse_literal(text), list):
            return [str(r) for r in parsed]
        return [r for r in (p.strip() for p in text.split(",")) if r]
    return [str(r) for r in recipients]


def check_locally(
    recipients: Sequence[str],
    message: str,
    *,
    sender: str | None = None,
    region: str = "WW",
    callback: Callback | dict[str, Any] | None = None,
    fail_on_multiple_messages: bool = False,
    max_parts_per_message: int | None = None,
) -> Batch:
    """Validate everything that can be validated without the API; raise one error naming every problem.

    Duplicate recipients (also when written differently, e.g. with spaces) are sent once.
    """
    problems: dict[str, str] = {}
    if problem := check_region(region):
        problems["region"] = problem.message
    if problem := check_sender(sender):
        problems["sender"] = problem.message
    segments = check_message(message, fail_on_multiple_messages=fail_on_multiple_messages)
    if isinstance(segments, Problem):
        problems["message"] = segments.message
    elif max_parts_per_message is not None and segments.parts > max_parts_per_message:
        problems["message"] = (
            f"message needs {segments.parts} parts ({segments.characters} {segments.encoding} characters) "
            f"and max_parts_per_message is {max_parts_per_message}"
        )
    parsed_callback: Callback | None = None
    if callback is not None:
        try:
            parsed_callback = Callback.model_validate(callback)
        except ValueError as exc:
            problems["callback"] = _first_error(exc)
        if isinstance(callback, dict) and (unknown := sorted(set(callback) - CALLBACK_KEYS)):
            # The model ignores unknown keys (it also parses the server's echo); a typo here would
            # silently drop credentials ("header") or retries ("retries").
            problems["callback"] = (
                f"unknown key(s) {', '.join(map(repr, unknown))}; the callback takes "
                f"{', '.join(sorted(CALLBACK_KEYS))}"
            )
    if not recipients:
        problems["recipients"] = "no recipients given"
    valid: dict[str, Recipient] = {}
    for raw in recipients:
        parsed = parse_recipient(raw, region if region in ("IT", "ES") else "WW")
        if isinstance(parsed, Problem):
            problems[str(raw)] = parsed.message
        else:
            valid.setdefault(parsed.e164, parsed)
    if problems:
        raise SmsWwGateError(_describe_problems("refused before any request", problems), problems=problems)
    assert isinstance(segments, SegmentInfo)
    if len(valid) < len(recipients):
        log.warning(
            "%d duplicate recipient(s) dropped: each number gets the message once",
            len(recipients) - len(valid),
        )
    return Batch(
        recipients=tuple(valid.values()),
        message=message,
        sender=sender or None,
        region=region,  # type: ignore[arg-type]
        segments=segments,
        fail_on_multiple_messages=fail_on_multiple_messages,
        callback=parsed_callback,
    )


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "callback"
        return f"{where}: {first.get('msg')}"
    return str(exc)


def _describe_problems(what: str, problems: dict[str, str]) -> str:
    lines = "\n".join(f"  - {who}: {why}" for who, why in problems.items())
    return f"SMS batch {what}; nothing was sent. {len(problems)} problem(s):\n{lines}"


@dataclass
class Estimate:
    """What the dry-run gate learnt about one message."""

    recipient: str
    parts: int
    encoding: str | None
    price: Decimal | None  # None: the API did not price it in dry run (WW prices are known after sending)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "messageCount": self.parts,
            "encoding": self.encoding,
            "estimatedPrice": None if self.price is None else float(self.price),
        }


@dataclass
class GateResult:
    estimates: list[Estimate]
    total_parts: int
    total_price: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "recipients": [e.as_dict() for e in self.estimates],
            "total_parts": self.total_parts,
            "estimated_total_price": None if self.total_price is None else float(self.total_price),
        }


async def _bounded(
    items: Sequence[Any], worker: Callable[[Any], Awaitable[Any]], concurrency: int
) -> list[Any]:
    """Run ``worker`` over ``items`` with at most ``concurrency`` in flight; results in input order.

    An unexpected exception (a ledger write failing, say) cancels everything not yet started: a batch
    that cannot record what it sent must stop sending.
    """
    semaphore = asyncio.Semaphore(max(1, concurrency))
    failed = False

    async def one(item: Any) -> Any:
        nonlocal failed
        async with semaphore:
            if failed:  # a waiter woken by the failing task's release must not start
                return None
            try:
                return await worker(item)
            except BaseException:
                failed = True
                raise

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]


def check_dry_run_answer(answer: Message, recipient: str, region: str) -> str | None:
    """What a dry run's answer says beyond its status: raises :class:`SmsWwDryRunIgnoredError` when the
    gateway reports it as a real send (``options.dryRun`` explicitly false: stop before anything else is
    sent), returns the refusal when it says the message would be blocked, else None."""
    options = answer.options
    if options is not None and "dry_run" in options.model_fields_set and not options.dry_run:
        raise SmsWwDryRunIgnoredError(
            f"{region}-messages answered a dry run for {recipient} as a real send (options.dryRun false, "
            f"message id {answer.id or '?'}): stopping before anything else is sent. Is the connection's "
            "host the SMS API, with nothing in between that drops the options?"
        )
    if answer.blocklisted:
        return f"the API would block this message: {answer.blocklisted_reason or 'blocklisted'}"
    return None


async def gate(
    client: AsyncSmsWwClient,
    batch: Batch,
    *,
    concurrency: int = 20,
    max_parts_per_message: int | None = None,
    max_total_price: float | None = None,
    price_per_part_if_unknown: float | None = None,
) -> GateResult:
    """Dry-run every message; raise :class:`SmsWwGateError` naming each refused message, or return the
    estimate. Errors that are not about one message (auth, credit, transport) propagate as they are.

    The budget fails closed: when a budget is set and the API leaves a price at 0 in dry run (worldwide
    prices are only final after sending), ``price_per_part_if_unknown`` must say what to assume.
    """
    problems: dict[str, str] = {}

    async def dry_run(recipient: Recipient) -> Estimate | None:
        try:
            answer = await client.send_message(batch.request(recipient, dry_run=True), batch.region)
        except SmsWwValidationError as exc:
            problems[recipient.e164] = exc.message
            return None
        # Any other error (auth, credit, transport, server) is about the account or the link, not
        # this recipient: it propagates and stops the gate, so nothing is sent.
        if refusal := check_dry_run_answer(answer, recipient.e164, batch.region):
            problems[recipient.e164] = refusal
            return None
        parts = answer.message_count or batch.segments.parts
        price = answer.total_price or (answer.price * parts if answer.price else None)
        return Estimate(recipient.e164, parts, answer.encoding, price or None)

    # One dry run alone first: if the API ignored dryRun, only that one message was sent, not
    # ``concurrency`` of them.
    canary, *rest = batch.recipients
    first = await dry_run(canary)
    answers = [first, *await _bounded(rest, dry_run, concurrency)]
    estimates = [e for e in answers if e is not None]
    for estimate in estimates:
        if max_parts_per_message is not None and estimate.parts > max_parts_per_message:
            problems[estimate.recipient] = (
                f"the API counts {estimate.parts} parts; max_parts_per_message is {max_parts_per_message}"
            )
    total_parts = sum(e.parts for e in estimates)
    unpriced = [e for e in estimates if e.price is None]
    total: Decimal | None = None
    if not unpriced:
        total = sum((e.price or Decimal(0) for e in estimates), Decimal(0))
    elif price_per_part_if_unknown is not None:
        assumed = Decimal(str(price_per_part_if_unknown))
        total = sum((e.price if e.price is not None else assumed * e.parts for e in estimates), Decimal(0))
    if max_total_price is not None and not problems:
        if total is None:
            problems["budget"] = (
                f"the API did not price {len(unpriced)} message(s) in dry run (worldwide prices are final "
                "only after sending); set price_per_part_if_unknown to check max_total_price"
            )
        elif total > Decimal(str(max_total_price)):
            problems["budget"] = (
                f"estimated total {total:.4f} EUR for {total_parts} part(s) exceeds max_total_price "
                f"{max_total_price}"
            )
    if problems:
        raise SmsWwGateError(_describe_problems("refused by the dry-run gate", problems), problems=problems)
    return GateResult(estimates=estimates, total_parts=total_parts, total_price=total)


class Ledger(Protocol):
    """Where accepted message ids are recorded so that a retried task does not resend them."""

    def get(self, recipient: str) -> dict[str, Any] | None: ...

    def record(self, recipient: str, record: dict[str, Any]) -> None: ...

    def started_at(self) -> datetime | None:
        """When an earlier try of this batch started sending; None on a first try."""
        ...

    def mark_started(self, when: datetime) -> None: ...


class MemoryLedger:
    """A ledger that lives as long as the object: for tests and for runs without a task state store."""

    def __init__(self, started: datetime | None = None) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._started = started

    def get(self, recipient: str) -> dict[str, Any] | None:
        return self.records.get(recipient)

    def record(self, recipient: str, record: dict[str, Any]) -> None:
        self.records[recipient] = record

    def started_at(self) -> datetime | None:
        return self._started

    def mark_started(self, when: datetime) -> None:
        self._started = self._started or when


def not_yet_recorded(batch: Batch, ledger: Ledger) -> Batch:
    """The batch less the recipients an earlier try recorded as accepted (the whole batch on a first
    try, whose ledger is empty by construction)."""
    if ledger.started_at() is None:
        return batch
    return replace(batch, recipients=tuple(r for r in batch.recipients if ledger.get(r.e164) is None))


def record_of(message: Message) -> dict[str, Any]:
    """What the operator returns (XCom) and records per recipient: JSON-safe, no text, no secrets."""
    return {
        "recipient": message.recipient,
        "id": message.id,
        "state": message.state_name,
        "messageCount": message.message_count,
        "encoding": message.encoding,
    }


def _listed_e164(message: Message) -> str:
    """The recipient of a listed message in E.164, whether the gateway writes it with ``+``, without,
    or without the country prefix (which it reports apart, in ``internationalPrefix``)."""
    raw = (message.recipient or "").strip()
    digits = "".join(ch for ch in raw if ch.isdigit())
    prefix = message.international_prefix or ""
    if digits and not raw.startswith("+") and prefix and not digits.startswith(prefix):
        digits = prefix + digits
    return f"+{digits}" if digits else ""


def _utc(when: datetime | None) -> datetime | None:
    """Timestamps without an offset are UTC (as the token expiry is read); never compare them naive."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


async def reconcile(
    client: AsyncSmsWwClient,
    batch: Batch,
    recipients: Iterable[str],
    since: datetime,
    *,
    scan_limit: int = 10_000,
) -> dict[str, Message]:
    """Find messages of this batch that the gateway already accepted, among ``recipients``.

    A match has the same recipient, text and sender, is not a dry run, was created at or after
    ``since`` minus clock skew, and carries this batch's callback key when the batch has a callback.
    The scan of ``GET /messages`` stops early only once it has passed ``since`` in a listing that is
    newest first (the spec does not promise the order, so it is checked as the scan goes). It fails
    closed: if it runs out of ``scan_limit`` before that, with recipients still unaccounted for, it
    raises :class:`SmsWwReconcileError` rather than report them as not sent, which would send them
    again.
    """
    wanted = set(recipients)
    found: dict[str, Message] = {}
    floor = since - CLOCK_SKEW
    sender = batch.sender or "Openapi"
    newest_first, seen_descending = True, False
    previous: datetime | None = None
    scanned = 0
    async for message in client.list_messages(max_items=scan_limit):
        scanned += 1
        created = _utc(message.created_at)
        if created is not None:
            if previous is not None and created > previous + LISTING_ORDER_TOLERANCE:
                newest_first = False
            elif previous is not None and created < previous:
                seen_descending = True
            previous = created
            if created < floor:
                if newest_first and seen_descending:
                    return found  # a newest-first listing: everything after this is older still
                continue
        if not message.id or (message.options is not None and message.options.dry_run):
            continue
        recipient = _listed_e164(message)
        if recipient not in wanted or recipient in found or message.message != batch.message:
            continue
        if message.sender not in (None, sender, batch.sender):
            continue
        if batch.callback is not None and recipient in batch.keys:
            custom = message.callback.custom if message.callback else {}
            if custom.get(CALLBACK_KEY_FIELD, batch.keys[recipient]) != batch.keys[recipient]:
                continue
        found[recipient] = message
        if len(found) == len(wanted):
            return found
    if scanned >= scan_limit:
        order = "" if newest_first else " (and the listing is not newest first)"
        raise SmsWwReconcileError(
            f"GET /messages: {len(wanted) - len(found)} earlier send(s) could not be confirmed or ruled "
            f"out within {scan_limit} listed messages{order}; not sending them again, to avoid a "
            "duplicate. Check the account's messages, then run the task again."
        )
    return found


@dataclass
class SendReport:
    """Outcome of :func:`send_all`: records in recipient order, plus what failed and why."""

    records: list[dict[str, Any]]
    failures: dict[str, str]
    reused: int = 0


class _Progress:
    """Logs sent/total and rate at most every ``every`` seconds (long lists), and once at the end."""

    def __init__(self, total: int, every: float = 5.0) -> None:
        self.total, self.every = total, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            log.info("sent %d/%d (%.0f messages/s)", self.done, self.total, rate)


async def send_all(
    client: AsyncSmsWwClient,
    batch: Batch,
    ledger: Ledger,
    *,
    now: Callable[[], datetime],
    concurrency: int = 20,
    uncertain_rounds: int = 1,
    scan_limit: int = 10_000,
    record_async: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
) -> SendReport:
    """Send the batch for real, exactly once per recipient across task retries (see module docstring).

    A send whose outcome is unknown is looked up in ``GET /messages`` once the round is over, and
    by default not resent in this try when it is not there: a gateway that timed out is often just
    slow, and may list the message a moment after the look-up. It is reported failed instead, and the
    task's next try (after its ``retry_delay``) looks again before sending. ``uncertain_rounds`` > 1
    resends within the try, for callers who accept that risk.

    ``scan_limit`` bounds each reconciliation's ``GET /messages`` scan *beyond* this batch's own
    messages: the batch itself adds up to one message per recipient since it started, so a scan of
    only ``scan_limit`` would miss an early uncertain send of a batch larger than that, and resend it.
    """
    # Newest first, this batch's own messages come before anything older: scan past all of them.
    scan_limit += len(batch.recipients)
    previous_start = ledger.started_at()
    started = previous_start or now()
    if previous_start is None:
        ledger.mark_started(started)

    async def record(recipient: str, message: Message) -> dict[str, Any]:
        rec = record_of(message)
        if record_async is not None:
            await record_async(recipient, rec)
        else:
            ledger.record(recipient, rec)
        return rec

    records: dict[str, dict[str, Any]] = {}
    if previous_start is not None:  # a first try has an empty ledger: no need to read it per recipient
        for r in batch.recipients:
            if (known := ledger.get(r.e164)) is not None:
                records[r.e164] = known
    reused = len(records)
    pending = [r for r in batch.recipients if r.e164 not in records]
    if previous_start is not None and pending:
        # A retry: the earlier try may have been accepted for recipients it did not get to record.
        found = await reconcile(
            client, batch, (r.e164 for r in pending), previous_start, scan_limit=scan_limit
        )
        for recipient, message in found.items():
            records[recipient] = await record(recipient, message)
        reused += len(found)
        pending = [r for r in pending if r.e164 not in records]
    if reused:
        log.info("%d recipient(s) already accepted by an earlier try: not sent again", reused)

    failures: dict[str, str] = {}
    progress = _Progress(len(pending))
    fatal: list[SmsWwError] = []

    async def send(recipient: Recipient) -> Recipient | None:
        """Send one; return the recipient when the outcome is uncertain."""
        if fatal:
            failures[recipient.e164] = f"not sent: {fatal[0].message}"
            return None
        try:
            message = await client.send_message(batch.request(recipient, dry_run=False), batch.region)
        except (SmsWwSendUncertainError, SmsWwResponseError):
            return recipient  # an answer we cannot read is no proof that nothing was sent
        except FATAL_ERRORS as exc:
            fatal.append(exc)
            failures[recipient.e164] = exc.message
            return None
        except SmsWwError as exc:
            failures[recipient.e164] = exc.message
            return None
        if not message.id:
            return recipient  # accepted without an id: find it in GET /messages
        records[recipient.e164] = await record(recipient.e164, message)
        progress.tick()
        return None

    rounds = 0
    while pending:
        uncertain = [r for r in await _bounded(pending, send, concurrency) if r is not None]
        if not uncertain:
            break
        rounds += 1
        try:
            found = await reconcile(
                client, batch, (r.e164 for r in uncertain), started, scan_limit=scan_limit
            )
        except SmsWwReconcileError as exc:
            for r in uncertain:
                failures[r.e164] = f"outcome unknown; {exc.message}"
            break
        for recipient, message in found.items():
            records[recipient] = await record(recipient, message)
            progress.tick()
        pending = [r for r in uncertain if r.e164 not in found]
        if pending and rounds >= uncertain_rounds:
            for r in pending:
                failures[r.e164] = (
                    f"outcome unknown after {rounds} attempt(s) and not in GET /messages yet; not resent "
                    "in this try to avoid a duplicate (the next try looks it up again before sending)"
                )
            break
        if pending:
            log.warning(
                "%d send(s) had an unknown outcome and are not on the account: sending again", len(pending)
            )
    ordered = [records[r.e164] for r in batch.recipients if r.e164 in records]
    return SendReport(records=ordered, failures=failures, reused=reused)
