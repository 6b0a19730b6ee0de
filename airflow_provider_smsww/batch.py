"""Sending one text to many recipients: local checks, the dry-run gate, the bulk send, reconciliation.

This is the money path of :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator`, kept free
of Airflow so that it can be tested and benchmarked on its own. The order is what keeps it safe:

1. :func:`check_locally` refuses bad input with no request at all.
2. :func:`gate` prices every message with ``dryRun`` (no cost) and refuses the whole batch if any
   message fails, if a message needs more parts than allowed, or if the total is over budget.
3. :func:`send_all` sends for real with a bounded number in flight. Each accepted id is written to a
   :class:`Ledger` *before* that slot starts another send, so a retried task skips what was accepted.
   A send whose outcome is unknown (connection dropped after the request was written, 5xx) is not
   resent blindly: :func:`reconcile` looks for it in ``GET /messages`` first.

Remaining window, stated honestly: if the worker dies after the gateway accepted a message but before
the ledger write returned, the ledger does not know it. The retry therefore reconciles every recipient
the ledger lacks against ``GET /messages`` (same recipient, text and sender, created since the batch
started, and the callback key when a callback is set) before sending. What is left is a message that
the gateway accepted but does not list yet at the moment of the retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from airflow_provider_smsww.client import AsyncSmsWwClient
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwError,
    SmsWwGateError,
    SmsWwInsufficientCreditError,
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
CALLBACK_KEY_FIELD = "smsww_key"


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


def as_list(recipients: str | Iterable[str] | None) -> list[str]:
    """One string, a comma-separated string, or any iterable (a rendered XComArg) -> list."""
    if recipients is None:
        return []
    if isinstance(recipients, str):
        return [r for r in (p.strip() for p in recipients.split(",")) if r]
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
        parts = answer.message_count or batch.segments.parts
        price = answer.total_price or (answer.price * parts if answer.price else None)
        return Estimate(recipient.e164, parts, answer.encoding, price or None)

    estimates = [e for e in await _bounded(batch.recipients, dry_run, concurrency) if e is not None]
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


async def reconcile(
    client: AsyncSmsWwClient,
    batch: Batch,
    recipients: Iterable[str],
    since: datetime,
    *,
    scan_limit: int = 10_000,
) -> dict[str, Message]:
    """Find messages of this batch that the gateway already accepted, among ``recipients``.

    Scans ``GET /messages`` (newest first) until it passes ``since`` or ``scan_limit`` messages. A match
    has the same recipient, text and sender, was created at or after ``since`` minus clock skew, and
    carries this batch's callback key when the batch has a callback.
    """
    wanted = set(recipients)
    found: dict[str, Message] = {}
    floor = since - CLOCK_SKEW
    sender = batch.sender or "Openapi"
    async for message in client.list_messages(max_items=scan_limit):
        created = message.created_at
        if created is not None and created.tzinfo is not None and created < floor:
            break
        recipient = message.recipient or ""
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
            break
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
    uncertain_rounds: int = 3,
    scan_limit: int = 10_000,
    record_async: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
) -> SendReport:
    """Send the batch for real, exactly once per recipient across task retries (see module docstring).

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
        except SmsWwSendUncertainError:
            return recipient
        except FATAL_ERRORS as exc:
            fatal.append(exc)
            failures[recipient.e164] = exc.message
            return None
        except SmsWwError as exc:
            failures[recipient.e164] = exc.message
            return None
        records[recipient.e164] = await record(recipient.e164, message)
        progress.tick()
        return None

    rounds = 0
    while pending:
        uncertain = [r for r in await _bounded(pending, send, concurrency) if r is not None]
        if not uncertain:
            break
        found = await reconcile(client, batch, (r.e164 for r in uncertain), started, scan_limit=scan_limit)
        for recipient, message in found.items():
            records[recipient] = await record(recipient, message)
            progress.tick()
        pending = [r for r in uncertain if r.e164 not in found]
        rounds += 1
        if pending and rounds >= uncertain_rounds:
            for r in pending:
                failures[r.e164] = (
                    f"outcome unknown after {rounds} attempt(s) and not found in GET /messages; "
                    "not resent again to avoid a duplicate"
                )
            break
        if pending:
            log.warning(
                "%d send(s) had an unknown outcome and are not on the account: sending again", len(pending)
            )
    ordered = [records[r.e164] for r in batch.recipients if r.e164 in records]
    return SendReport(records=ordered, failures=failures, reused=reused)
