"""Steps 2 and 5 of a send (:mod:`.order`): the ledger of accepted message ids, which survives task retries so
that a retry never sends again to a recipient an earlier try had accepted."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_smsww.models import Message
    from airflow_provider_smsww.sending.batch import Batch

log = logging.getLogger(__name__)

LEDGER_PREFIX = "smsww"
#: Most records written in one store value: 100 records are about 15 KB, well under the 64 KB that
#: Airflow's ``[state_store] max_value_storage_bytes`` warns about by default.
GROUP_SIZE = 100
#: A store write faster than this (seconds) runs on the event loop itself: a hop to a worker thread
#: costs more CPU than such a write, and the loop is not held up for longer than the hop would take.
INLINE_WRITE_MAX = 0.0005


class Ledger(Protocol):
    """Where accepted message ids are recorded so that a retried task does not resend them."""

    def get(self, recipient: str) -> dict[str, Any] | None: ...

    def record(self, recipient: str, record: dict[str, Any]) -> None: ...

    async def arecord(self, recipient: str, record: dict[str, Any]) -> None:
        """:meth:`record` from the event loop of a bulk send."""
        ...

    def started_at(self) -> datetime | None:
        """When an earlier try of this batch started sending; None on a first try."""
        ...

    def mark_started(self, when: datetime) -> None: ...

    def dry_run_ignored(self) -> str | None:
        """Why an earlier try stopped for good: the gateway answered a dry run as a real send."""
        ...

    def unknown_outcomes(self) -> dict[str, datetime] | None:
        """The sends whose outcome the last try left unknown, with when each was made; None when that
        try stopped in the middle of a round (a crash), so any unrecorded recipient may have been sent."""
        ...

    def set_round(
        self, unknown: dict[str, datetime], *, open: bool, evidence: dict[str, Any] | None = None
    ) -> None:
        """Save the unknown outcomes; ``open`` while a round of real sends is under way; ``evidence``
        of the listing's lag and the gateway's clock (:class:`.settle.Evidence`) for the next try."""
        ...

    def settle_evidence(self) -> dict[str, Any] | None:
        """The ``evidence`` the last :meth:`set_round` saved, if any."""
        ...

    def mark_dry_run_ignored(self, why: str) -> None: ...

    def expect(self, estimates: Mapping[str, Decimal | None]) -> None:
        """The estimated price (EUR) of each send about to be made, kept in its record once accepted
        (key ``estimate``), so that a retry can count a message the gateway has not priced yet."""
        ...


#: What a ledger record holds beyond the operator's XCom record (:func:`public`): the money of the
#: budget over every try (``docs/money.md``).
MONEY_KEYS = ("price", "estimate")


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A ledger record as the operator returns it: without :data:`MONEY_KEYS`."""
    return {k: v for k, v in record.items() if k not in MONEY_KEYS}


def _with_estimate(
    record: dict[str, Any], estimates: Mapping[str, Decimal | None], who: str
) -> dict[str, Any]:
    """``record`` with the estimate it was sent at, when one was expected (:meth:`Ledger.expect`)."""
    if who not in estimates or "estimate" in record:
        return record
    estimate = estimates[who]
    return {**record, "estimate": None if estimate is None else float(estimate)}


def _round_value(unknown: dict[str, datetime], open: bool, evidence: dict[str, Any] | None) -> dict[str, Any]:
    value = {"open": open, "unknown": {r: when.isoformat() for r, when in unknown.items()}}
    return value if evidence is None else {**value, "evidence": evidence}


def _round_of(value: Any) -> dict[str, datetime] | None:
    if not isinstance(value, dict) or value.get("open") is not False:
        return None
    unknown = value.get("unknown")
    return {r: datetime.fromisoformat(w) for r, w in unknown.items()} if isinstance(unknown, dict) else None


class MemoryLedger:
    """A ledger that lives as long as the object: for tests and for runs without a task state store."""

    def __init__(self, started: datetime | None = None) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._started = started
        self._dry_run_ignored: str | None = None
        self._round: dict[str, Any] | None = None
        self._estimates: Mapping[str, Decimal | None] = {}

    def get(self, recipient: str) -> dict[str, Any] | None:
        return self.records.get(recipient)

    def record(self, recipient: str, record: dict[str, Any]) -> None:
        self.records[recipient] = _with_estimate(record, self._estimates, recipient)

    def expect(self, estimates: Mapping[str, Decimal | None]) -> None:
        self._estimates = estimates

    async def arecord(self, recipient: str, record: dict[str, Any]) -> None:
        self.record(recipient, record)

    def started_at(self) -> datetime | None:
        return self._started

    def mark_started(self, when: datetime) -> None:
        self._started = self._started or when

    def dry_run_ignored(self) -> str | None:
        return self._dry_run_ignored

    def mark_dry_run_ignored(self, why: str) -> None:
        self._dry_run_ignored = why

    def unknown_outcomes(self) -> dict[str, datetime] | None:
        return _round_of(self._round)

    def set_round(
        self, unknown: dict[str, datetime], *, open: bool, evidence: dict[str, Any] | None = None
    ) -> None:
        self._round = _round_value(unknown, open, evidence)

    def settle_evidence(self) -> dict[str, Any] | None:
        return (self._round or {}).get("evidence")


def unknown_among(ledger: Ledger, keys: Iterable[str], now: Callable[[], datetime]) -> dict[str, datetime]:
    """The earlier round's unknown outcomes among ``keys``, each with when it was sent. A round left
    open (a try that stopped mid-round: a crash) may have sent any of them, as late as now.

    :param ledger: the task's ledger.
    :param keys: the recipients' keys to look among (those not recorded as accepted).
    :param now: the clock.
    """
    left = ledger.unknown_outcomes()
    if left is None:
        return dict.fromkeys(keys, now())
    return {key: left[key] for key in keys if key in left}


def not_yet_recorded(batch: Batch, ledger: Ledger) -> Batch:
    """The batch less the recipients an earlier try recorded as accepted (the whole batch on a first
    try, whose ledger is empty by construction)."""
    if ledger.started_at() is None:
        return batch
    return replace(batch, recipients=tuple(r for r in batch.recipients if ledger.get(r.key) is None))


def record_of(message: Message) -> dict[str, Any]:
    """What the ledger records per recipient: JSON-safe, no text, no secrets. The operator returns it
    (XCom) without the money (:func:`public`): ``price`` is the gateway's price (EUR) when its answer
    has one, else None (a worldwide message is priced only once sent)."""
    price = message.charged_price
    return {
        "recipient": message.recipient,
        "id": message.id,
        "state": message.state_name,
        "messageCount": message.message_count,
        "encoding": message.encoding,
        "price": None if price is None else float(price),
    }


class TaskStateLedger:
    """A :class:`Ledger` on Airflow 3.3's ``task_state_store``.

    The store is scoped to (dag, run, task, map index) and survives task retries. Each write is a
    round trip through the supervisor to the API server (about 7 ms in ``dag.test()``), so accepted
    ids are written in groups (group commit): the records that arrive while one group is being
    written go together in the next, under the keys ``smsww:accepted:0``, ``:1``, ... A slow store
    therefore gets fewer, larger writes instead of slowing the sends, and a retry reads the ledger in
    a few reads instead of one per recipient.

    Writes run in a worker thread (the event loop stays free while the supervisor answers), unless the
    last one took under :data:`INLINE_WRITE_MAX` (a fast store: the thread hop would cost more than
    the write; a slow write sends the next ones back to the thread), under one lock: the worker's socket comms
    are thread-safe, but the in-process comms of ``dag.test()`` are not (it unsets ``SUPERVISOR_COMMS`` while
    it handles a request, and a concurrent write then fails). A write that fails stops every later one: the
    keys must stay contiguous for a retry to read them all, and a try that cannot record what it sent must
    stop sending.
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        # The records of every group written so far, read once per try (nothing else writes them
        # while the task runs), and the number of the next group.
        self._recorded: dict[str, dict[str, Any]] | None = None
        self._next_group = 0
        self._write_failed: BaseException | None = None
        # Groups waiting to be written, each with the future that resolves once it is, and the task
        # that writes them one after another.
        self._queued: deque[tuple[dict[str, dict[str, Any]], asyncio.Future[None]]] = deque()
        self._writer: asyncio.Task[None] | None = None
        # How long the last group's write took, which decides where the next one runs.
        self._write_seconds = float("inf")
        self._estimates: Mapping[str, Decimal | None] = {}

    def expect(self, estimates: Mapping[str, Decimal | None]) -> None:
        self._estimates = estimates

    def _read_groups(self) -> dict[str, dict[str, Any]]:
        """Every recorded group, read once; call with the lock held."""
        if self._recorded is None:
            self._recorded = {}
            while isinstance(group := self._store.get(f"{LEDGER_PREFIX}:accepted:{self._next_group}"), dict):
                self._recorded.update(group)
                self._next_group += 1
        return self._recorded

    def get(self, recipient: str) -> dict[str, Any] | None:
        with self._lock:
            return self._read_groups().get(recipient)

    def record(self, recipient: str, record: dict[str, Any]) -> None:
        self._write({recipient: _with_estimate(record, self._estimates, recipient)})

    def _write(self, group: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            if self._write_failed is not None:
                raise RuntimeError(
                    "the retry ledger stopped at an earlier failed write; this accepted id is not "
                    "recorded (the next try looks it up before sending)"
                ) from self._write_failed
            recorded = self._read_groups()
            start = time.perf_counter()
            try:
                self._store.set(f"{LEDGER_PREFIX}:accepted:{self._next_group}", group)
            except BaseException as exc:
                self._write_failed = exc
                raise
            self._write_seconds = time.perf_counter() - start
            self._next_group += 1
            recorded.update(group)

    async def arecord(self, recipient: str, record: dict[str, Any]) -> None:
        """Record in the next group, and return once that group is written."""
        loop = asyncio.get_running_loop()
        if not self._queued or len(self._queued[-1][0]) >= GROUP_SIZE:
            self._queued.append(({}, loop.create_future()))
        group, written = self._queued[-1]
        group[recipient] = _with_estimate(record, self._estimates, recipient)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_groups())
        await asyncio.shield(written)  # a cancelled caller must not cancel its group's future

    async def _write_groups(self) -> None:
        while self._queued:
            group, written = self._queued.popleft()
            try:
                if self._write_seconds < INLINE_WRITE_MAX:
                    self._write(group)
                else:
                    await asyncio.to_thread(self._write, group)
            except Exception as exc:  # this group's callers fail, and so will the later ones
                written.set_exception(exc)
                written.exception()  # retrieved: callers cancelled meanwhile must not have it logged
            except BaseException:  # cancelled: the loop is closing, and its callers with it
                written.cancel()
                raise
            else:
                written.set_result(None)

    def started_at(self) -> datetime | None:
        with self._lock:
            value = self._store.get(f"{LEDGER_PREFIX}:started_at")
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    def mark_started(self, when: datetime) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:started_at", when.isoformat())

    def dry_run_ignored(self) -> str | None:
        with self._lock:
            value = self._store.get(f"{LEDGER_PREFIX}:dry_run_ignored")
        return value if isinstance(value, str) and value else None

    def mark_dry_run_ignored(self, why: str) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:dry_run_ignored", why)

    def unknown_outcomes(self) -> dict[str, datetime] | None:
        with self._lock:
            return _round_of(self._store.get(f"{LEDGER_PREFIX}:round"))

    def set_round(
        self, unknown: dict[str, datetime], *, open: bool, evidence: dict[str, Any] | None = None
    ) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:round", _round_value(unknown, open, evidence))

    def settle_evidence(self) -> dict[str, Any] | None:
        with self._lock:
            value = self._store.get(f"{LEDGER_PREFIX}:round")
        return value.get("evidence") if isinstance(value, dict) else None
