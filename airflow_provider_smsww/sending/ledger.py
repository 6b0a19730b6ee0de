"""Step 2 and 4 of sending: the ledger of accepted message ids, which survives task retries so that a
retry never sends again to a recipient an earlier try had accepted."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_smsww.models import Message
    from airflow_provider_smsww.sending.batch import Batch

log = logging.getLogger(__name__)

LEDGER_PREFIX = "smsww"


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

    def set_round(self, unknown: dict[str, datetime], *, open: bool) -> None:
        """Save the unknown outcomes; ``open`` while a round of real sends is under way."""
        ...

    def mark_dry_run_ignored(self, why: str) -> None: ...


def _round_value(unknown: dict[str, datetime], open: bool) -> dict[str, Any]:
    return {"open": open, "unknown": {r: when.isoformat() for r, when in unknown.items()}}


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

    def get(self, recipient: str) -> dict[str, Any] | None:
        return self.records.get(recipient)

    def record(self, recipient: str, record: dict[str, Any]) -> None:
        self.records[recipient] = record

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

    def set_round(self, unknown: dict[str, datetime], *, open: bool) -> None:
        self._round = _round_value(unknown, open)


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


class TaskStateLedger:
    """A :class:`Ledger` on Airflow 3.3's ``task_state_store``.

    The store is scoped to (dag, run, task, map index) and survives task retries. One small key per
    recipient, so recording an id costs one small write however long the list is.

    Writes come from worker threads (the bulk send keeps its event loop free while the supervisor
    answers), so one lock serialises them: the worker's socket comms are thread-safe, but the in-process
    comms of ``dag.test()`` are not (it unsets ``SUPERVISOR_COMMS`` while it handles a request, and a
    concurrent write then fails).
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        # What this try has read or written: a retry reads each recipient once (for the gate), not
        # once more for the send; nothing else writes these keys while the task runs.
        self._seen: dict[str, dict[str, Any] | None] = {}

    def get(self, recipient: str) -> dict[str, Any] | None:
        with self._lock:
            if recipient not in self._seen:
                value = self._store.get(f"{LEDGER_PREFIX}:sent:{recipient}")
                self._seen[recipient] = value if isinstance(value, dict) else None
            return self._seen[recipient]

    def record(self, recipient: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:sent:{recipient}", record)
            self._seen[recipient] = record

    async def arecord(self, recipient: str, record: dict[str, Any]) -> None:
        # The store talks to the supervisor synchronously: keep the event loop free meanwhile.
        await asyncio.to_thread(self.record, recipient, record)

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

    def set_round(self, unknown: dict[str, datetime], *, open: bool) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:round", _round_value(unknown, open))


def ledger_for_task(context: Any) -> Ledger:
    """The task's ledger: on Airflow 3.3's ``task_state_store`` when the context has one; else in
    memory, and a retry then reconciles against ``GET /messages`` since the DAG run started."""
    store = context.get("task_state_store")
    if store is not None:
        return TaskStateLedger(store)
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", 1) or 1
    log.warning(
        "No task_state_store in the context (Airflow < 3.3, or a run outside a worker): accepted ids "
        "are not persisted across retries."
    )
    if try_number > 1:
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or datetime.now(UTC) - timedelta(hours=1)
        log.warning("Try %d: checking GET /messages since %s before sending.", try_number, started)
        return MemoryLedger(started=started)
    return MemoryLedger()
