"""Steps 5 and 6 of a send (:mod:`.order`): the real sends, a bounded number in flight, each accepted id
recorded in the ledger before that slot sends again; unknown outcomes are reconciled, never resent blindly."""

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
from airflow_provider_smsww.sending.reconcile import Found, reconcile
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
    date the look-ups). At most :data:`MAX_RESENDS` such resends per recipient and try; what is still unknown
    then fails the try, and the next try looks again first (the unknown outcomes and their send times are kept
    in the ledger). A try that stopped in the middle of its sends (a crash) leaves every unrecorded recipient
    unknown as of the next try's start.

    With ``wait=False`` the try does not wait for the window itself: once nothing is due, it returns
    with the unknown outcomes in :attr:`SendReport.unsettled` and the time the first may be resent in
    :attr:`SendReport.resume_at` (saved in the ledger's round, as for a retry), so the caller can wait
    elsewhere (a deferral) and run the send again then.

    ``scan_limit`` bounds each reconciliation's ``GET /messages`` scan *beyond* this batch's own
    messages: the batch itself adds up to one message per recipient since it started, so a scan of
    only ``scan_limit`` would miss an early uncertain send of a batch larger than that, and resend it.
    """
    bulk = BulkSend(
        hook,
        batch,
        ledger,
        now=now,
        concurrency=concurrency,
        scan_limit=scan_limit,
        settle_time=settle_time,
        sleep=sleep,
        wait=wait,
    )
    return await bulk.run()


class BulkSend:
    """One try's real sends of a batch, in the steps :meth:`run` tells: take up what the earlier tries
    did, send, settle the unknown outcomes, close the ledger's round, report. Made and run by
    :func:`send_all` (whose docstring tells the promise and the parameters).

    The state of the try lives here, each piece written by the step that names it: ``records`` (who was
    accepted), ``failures`` (who was not, and why), ``unknown`` (sends of unknown outcome, with when each
    was made, on our clock), ``missed`` (when the last complete look-up that did not list each began),
    ``attempts`` (sends per recipient in this try) and ``evidence`` (the listing's lag, the gateway's
    clock).
    """

    def __init__(
        self,
        hook: SmsWwHook,
        batch: Batch,
        ledger: Ledger,
        *,
        now: Callable[[], datetime],
        concurrency: int,
        scan_limit: int,
        settle_time: float | None,
        sleep: Callable[[float], Awaitable[None]],
        wait: bool,
    ) -> None:
        self.hook, self.batch, self.ledger = hook, batch, ledger
        self.now, self.sleep, self.wait, self.settle_time = now, sleep, wait, settle_time
        # Newest first, this batch's own messages come before anything older: scan past all of them.
        self.scan_limit = scan_limit + len(batch.recipients)
        self.by_key = {r.key: r for r in batch.recipients}
        self.records: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.unknown: dict[str, datetime] = {}
        self.missed: dict[str, datetime] = {}
        self.attempts: Counter[str] = Counter()
        self.evidence = Evidence.from_dict(None)
        self.reused = 0
        self.started: datetime | None = None
        self.fanout = FanOut(hook, batch, concurrency, self.failures)
        self.progress = Progress(0, "sent")  # counts the recipients left once the earlier tries are taken up

    async def run(self) -> SendReport:
        """The whole try; the ledger's round is closed on every way out but a crash (which leaves it
        open, so that the next try looks every unrecorded recipient up)."""
        pending = await self._take_up_earlier_tries()
        self.progress = Progress(len(pending), "sent")
        try:
            await self.fanout.run([r for r in pending if r.key not in self.unknown], self._send_one)
            try:
                resume_at = await self._settle()
            except SmsWwError:  # e.g. GET /messages failing for good: the sends themselves are over
                self._close_round()
                raise
        except asyncio.CancelledError:  # the task's execution_timeout (run_in_new_loop): an orderly stop
            self._close_stopped_round()
            raise
        # Only now is the round over: a crash before this line (e.g. the ledger failing) leaves it open.
        self._close_round()
        return self._report(resume_at)

    async def _take_up_earlier_tries(self) -> list[Recipient]:
        """Open the ledger's first round, or take up what the earlier tries did: the recipients they
        recorded are not sent again, and on a retry the unrecorded ones are looked up first. Returns the
        recipients left to send."""
        previous_start = self.ledger.started_at()
        self.started = previous_start or self.now()
        if previous_start is None:  # a first try has an empty ledger: no need to read it per recipient
            self.ledger.mark_started(self.started)  # also opens the first round: a crash leaves it open
            return list(self.batch.recipients)
        for r in self.batch.recipients:
            if (known := self.ledger.get(r.key)) is not None:
                self.records[r.key] = known
        # What earlier tries saw of the listing's lag and the gateway's clock, and their accepted
        # messages: how soon the listing shows them is this try's own evidence of its lag.
        self.evidence = Evidence.from_dict(self.ledger.settle_evidence())
        self.evidence.recorded_before(
            (str(rec["id"]) for rec in self.records.values() if rec.get("id")), self.now()
        )
        pending = [r for r in self.batch.recipients if r.key not in self.records]
        if pending:
            await self._look_up_unrecorded(pending, previous_start)
        self.reused = len(self.records)
        if self.reused:
            log.info("%d recipient(s) already accepted by an earlier try: not sent again", self.reused)
        return [r for r in pending if r.key not in self.records]

    async def _look_up_unrecorded(self, pending: list[Recipient], previous_start: datetime) -> None:
        """A retry: the earlier try may have been accepted for recipients it did not get to record. Their
        unknown outcomes open this try's round (until its sends are over) and are looked up in
        ``GET /messages`` before anything is sent; who is found is recorded, the rest stays unknown."""
        self.unknown = unknown_among(self.ledger, [r.key for r in pending], self.now)
        self.ledger.set_round(self.unknown, open=True, evidence=self.evidence.as_dict())
        if not self.unknown:
            return
        looked_at = self.now()
        found = await reconcile(
            self.hook,
            self.batch,
            list(self.unknown),
            previous_start,
            scan_limit=self.scan_limit,
            clock_offset=self.evidence.clock_offset,
        )
        self.evidence.scanned(looked_at, found.listed_ids, complete=found.complete)
        for recipient, message in found.items():
            await self._record(recipient, message)
            del self.unknown[recipient]

    async def _record(self, recipient: str, message: Message) -> None:
        """Write an accepted message to the ledger, under the number as the batch wrote it (E.164),
        whatever form the gateway lists it in."""
        record = {**record_of(message), "recipient": self.by_key[recipient].e164}
        await self.ledger.arecord(recipient, record)
        self.records[recipient] = record

    async def _send_one(self, recipient: Recipient) -> None:
        """Send one for real: recorded when accepted, in ``failures`` when refused, in ``unknown`` when
        the outcome is not known (an unreadable answer, or no id, is no proof that nothing was sent)."""
        if self.fanout.stopped(recipient):
            return
        self.attempts[recipient.key] += 1
        sent_at = self.now()
        try:
            message = await self.fanout.send(recipient)
        except (SmsWwSendUncertainError, SmsWwResponseError):
            self.unknown[recipient.key] = self.now()
            return
        except SmsWwError as exc:
            self.failures[recipient.key] = exc.message
            return
        if message is None:  # refused for good (credentials, credit, cap): in failures
            return
        if not message.id:
            self.unknown[recipient.key] = self.now()  # accepted without an id: find it in GET /messages
            return
        self.evidence.accepted(message.id, sent_at, self.now(), as_utc(message.created_at))
        await self._record(recipient.key, message)
        self.progress.tick()

    async def _settle(self) -> datetime | None:
        """Look the unknown outcomes up until each is found, undecided, or absent for the settle window
        since its answer (then resent, at most :data:`MAX_RESENDS` times per recipient in this try);
        what remains stays in ``unknown``. Returns when the first may be resent if the caller waits for
        it (``wait=False``), else None."""
        while self.unknown:
            looked_at = self.now()
            found = await self._look_up(looked_at)
            if found is None:
                return None
            await self._take_found(found, looked_at)
            due_at = {r: resend_at(sent, self.evidence, self.settle_time) for r, sent in self.unknown.items()}
            settled = [r for r in self.unknown if looked_at >= due_at[r]]
            for recipient in found.undecided.intersection(settled):  # settled, and still not provable
                self.failures[recipient] = UNDECIDED
                del self.unknown[recipient]
            due = [self.by_key[r] for r in settled if r in self.unknown and self.attempts[r] <= MAX_RESENDS]
            if due:
                await self._resend(due)
                continue
            if not (waiting := self._still_waiting(looked_at)):
                return None
            deadline = min(due_at[r] for r in waiting)
            if not self.wait:  # the caller waits (deferred); the ledger's round keeps the unknown
                return deadline
            await self.sleep(min(POLL_INTERVAL, max((deadline - self.now()).total_seconds(), 0.0)))
        return None

    async def _look_up(self, looked_at: datetime) -> Found | None:
        """One look-up of the unknown outcomes in ``GET /messages``, which is evidence of the listing's
        lag too; None, with each unknown outcome failed, when the look-up cannot decide."""
        assert self.started is not None  # set by _take_up_earlier_tries
        try:
            found = await reconcile(
                self.hook,
                self.batch,
                list(self.unknown),
                self.started,
                scan_limit=self.scan_limit,
                clock_offset=self.evidence.clock_offset,
            )
        except SmsWwReconcileError as exc:
            self.failures.update({r: f"outcome unknown; {exc.message}" for r in self.unknown})
            return None
        self.evidence.scanned(looked_at, found.listed_ids, complete=found.complete)
        return found

    async def _take_found(self, found: Found, looked_at: datetime) -> None:
        """Record the unknown outcomes a look-up found (each tells how long the listing took), and note
        when a complete look-up missed the others."""
        for recipient, message in found.items():
            self.evidence.found_after(self.unknown[recipient], self.missed.pop(recipient, None))
            await self._record(recipient, message)
            del self.unknown[recipient]
            self.progress.tick()
        if found.complete:
            self.missed.update({r: looked_at for r, sent_at in self.unknown.items() if sent_at < looked_at})

    async def _resend(self, due: list[Recipient]) -> None:
        """Send again the unknown outcomes absent for the settle window."""
        log.warning(
            "%d send(s) of unknown outcome absent for %g s (the settle window: %s): sending again",
            len(due),
            settle_window(self.evidence, self.settle_time),
            _why(self.evidence, self.settle_time),
        )
        for r in due:
            del self.unknown[r.key]
            self.missed.pop(r.key, None)
        await self.fanout.run(due, self._send_one)

    def _still_waiting(self, looked_at: datetime) -> list[str]:
        """The unknown outcomes still worth waiting for in this try: not resent :data:`MAX_RESENDS`
        times yet, and absent for less than :data:`GIVE_UP_AFTER` (or ``settle_time``, if longer)."""
        give_up = timedelta(seconds=max(GIVE_UP_AFTER, self.settle_time or 0.0))
        return [
            r
            for r, sent_at in self.unknown.items()
            if self.attempts[r] <= MAX_RESENDS and looked_at - sent_at < give_up
        ]

    def _close_round(self) -> None:
        """Save the round's unknown outcomes and evidence for the next try: this try's sends are over."""
        self.ledger.set_round(self.unknown, open=False, evidence=self.evidence.as_dict())

    def _close_stopped_round(self) -> None:
        """Close the round of a try stopped part-way (cancelled by its timeout): each recipient whose send
        began and is not recorded is an unknown outcome as of now; one never sent is not, so the next try
        sends it at once instead of waiting out the no-evidence window. If the ledger cannot be written
        the round stays open, and the next try treats every unrecorded recipient as unknown (as after a
        crash)."""
        stopped_at = self.now()
        held = dict(self.unknown)
        held.update({key: stopped_at for key in self.attempts if key not in self.records and key not in held})
        try:
            self.ledger.set_round(held, open=False, evidence=self.evidence.as_dict())
        except Exception:
            log.warning("The stopped try's round could not be closed: the next try looks everyone up first")

    def _report(self, resume_at: datetime | None) -> SendReport:
        """The records in recipient order and the failures; with ``resume_at``, the unknown outcomes
        are left for the caller to settle, else each one still unknown is a failure."""
        keys = [r.key for r in self.batch.recipients if r.key in self.records]
        report = SendReport(
            [self.records[k] for k in keys], self.failures, self.reused, self.fanout.fatal, keys=keys
        )
        if resume_at is not None:
            report.unsettled, report.resume_at = dict(self.unknown), resume_at
            return report
        for recipient in self.unknown:
            self.failures.setdefault(recipient, self._still_unknown(recipient))
        return report

    def _still_unknown(self, recipient: str) -> str:
        """Why a send whose outcome is still unknown fails this try, for its failure text."""
        window = settle_window(self.evidence, self.settle_time)
        return (
            f"outcome unknown ({_attempts(self.attempts[recipient])}) and not in GET /messages "
            f"yet; not resent before it has been absent for the settle window "
            f"({window:g} s: {_why(self.evidence, self.settle_time)}) since it was "
            "sent, to avoid a duplicate (the next try looks it up again before sending)"
        )


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
