"""Where the storm guard keeps its records: one Variable a record where the Task SDK lists Variables
by prefix (:class:`VariableStore`, Airflow 3.3), else :class:`RecordsVariableStore`.

The records on Airflow < 3.3, whose Task SDK cannot list Variables (``Variable`` has
only ``get``, ``set`` and ``delete`` there; ``Variable.keys(prefix=...)`` arrived in 3.3).

The records of one dedupe key live in :data:`SHARDS` Variables, ``<prefix>records.<n>``, each a JSON
object ``{record key: note}`` changed by read-modify-write; a record's shard comes from its random id.
Variables have no compare-and-set, so two callbacks writing one shard at the same moment can lose a
write: the one whose read came first and write last drops what the other wrote in between. Shards
make that rarer (racers collide only within one), and
:class:`~airflow_provider_smsww.notifications.storm_guard.StormGuard` repairs it for the records of the election: after
its settle wait it checks that its own record is there and, if not, writes it again (as a new alert)
and waits again, a bounded number of times, then lets the alert through. This store adds one more
repair: each of its writes re-writes the records it has added and not deleted, so a sent record
dropped by a racer is written back when the sender deletes what it reported. docs/notifier.md states
the window that remains.
"""

from __future__ import annotations

import json
import logging
import zlib
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: The Variables of a dedupe key's records are its prefix followed by this and a shard number.
RECORDS = "records"
#: How many Variables share the records of one key: racing writes collide only within one shard.
SHARDS = 8
DESCRIPTION = "SmsWwNotifier storm guard (cooldown): the alerts of one dedupe key; safe to delete"
#: A note is for the humans reading Admin > Variables; a storm of long ones should not make the value big.
NOTE_CHARS = 160


def records_variable(key: str, shards: int = SHARDS) -> str:
    """The Variable holding record ``key`` (``<prefix><kind>.<time>.<id>``): ``<prefix>records.<n>``,
    ``n`` from the id, so that the alert, sent and missed records of one claim share a Variable."""
    prefix, _kind, _at, token = key.rsplit(".", 3)
    return f"{prefix}.{RECORDS}.{zlib.crc32(token.encode()) % shards}"


class RecordsVariableStore:
    """The :class:`~airflow_provider_smsww.notifications.storm_guard.AlertStore` of Airflow < 3.3: the records of a key
    in a few Variables, through the Task SDK's ``Variable.get``, ``set`` and ``delete`` only.

    One store per claim (the guard makes one for each alert): it remembers what it has added and not
    deleted, and writes those again with each of its writes.

    :param variables: what has ``get(key, default=...)``, ``set(key, value, description=...)`` and
        ``delete(key)``; Airflow's ``Variable`` unless a test gives another.
    """

    #: Racing writes can drop each other's records: the guard checks its sent and missed records too.
    loses_writes = True

    def __init__(self, variables: Any = None, shards: int = SHARDS) -> None:
        self._variables = variables
        self.shards = shards
        self._mine: dict[str, str] = {}

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for name in (f"{prefix}{RECORDS}.{n}" for n in range(self.shards)):
            records = self._read(name)
            if records is None:  # made once: Airflow 3.0 logs each read of a missing Variable as an error
                self._write(name, None)
            found += (k for k in records or () if k.startswith(prefix))
        return sorted(found)

    def add(self, key: str, note: str) -> None:
        self._mine[key] = note[:NOTE_CHARS]
        name = self._variable(key)
        self._write(name, self._read(name))

    def delete(self, key: str) -> None:
        self._mine.pop(key, None)
        name = self._variable(key)
        self._write(name, self._read(name), drop=key)

    def _variable(self, key: str) -> str:
        return records_variable(key, self.shards)

    def _write(self, name: str, read: dict[str, str] | None, drop: str | None = None) -> None:
        """Write back what was just read (None: the Variable is missing), ``drop`` removed and this
        store's own records (re)added. Nothing is written when nothing changes: each write is a chance
        to drop a racer's."""
        records = dict(read or {})
        changed = read is None or (drop is not None and records.pop(drop, None) is not None)
        for key, note in self._mine.items():
            if self._variable(key) == name and records.get(key) != note:
                records[key] = note
                changed = True
        if changed:
            self._backend().set(name, json.dumps(records, sort_keys=True), description=DESCRIPTION)

    def _read(self, name: str) -> dict[str, str] | None:
        backend = self._backend()
        if self._variables is None:
            _uncache(name)
        raw = backend.get(name, default=None)
        if raw is None:
            return None
        try:
            records = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            records = None
        if not isinstance(records, dict):
            log.warning("SMS alert storm guard: Variable %s is not a JSON object; starting it afresh", name)
            return None
        return {str(k): str(v) for k, v in records.items()}

    def _backend(self) -> Any:
        if self._variables is not None:
            return self._variables
        from airflow.sdk import Variable

        return Variable


def _uncache(name: str) -> None:
    """Drop this process's cached copy of Variable ``name``: with ``[secrets] use_cache`` (Airflow 3.1,
    3.2) a read could return a value minutes old, and writing it back would drop every record since. A
    process's own writes clear its copy; others' do not. Airflow 3.0 keeps no such cache."""
    try:
        from airflow.sdk.execution_time.cache import SecretCache
    except ImportError:
        return
    SecretCache.invalidate_variable(name)


class AlertStore(Protocol):
    """Where the guard keeps its records: keys under a prefix, each with a note for humans."""

    def keys(self, prefix: str) -> list[str]: ...

    def add(self, key: str, note: str) -> None: ...

    def delete(self, key: str) -> None: ...


class VariableStore:
    """Airflow Variables through the Task SDK (task runner, dag processor and triggerer alike)."""

    def keys(self, prefix: str) -> list[str]:
        from airflow.sdk import Variable

        return list(Variable.keys(prefix=prefix))

    def add(self, key: str, note: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, note, description="SmsWwNotifier storm guard (cooldown); safe to delete")

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)


def default_store() -> AlertStore:
    """A record per Variable where the Task SDK lists Variables by prefix (Airflow 3.3), else all the
    records of a key in one Variable (:class:`RecordsVariableStore`)."""
    from airflow.sdk import Variable

    if hasattr(Variable, "keys"):
        return VariableStore()
    return RecordsVariableStore()
