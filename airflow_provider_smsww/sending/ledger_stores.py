"""Where the retry ledger (:mod:`.ledger`) is kept: Airflow 3.3's ``task_state_store``, or Airflow
Variables on an older Airflow (:class:`VariableStore`), deleted once the task has succeeded
(:func:`clear_after_success`); in memory outside a task runner."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_smsww.sending.ledger import LEDGER_PREFIX, Ledger, MemoryLedger, TaskStateLedger

log = logging.getLogger(__name__)

#: Every Variable of a ledger on Airflow < 3.3 starts with this (:class:`VariableStore`).
VARIABLE_PREFIX = "smsww_ledger."


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
