"""Step 4 of sending: the real sends, a bounded number in flight, each accepted id recorded in the
ledger before that slot sends again; unknown outcomes are reconciled, never resent blindly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_smsww.concurrency import bounded
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwError,
    SmsWwInsufficientCreditError,
    SmsWwReconcileError,
    SmsWwResponseError,
    SmsWwSendUncertainError,
)
from airflow_provider_smsww.sending.ledger import record_of
from airflow_provider_smsww.sending.reconcile import Found, reconcile

if TYPE_CHECKING:
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.models import Message
    from airflow_provider_smsww.sending.batch import Batch
    from airflow_provider_smsww.sending.ledger import Ledger
    from airflow_provider_smsww.validation import Recipient

log = logging.getLogger(__name__)

#: Errors after which no further send of the batch can succeed: stop instead of hammering the API.
FATAL_ERRORS = (SmsWwAuthError, SmsWwInsufficientCreditError)
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
    hook: SmsWwHook,
    batch: Batch,
    ledger: Ledger,
    *,
    now: Callable[[], datetime],
    concurrency: int = 20,
    scan_limit: int = 10_000,
) -> SendReport:
    """Send the batch for real, exactly once per recipient across task retries (see module docstring).

    A send whose outcome is unknown is looked up in ``GET /messages`` once the round is over, and not
    resent in this try when it is not there: a gateway that timed out is often just slow, and may list
    the message a moment after the look-up. It is reported failed instead, and the task's next try
    (after its ``retry_delay``) looks again before sending.

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
        # The recipient as the batch wrote it (E.164), whatever form the gateway lists it in.
        rec = {**record_of(message), "recipient": recipient}
        await ledger.arecord(recipient, rec)
        return rec

    records: dict[str, dict[str, Any]] = {}
    failures_before: dict[str, str] = {}
    if previous_start is not None:  # a first try has an empty ledger: no need to read it per recipient
        for r in batch.recipients:
            if (known := ledger.get(r.e164)) is not None:
                records[r.e164] = known
    reused = len(records)
    pending = [r for r in batch.recipients if r.e164 not in records]
    if previous_start is not None and pending:
        # A retry: the earlier try may have been accepted for recipients it did not get to record.
        found = await reconcile(hook, batch, (r.e164 for r in pending), previous_start, scan_limit=scan_limit)
        for recipient, message in found.items():
            records[recipient] = await record(recipient, message)
        reused += len(found)
        failures_before = {r: UNDECIDED for r in found.undecided}
        pending = [r for r in pending if r.e164 not in records and r.e164 not in found.undecided]
    if reused:
        log.info("%d recipient(s) already accepted by an earlier try: not sent again", reused)

    failures: dict[str, str] = failures_before
    progress = _Progress(len(pending))
    fatal: list[SmsWwError] = []

    async def send(recipient: Recipient) -> Recipient | None:
        """Send one; return the recipient when the outcome is uncertain."""
        if fatal:
            failures[recipient.e164] = f"not sent: {fatal[0].message}"
            return None
        try:
            message = await hook.asend_request(batch.request(recipient, dry_run=False), batch.region)
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

    uncertain = [r for r in await bounded(pending, send, concurrency) if r is not None]
    if uncertain:
        try:
            found = await reconcile(hook, batch, (r.e164 for r in uncertain), started, scan_limit=scan_limit)
        except SmsWwReconcileError as exc:
            found = Found()
            failures.update({r.e164: f"outcome unknown; {exc.message}" for r in uncertain})
        for recipient, message in found.items():
            records[recipient] = await record(recipient, message)
            progress.tick()
        failures.update({r: UNDECIDED for r in found.undecided})
        for r in uncertain:
            if r.e164 not in records:
                failures.setdefault(
                    r.e164,
                    "outcome unknown after 1 attempt(s) and not in GET /messages yet; not resent in this "
                    "try to avoid a duplicate (the next try looks it up again before sending)",
                )
    ordered = [records[r.e164] for r in batch.recipients if r.e164 in records]
    return SendReport(records=ordered, failures=failures, reused=reused)
