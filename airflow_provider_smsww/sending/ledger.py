"""Steps 2 and 5 of a send (:mod:`.order`): the ledger of accepted message ids, which survives task retries so that a
retry never sends again to a recipient an earlier try had accepted."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_smsww.models import Message
    from airflow_provider_smsww.sending.batch import Batch

log = logging.getLogger(__name__)

LEDGER_PREFIX = "smsww"
#: Every Variable of a ledger on Airflow < 3.3 starts with this (:class:`VariableStore`).
VARIABLE_PREFIX = "smsww_ledger."
#: Most records written in one store value: 100 records are about 15 KB, well under the 64 KB that
#: Airflow's ``[state_store] max_value_storage_bytes`` warns about by default.
GROUP_SIZE = 100


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
    return replace(batch, recipients=tuple(r for r in batch.recipients if ledger.get(r.key) is None))


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

    The store is scoped to (dag, run, task, map index) and survives task retries. Each write is a
    round trip through the supervisor to the API server (about 7 ms in ``dag.test()``), so accepted
    ids are written in groups (group commit): the records that arrive while one group is being
    written go together in the next, under the keys ``smsww:accepted:0``, ``:1``, ... A slow store
    therefore gets fewer, larger writes instead of slowing the sends, and a retry reads the ledger in
    a few reads instead of one per recipient.

    Writes run in a worker thread (the event loop stays free while the supervisor answers), under one
    lock: the worker's socket comms are thread-safe, but the in-process comms of ``dag.test()`` are
    not (it unsets ``SUPERVISOR_COMMS`` while it handles a request, and a concurrent write then fails).
    A write that fails stops every later one: the keys must stay contiguous for a retry to read them
    all, and a try that cannot record what it sent must stop sending.
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
        self._write({recipient: record})

    def _write(self, group: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            if self._write_failed is not None:
                raise RuntimeError(
                    "the retry ledger stopped at an earlier failed write; this accepted id is not "
                    "recorded (the next try looks it up before sending)"
                ) from self._write_failed
            recorded = self._read_groups()
            try:
                self._store.set(f"{LEDGER_PREFIX}:accepted:{self._next_group}", group)
            except BaseException as exc:
                self._write_failed = exc
                raise
            self._next_group += 1
            recorded.update(group)

    async def arecord(self, recipient: str, record: dict[str, Any]) -> None:
        """Record in the next group, and return once that group is written."""
        loop = asyncio.get_running_loop()
        if not self._queued or len(self._queued[-1][0]) >= GROUP_SIZE:
            self._queued.append(({}, loop.create_future()))
        group, written = self._queued[-1]
        group[recipient] = record
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_groups())
        await asyncio.shield(written)  # a cancelled caller must not cancel its group's future

    async def _write_groups(self) -> None:
        while self._queued:
            group, written = self._queued.popleft()
            try:
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

    def set_round(self, unknown: dict[str, datetime], *, open: bool) -> None:
        with self._lock:
            self._store.set(f"{LEDGER_PREFIX}:round", _round_value(unknown, open))


class VariableStore:
    """``task_state_store``'s ``get`` and ``set`` on Airflow Variables, for Airflow < 3.3.

    Variables survive task retries and a killed worker, and every Airflow 3 worker reaches them through
    the Task SDK. The keys of one task instance share a prefix made from (dag, run, task, map index),
    hashed to fit the 250 characters of a Variable key; the description names the task in words. They are
    deleted when the task succeeds (:func:`clear_after_success`), as ``[state_store]
    clear_on_success`` would do on Airflow 3.3, so a successful task leaves nothing behind.

    :param dag_id: the task's DAG.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param map_index: the map index (-1 for a task that is not mapped).
    """

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        identity = "\0".join((dag_id, run_id, task_id, str(map_index)))
        self.prefix = f"{VARIABLE_PREFIX}{hashlib.sha256(identity.encode()).hexdigest()[:24]}."
        self.description = (
            f"SmsSendOperator retry ledger of {dag_id}.{task_id}"
            + ("" if map_index < 0 else f"[{map_index}]")
            + f" in run {run_id}; deleted when the task succeeds"
        )

    def get(self, key: str) -> Any:
        from airflow.sdk import Variable

        return Variable.get(self.prefix + key, default=None, deserialize_json=True)

    def set(self, key: str, value: Any) -> None:
        from airflow.sdk import Variable

        Variable.set(self.prefix + key, value, description=self.description, serialize_json=True)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(self.prefix + key)

    @classmethod
    def of_task(cls, context: Any) -> VariableStore:
        """The store of the task instance that ``context`` describes."""
        ti = context.get("ti")
        return cls(
            str(getattr(ti, "dag_id", "") or ""),
            str(context.get("run_id") or getattr(ti, "run_id", "") or ""),
            str(getattr(ti, "task_id", "") or ""),
            int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
        )


def ledger_for_task(context: Any) -> Ledger:
    """The task's ledger: on Airflow 3.3's ``task_state_store`` when the context has one, on Airflow
    Variables (:class:`VariableStore`) on an older Airflow; in memory outside a worker (a direct
    ``execute()`` call), where a retry reconciles against ``GET /messages`` since the DAG run started."""
    store = context.get("task_state_store")
    if store is not None:
        from airflow_provider_smsww.compat import conf

        if conf.getboolean("state_store", "clear_on_success", fallback=False):
            log.warning(
                "[state_store] clear_on_success is True: Airflow deletes this task's retry ledger when "
                "it succeeds, so clearing the task after a success sends every message again."
            )
        return TaskStateLedger(store)
    if _in_a_task_runner():
        return TaskStateLedger(VariableStore.of_task(context))
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", 1) or 1
    log.warning(
        "Not in an Airflow task runner: accepted ids are not persisted across retries (a retry "
        "reconciles against GET /messages)."
    )
    if try_number > 1:
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or datetime.now(UTC) - timedelta(hours=1)
        log.warning("Try %d: checking GET /messages since %s before sending.", try_number, started)
        return MemoryLedger(started=started)
    return MemoryLedger()


def clear_after_success(context: Any) -> None:
    """``on_success_callback`` of :class:`SmsSendOperator`: delete the task's Variables ledger, if it
    has one (Airflow < 3.3). It runs after the task runner has reported the success, so no retry can
    need the ledger any more; a deletion that fails leaves Variables that only stop a cleared task from
    resending, and is logged. Never raises."""
    if context.get("task_state_store") is not None or not _in_a_task_runner():
        return
    store = VariableStore.of_task(context)
    try:
        groups = 0
        while isinstance(store.get(f"{LEDGER_PREFIX}:accepted:{groups}"), dict):
            groups += 1
        keys = [f"{LEDGER_PREFIX}:accepted:{n}" for n in range(groups)]
        for key in (*keys, *(f"{LEDGER_PREFIX}:{name}" for name in ("started_at", "round"))):
            store.delete(key)
    except Exception as exc:
        log.warning("Could not delete the retry ledger Variables %s*: %s", store.prefix, exc)


def _in_a_task_runner() -> bool:
    """True in a task runner (a worker, ``dag.test()``, ``airflow tasks test``): Variables reach the
    metadata database there. False when ``execute()`` is called directly, e.g. in a unit test."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None
