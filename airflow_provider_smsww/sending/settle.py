"""The settle rule of step 6 (:mod:`.order`): when a send whose outcome is unknown may be sent again.

The API has no idempotency key, so an unknown outcome is resent only once ``GET /messages`` has not
listed it for long enough. How long is measured, not assumed: the batch's own accepted messages (ids
and our request/answer times known) show how long the listing takes to list a message (its lag) and
the offset of the gateway's clock (their ``createdAt`` against our send times). On a retry the earlier
tries' accepted messages (ids in the ledger) are evidence too, dated on this try's clock. :class:`Evidence`
gathers both, with no I/O; :func:`settle_window` and :func:`resend_at` turn it into a time, so the bulk
send and a trigger apply the one rule. ``docs/operator.md`` tells the rule and its window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: Without evidence (no message of the batch seen listed yet), how long an unknown outcome waits.
NO_EVIDENCE_WAIT = 300.0
#: The wait is this many times the longest lag observed (the listing's lag varies from message to message).
LAG_FACTOR = 3.0
#: The shortest wait when the listing showed no lag: covers a lag spike the batch did not happen to see.
FLOOR = 15.0
#: The allowance around the clock offset measured from ``createdAt`` (a second-resolution timestamp).
CREATED_TOLERANCE = timedelta(seconds=2)


@dataclass
class Evidence:
    """What the batch's own messages showed about the gateway's listing and clock (our clock for times).

    Feed it each accepted message (:meth:`accepted`), on a retry the messages the earlier tries recorded
    (:meth:`recorded_before`), and each complete scan of the listing (:meth:`scanned`); an unknown
    outcome found listed after some absence is evidence too (:meth:`found_after`).
    """

    #: Messages of the batch seen listed: none means there is no evidence of the lag at all.
    listed: int = 0
    #: Seconds: the longest a message of the batch was seen absent from the listing after it was
    #: stored (a lower bound of the listing's lag); messages still awaited keep raising it.
    longest_absence: float = 0.0
    #: Bounds of the gateway's clock minus ours, from ``createdAt`` against request and answer times.
    offset_low: timedelta | None = None
    offset_high: timedelta | None = None
    #: Accepted message id -> a time on this try's clock by which it was stored (its answer, or for an
    #: earlier try's message the moment this try read it in the ledger), while not seen listed.
    awaited: dict[str, datetime] = field(default_factory=dict)

    def accepted(
        self, message_id: str, requested: datetime, answered: datetime, created_at: datetime | None
    ) -> None:
        """An accepted message: awaited in the listing; its ``createdAt`` (gateway clock), stamped
        between our request and its answer, bounds the gateway's clock offset."""
        self.awaited[message_id] = answered
        if created_at is None:
            return
        low, high = created_at - answered, created_at - requested
        self.offset_low = low if self.offset_low is None else max(self.offset_low, low)
        self.offset_high = high if self.offset_high is None else min(self.offset_high, high)

    def recorded_before(self, message_ids: Iterable[str], read_at: datetime) -> None:
        """Messages an earlier try recorded, awaited in the listing as if answered at ``read_at``: when
        this try read them in the ledger, on its own clock (the earlier try's times are on another
        worker's clock, which this one cannot trust). Each was stored before then, so an absence
        counted from ``read_at`` never overstates its real one; the unknown outcomes of a killed try
        are dated no earlier either (``docs/operator.md``, "A resumed try").

        :param message_ids: the ids the ledger holds for this batch.
        :param read_at: this try's clock, taken once the ledger was read.
        """
        for message_id in message_ids:
            self.awaited.setdefault(message_id, read_at)

    def scanned(self, started: datetime, listed_ids: Iterable[str], *, complete: bool) -> None:
        """A scan of the listing that began at ``started`` listed ``listed_ids``. Awaited messages it
        listed are counted; when it read the whole batch (``complete``), those it did not list were
        absent for at least ``started`` minus their answer time."""
        listed = set(listed_ids)
        for message_id in [i for i in self.awaited if i in listed]:
            del self.awaited[message_id]
            self.listed += 1
        if complete:
            for answered in self.awaited.values():
                self.longest_absence = max(self.longest_absence, (started - answered).total_seconds())

    def found_after(self, answered: datetime, last_missed: datetime | None) -> None:
        """An unknown outcome (answered at ``answered``) was found listed, after a complete scan that
        began at ``last_missed`` did not list it: that absence is a lag too."""
        self.listed += 1
        if last_missed is not None:
            self.longest_absence = max(self.longest_absence, (last_missed - answered).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        """What a later try (or a trigger) needs, JSON-safe: the awaited ids stay with this try."""
        seconds = [None if o is None else o.total_seconds() for o in (self.offset_low, self.offset_high)]
        return {"listed": self.listed, "longest_absence": self.longest_absence, "offset": seconds}

    @classmethod
    def from_dict(cls, value: Any) -> Evidence:
        """The evidence :meth:`as_dict` wrote; empty (no evidence) when ``value`` is not such a dict."""
        try:
            low, high = (None if o is None else timedelta(seconds=float(o)) for o in value["offset"])
            return cls(int(value["listed"]), float(value["longest_absence"]), low, high)
        except (TypeError, KeyError, ValueError):
            return cls()

    @property
    def clock_offset(self) -> timedelta | None:
        """The lowest gateway clock offset the evidence allows (for a reconciliation floor), or None.
        Bounds that contradict each other (a ``createdAt`` stamped after the answer, a clock that
        jumped) count for the lower one: an early floor never causes a resend."""
        if self.offset_low is None or self.offset_high is None:
            return None
        return min(self.offset_low, self.offset_high) - CREATED_TOLERANCE


def settle_window(evidence: Evidence, settle_time: float | None = None) -> float:
    """Seconds an unknown outcome must stay absent from the listing before it may be sent again.

    :param evidence: what the batch's messages showed (:class:`Evidence`).
    :param settle_time: the user's choice (None: from evidence). Given, it replaces :data:`FLOOR` and
        :data:`NO_EVIDENCE_WAIT`: a minimum, which the observed lag can only lengthen.
    :returns: :data:`NO_EVIDENCE_WAIT` (or ``settle_time``) while no message of the batch has been
        seen listed; else the larger of :data:`LAG_FACTOR` x the longest observed lag and the floor.
    """
    floor = FLOOR if settle_time is None else settle_time
    if evidence.listed == 0:
        return NO_EVIDENCE_WAIT if settle_time is None else settle_time
    return max(floor, LAG_FACTOR * evidence.longest_absence)


def resend_at(sent_at: datetime, evidence: Evidence, settle_time: float | None = None) -> datetime:
    """When a send of unknown outcome answered at ``sent_at`` may be sent again, if the listing has
    not listed it by then (:func:`settle_window`; the time moves later as the lag evidence grows).

    :param sent_at: when the unknown outcome's answer (or failure) came, on our clock.
    :param evidence: what the batch's messages showed.
    :param settle_time: the user's minimum, or None.
    """
    return sent_at + timedelta(seconds=settle_window(evidence, settle_time))
