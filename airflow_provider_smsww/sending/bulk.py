"""Steps 5 and 6 of a send (:mod:`.order`): the real sends, a bounded number in flight, each accepted id recorded in the
ledger before that slot sends again; unknown outcomes are reconciled, never resent blindly."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.concurrency import Progress
from airflow_provider_smsww.exceptions import (
    SmsWwError,
    SmsWwReconcileError,
    SmsWwResponseError,
    SmsWwSendUncertainError,
)
from airflow_provider_smsww.hooks.fanout import FanOut
from airflow_provider_smsww.models import as_utc
from airflow_provider_smsww.sending.ledger import record_of, unknown_among
from airflow_provider_smsww.sending.reconcile import reconcile
from airflow_provider_smsww.sending.settle import NO_EVIDENCE_WAIT, Evidence, resend_at, settle_window

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Message
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger
    from airflow_provider_smsww.validation import Recipient

log = logging.getLogger(__name__)

#: How long an unknown outcome must be absent from ``GET /messages`` before it is resent, while no
#: message of the batch has been seen listed (then the window comes from evidence: :mod:`.settle`).
DEFAULT_SETTLE_TIME = NO_EVIDENCE_WAIT
#: Seconds between look-ups while unknown outcomes settle.
POLL_INTERVAL = 3.0
#: A try stops waiting for an unknown outcome absent this long (or ``settle_time``, if longer) without the
#: window closing (messages of the batch still unlisted keep it open): it fails, not resent, and the
#: next try looks again.
GIVE_UP_AFTER = 900.0
#: Resends of unknown outcomes per try, after which the try gives up on them (the next one goes on).
MAX_RESENDS = 2
#: Why a recipient whose listed message is not provably a real send is neither recorded nor resent.
UNDECIDED = (
    "outcome undecided: GET /messages lists a matching message that is not provably a real send (no "
    "options.dryRun false, no sentAt, no sent state) or names the number ambiguously; not resent, to "
    "avoid a duplicate, and not taken for sent. Check the account's messages"
)


@dataclass
class SendReport:
    """Outcome of :func:`send_all`: records in recipient order, plus what failed and why."""

    records: list[dict[str, Any]]
    failures: dict[str, str]
    reused: int = 0
    #: The error that stopped the batch (credit, spending cap, credentials), if one did.
    fatal: SmsWwError | None = None
    #: With ``wait=False``: the unknown outcomes left to settle, and when the first may be resent.
    unsettled: dict[str, datetime] = field(default_factory=dict)
    resume_at: datetime | None = None
    #: Each record's ``Recipient.key`` (its number, or its number and text in a personalised batch).
    keys: list[str] = field(default_factory=list)


async def send_all(
    hook: SmsWwHook,
    batch: Batch,
    ledger: Ledger,
    *,
    now: Callable[[], datetime],
    concurrency: int = 20,
    scan_limit: int = 10_000,
    settle_time: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    wait: bool = True,
) -> SendReport:
    """Send the batch for real, exactly once per recipient across task retries (see module docstring).

    A send whose outcome is unknown (5xx, dropped connection, unreadable answer) is looked up in
    ``GET /messages``, again every few seconds while it is not listed, and resent only once it has
    been absent, since its answer came, for the window the listing's observed lag allows
    (:func:`.settle.settle_window`; ``settle_time``, when given, is its minimum): a gateway that timed
    out is often just slow, and may list the message a while later. The batch's accepted messages are
    the evidence (:class:`.settle.Evidence`, kept in the ledger for the next try): how long they take
    to be listed, and the gateway's clock offset their ``createdAt`` shows (used besides ``Date`` to
    date the look-ups). At most :data:`MAX_RESENDS` such resends per recipient and try; what is still unknown then fails the try, and the next try looks again first
    (the unknown outcomes and their send times are kept in the ledger). A try that stopped in the
    middle of its sends (a crash) leaves every unrecorded recipient unknown as of the next try's start.

    With ``wait=False`` the try does not wait for the window itself: once nothing is due, it returns
    with the unknown outcomes in :attr:`SendReport.unsettled` and the time the first may be resent in
    :attr:`SendReport.resume_at` (saved in the ledger's round, as for a retry), so the caller can wait
    elsewhere (a deferral) and run the send again then.

    ``scan_limit`` bounds each reconciliation's ``GET /messages`` scan *beyond* this batch's own
    messages: the batch itself adds up to one message per recipient since it started, so a scan of
    only ``scan_limit`` would miss an early uncertain send of a batch larger than that, and resend it.
    """
    # Newest first, this batch's own messages come before anything older: scan past all of them.
    scan_limit += len(batch.recipients)
    previous_start = ledger.started_at()
    started = previous_start or now()
    if previous_start is None:
        ledger.mark_started(started)  # also opens the first round: a crash leaves it open

    by_key = {r.key: r for r in batch.recipients}

    async def record(recipient: str, message: Message) -> dict[str, Any]:
        # The recipient as the batch wrote it (E.164), whatever form the gateway lists it in.
        rec = {**record_of(message), "recipient": by_key[recipient].e164}
        await ledger.arecord(recipient, rec)
        return rec

    records: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    #: Recipient -> when the send whose outcome is unknown was made (our clock).
    unknown: dict[str, datetime] = {}
    if previous_start is not None:  # a first try has an empty ledger: no need to read it per recipient
        for r in batch.recipients:
            if (known := ledger.get(r.key)) is not None:
                records[r.key] = known
    reused = len(records)
    pending = [r for r in batch.recipients if r.key not in records]
    # What earlier tries saw of the listing's lag and the gateway's clock (nothing on a first try).
    evidence = Evidence.from_dict(ledger.settle_evidence() if previous_start is not None else None)
    if previous_start is not None and pending:
        # A retry: the earlier try may have been accepted for recipients it did not get to record.
        unknown = unknown_among(ledger, [r.key for r in pending], now)
        ledger.set_round(unknown, open=True, evidence=evidence.as_dict())  # until this try's sends are over
        if unknown:
            found = await reconcile(
                hook,
                batch,
                list(unknown),
                previous_start,
                scan_limit=scan_limit,
                clock_offset=evidence.clock_offset,
            )
            for recipient, message in found.items():
                records[recipient] = await record(recipient, message)
                del unknown[recipient]
            reused += len(found)
            pending = [r for r in pending if r.key not in records]
    if reused:
        log.info("%d recipient(s) already accepted by an earlier try: not sent again", reused)

    progress = Progress(len(pending), "sent")
    fanout = FanOut(hook, batch, concurrency, failures)
    attempts: Counter[str] = Counter()

    async def send(recipient: Recipient) -> Recipient | None:
        """Send one; return the recipient when the outcome is uncertain."""
        if fanout.stopped(recipient):
            return None
        attempts[recipient.key] += 1
        sent_at = now()
        try:
            message = await fanout.send(recipient)
        except (SmsWwSendUncertainError, SmsWwResponseError):
            unknown[recipient.key] = now()  # an unreadable answer is no proof that nothing was sent
            return recipient
        except SmsWwError as exc:
            failures[recipient.key] = exc.message
            return None
        if message is None:  # refused for good (credentials, credit, cap): in failures
            return None
        if not message.id:
            unknown[recipient.key] = now()  # accepted without an id: find it in GET /messages
            return recipient
        evidence.accepted(message.id, sent_at, now(), as_utc(message.created_at))
        records[recipient.key] = await record(recipient.key, message)
        progress.tick()
        return None

    async def settle() -> None:
        """Look the unknown outcomes up until each is found, undecided, or absent for the settle window
        since its answer (then resent, at most :data:`MAX_RESENDS` times per recipient in this try);
        what remains stays in ``unknown``. Each look-up is evidence of the listing's lag too."""
        #: Recipient -> when the last complete look-up that did not list it began.
        missed: dict[str, datetime] = {}
        while unknown:
            looked_at = now()
            try:
                found = await reconcile(
                    hook,
                    batch,
                    list(unknown),
                    started,
                    scan_limit=scan_limit,
                    clock_offset=evidence.clock_offset,
                )
            except SmsWwReconcileError as exc:
                failures.update({r: f"outcome unknown; {exc.message}" for r in unknown})
                return
            evidence.scanned(looked_at, found.listed_ids, complete=found.complete)
            for recipient, message in found.items():
                evidence.found_after(unknown[recipient], missed.pop(recipient, None))
                records[recipient] = await record(recipient, message)
                del unknown[recipient]
                progress.tick()
            if found.complete:
                missed.update({r: looked_at for r, sent_at in unknown.items() if sent_at < looked_at})
            due_at = {r: resend_at(sent_at, evidence, settle_time) for r, sent_at in unknown.items()}
            settled = [r for r in unknown if looked_at >= due_at[r]]
            for recipient in found.undecided.intersection(settled):  # settled, and still not provable
                failures[recipient] = UNDECIDED
                del unknown[recipient]
            # Resent at most MAX_RESENDS times in this try; the rest is left to the next try.
            due = [by_key[r] for r in settled if r in unknown and attempts[r] <= MAX_RESENDS]
            give_up = timedelta(seconds=max(GIVE_UP_AFTER, settle_time or 0.0))
            waiting = [r for r in unknown if attempts[r] <= MAX_RESENDS and looked_at - unknown[r] < give_up]
            if due:
                window = settle_window(evidence, settle_time)
                log.warning(
                    "%d send(s) of unknown outcome absent for %g s (the settle window: %s): sending again",
                    len(due),
                    window,
                    _why(evidence, settle_time),
                )
                for r in due:
                    del unknown[r.key]
                    missed.pop(r.key, None)
                await fanout.run(due, send)
            elif not waiting:
                return
            else:
                deadline = min(due_at[r] for r in waiting)
                if not wait:  # the caller waits (deferred); the ledger's round keeps the unknown
                    resume.append(deadline)
                    return
                await sleep(min(POLL_INTERVAL, max((deadline - now()).total_seconds(), 0.0)))

    resume: list[datetime] = []
    try:
        await fanout.run([r for r in pending if r.key not in unknown], send)
        try:
            await settle()
        except SmsWwError:  # e.g. GET /messages failing for good: the sends themselves are over
            ledger.set_round(unknown, open=False, evidence=evidence.as_dict())
            raise
    except asyncio.CancelledError:  # the task's execution_timeout (run_in_new_loop): an orderly stop
        _close_stopped_round(ledger, unknown, attempts, records, now(), evidence)
        raise
    # Only now is the round over: a crash before this line (e.g. the ledger failing) leaves it open.
    ledger.set_round(unknown, open=False, evidence=evidence.as_dict())
    keys = [r.key for r in batch.recipients if r.key in records]
    if resume:
        return SendReport(
            [records[k] for k in keys],
            failures,
            reused,
            fanout.fatal,
            keys=keys,
            unsettled=dict(unknown),
            resume_at=resume[0],
        )
    for recipient in unknown:
        failures.setdefault(
            recipient,
            f"outcome unknown ({_attempts(attempts[recipient])}) and not in GET /messages "
            f"yet; not resent before it has been absent for the settle window "
            f"({settle_window(evidence, settle_time):g} s: {_why(evidence, settle_time)}) since it was "
            "sent, to avoid a duplicate (the next try looks it up again before sending)",
        )
    return SendReport(
        records=[records[k] for k in keys], failures=failures, reused=reused, fatal=fanout.fatal, keys=keys
    )


def _close_stopped_round(
    ledger: Ledger,
    unknown: dict[str, datetime],
    attempts: Counter[str],
    records: dict[str, dict[str, Any]],
    stopped_at: datetime,
    evidence: Evidence,
) -> None:
    """Close the round of a try stopped part-way (cancelled by its timeout): each recipient whose send
    began and is not recorded is an unknown outcome as of now; one never sent is not, so the next try
    sends it at once instead of waiting out the no-evidence window. If the ledger cannot be written the
    round stays open, and the next try treats every unrecorded recipient as unknown (as after a crash)."""
    held = dict(unknown)
    held.update({key: stopped_at for key in attempts if key not in records and key not in held})
    try:
        ledger.set_round(held, open=False, evidence=evidence.as_dict())
    except Exception:
        log.warning("The stopped try's round could not be closed: the next try looks everyone up first")


def _attempts(count: int) -> str:
    """How the unknown outcome came about, for its failure text."""
    return f"after {count} attempt(s) in this try" if count else "sent by an earlier try"


def _why(evidence: Evidence, settle_time: float | None) -> str:
    """Where the settle window comes from, in words (for the log and the failure)."""
    seen = (
        "no message of the batch listed yet"
        if evidence.listed == 0
        else f"{evidence.longest_absence:g} s longest listing lag seen"
    )
    return seen if settle_time is None else f"{seen}; settle_time {settle_time:g} s"
