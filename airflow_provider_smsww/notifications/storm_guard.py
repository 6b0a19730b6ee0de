"""The storm guard behind ``SmsWwNotifier(cooldown=..., dedupe_key=...)``: one SMS per incident.

When the warehouse is down, twenty tasks fail together and the on-call phone would get twenty paid SMS.
With a cooldown, the first alert of a key (by default the DAG id) is sent; later alerts of the same key
within the cooldown are held back and counted, and the first alert after the cooldown says how many
were held and since when ("+7 more failures since 14:02 UTC").

The state is kept in Airflow Variables, the one store that task callbacks (task runner), DAG callbacks
(dag processor) and deadline alerts (triggerer) can all read and write through the Task SDK, and that
spans every task and run of a DAG (``task_state_store`` is per task instance, ``asset_state_store`` per
asset). Each alert writes a Variable of its own (``smsww_alert.<key>.alert.<time>.<id>``) and reads the
others with ``Variable.keys(prefix=...)`` (Airflow 3.3): no read-modify-write, so no count is lost.
Variables have no compare-and-set, so racing alerts elect a sender: each writes its record, waits
:data:`SETTLE_SECONDS`, lists the records, and the earliest record outside the cooldown sends. An
extra SMS needs a callback that stalls longer than the settle time between taking its time and
writing its record; docs/notifier.md explains the bound. When the store cannot be reached, the alert
is sent (fail open: the guard never loses an alert) and a warning says why.

Airflow 3.0-3.2 cannot list Variables (``Variable`` has only ``get``, ``set`` and ``delete`` there;
``Variable.keys(prefix=...)`` arrived in 3.3): there the records of a key live in :data:`SHARDS`
Variables, ``<prefix>records.<n>``, each a JSON object ``{record key: note}`` changed by read-modify-write
(:class:`RecordsVariableStore`); a record's shard comes from its random id. Two callbacks writing one
shard at the same moment can lose a write: the one whose read came first and write last drops what the
other wrote in between. Shards make that rarer (racers collide only within one). So after the settle
wait an alert checks that its own record is there, and writes it again (same id, later time) and waits
again when it is not, up to :data:`CHECKS` times; the sender checks its sent record (or, after a failed
send, that it is gone) the same way; and a record that a lost delete brings back is not counted again
(older than the sent record that reported it, or sharing an alert's id). The store adds one more repair:
each of its writes re-writes the records it has added and not deleted, so a sent record dropped by a
racer is written back when the sender deletes what it reported. docs/notifier.md states the window that
remains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

#: The default ``dedupe_key``: one incident per DAG.
DEFAULT_DEDUPE_KEY = "{{ dag.dag_id }}"
#: Every Variable of the guard starts with this.
VARIABLE_PREFIX = "smsww_alert."
#: How long an alert waits between writing its record and reading the others' (the election).
SETTLE_SECONDS = 1.0
#: A record older than this that has not become a sent record lost its callback (killed, or its send
#: failed): it no longer competes, it is counted as held back.
DECIDE_WINDOW = timedelta(seconds=30)
#: How many times an alert looks for its own record after a settle wait before it gives up on the guard.
CHECKS = 4

#: The Variables of a dedupe key's records are its prefix followed by this and a shard number.
RECORDS = "records"
#: How many Variables share the records of one key: racing writes collide only within one shard.
SHARDS = 8
#: The description of those Variables, for the humans reading Admin > Variables.
RECORDS_DESCRIPTION = "SmsWwNotifier storm guard (cooldown): the alerts of one dedupe key; safe to delete"
#: A note is for the humans reading Admin > Variables; a storm of long ones should not make the value big.
NOTE_CHARS = 160

_STAMP = "%Y%m%dT%H%M%S%fZ"
_SENT_NOTE = "the last SMS alert sent for this key"
_MISSED_NOTE = "an SMS alert that could not be sent (counted in the next one)"


def now() -> datetime:
    """The guard's clock (UTC); tests replace it to step past a cooldown without waiting."""
    return datetime.now(UTC)


def check_cooldown(cooldown: object) -> timedelta | None:
    """``cooldown`` as given, or a ValueError naming the parameter (raised when the DAG is parsed)."""
    if cooldown is None:
        return None
    if not isinstance(cooldown, timedelta):
        raise ValueError(
            f"cooldown must be a datetime.timedelta (e.g. timedelta(minutes=15)) or None, "
            f"not {type(cooldown).__name__} {cooldown!r}"
        )
    if cooldown <= timedelta(0):
        raise ValueError(f"cooldown must be positive (e.g. timedelta(minutes=15)), not {cooldown}")
    return cooldown


def check_dedupe_key(dedupe_key: object) -> str:
    """``dedupe_key`` as given, or a ValueError naming the parameter (raised when the DAG is parsed)."""
    if not isinstance(dedupe_key, str):
        raise ValueError(
            f"dedupe_key must be a string template (e.g. {DEFAULT_DEDUPE_KEY!r}), "
            f"not {type(dedupe_key).__name__} {dedupe_key!r}"
        )
    if not dedupe_key.strip():
        raise ValueError(
            f"dedupe_key must not be empty; leave it out to group alerts by DAG ({DEFAULT_DEDUPE_KEY!r})"
        )
    return dedupe_key


class _Record(NamedTuple):
    at: datetime
    token: str
    kind: str  # "alert" (competes), "missed" (a send that failed: counted only), "sent"
    key: str


@dataclass(frozen=True)
class Verdict:
    """What the guard decided for one alert.

    :param send: send this alert (True) or hold it back (False).
    :param held: when sending, how many alerts were held back before it; when holding, how many are
        held back now, this one included.
    :param since: when the first of those was held back.
    :param until: when holding, the end of the cooldown (None when another alert is being sent).
    """

    send: bool
    held: int = 0
    since: datetime | None = None
    until: datetime | None = None
    own: str | None = None
    sent_key: str | None = None
    clean_up: tuple[str, ...] = field(default=())

    def summary(self, what: str = "failures") -> str:
        """``"+7 more failures since 14:02 UTC"`` (empty when nothing was held back)."""
        if not self.send or not self.held or self.since is None:
            return ""
        return f"+{self.held} more {what} since {_clock_time(self.since)}"


def _clock_time(at: datetime) -> str:
    """14:02 UTC; with the date when it is not today's (a long cooldown)."""
    at = at.astimezone(UTC)
    if at.date() == now().date():
        return at.strftime("%H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M UTC")


def variable_prefix(dedupe_key: str) -> str:
    """The guard's Variable prefix for one rendered key: readable, and unique through the hash."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", dedupe_key)[:60]
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:10]
    return f"{VARIABLE_PREFIX}{slug}-{digest}."


class StormGuard:
    """Decides, for one rendered ``dedupe_key``, whether an alert is sent or held back.

    :param dedupe_key: the rendered key (alerts with the same key share one cooldown).
    :param cooldown: how long after a sent alert further alerts of the key are held back.
    :param store: where the records live (Airflow Variables unless a test gives another).
    :param clock: the current time (tests move it).
    :param settle: seconds to wait before the election (default :data:`SETTLE_SECONDS`).
    """

    def __init__(
        self,
        dedupe_key: str,
        cooldown: timedelta,
        *,
        store: AlertStore | None = None,
        clock: Callable[[], datetime] | None = None,
        settle: float | None = None,
    ) -> None:
        self.dedupe_key = dedupe_key
        self.cooldown = cooldown
        self.store: AlertStore = store if store is not None else default_store()
        self.clock = clock or now
        self.settle = SETTLE_SECONDS if settle is None else settle
        self.prefix = variable_prefix(dedupe_key)

    def claim(self, note: str) -> Verdict:
        """Record this alert and decide. Never raises: a store that fails lets the alert through."""
        me = self._new_record()
        try:
            self.store.add(me.key, note)
        except Exception as exc:
            log.warning("SMS alert storm guard unavailable (%s): sending without the cooldown", _why(exc))
            return Verdict(send=True)
        try:
            for check in range(CHECKS):
                if self.settle:  # after a lost write, a random extra wait parts the racers
                    time.sleep(self.settle * random.uniform(1, 2**check))
                listed = self.store.keys(self.prefix)
                if me.key in listed:
                    return self._decide(me, listed)
                self.store.delete(me.key)  # a racing write dropped it: again, later, with the same id
                me = self._new_record(me.token)
                self.store.add(me.key, note)
            raise LookupError(f"its record was dropped by racing writes {CHECKS} times")
        except Exception as exc:
            log.warning("SMS alert storm guard unavailable (%s): sending without the cooldown", _why(exc))
            self._forget([me.key])
            return Verdict(send=True)

    def _new_record(self, token: str | None = None) -> _Record:
        at, token = self.clock(), token or secrets.token_hex(4)
        return _Record(at, token, "alert", f"{self.prefix}alert.{at.strftime(_STAMP)}.{token}")

    def _decide(self, me: _Record, listed: list[str]) -> Verdict:
        """The election: held back inside the cooldown, held back behind a concurrent alert that came
        first, or sent."""
        records, dupes = _one_record_per_alert(me, listed)
        sent = sorted(r for r in records if r.kind == "sent")
        reported = _reported(records, sent)
        others = _open_records(me, records, sent, reported)
        window_end = sent[-1].at + self.cooldown if sent else None
        if window_end is not None and me.at < window_end:
            held = [r for r in others if r.kind != "sent"] + [me]
            return Verdict(send=False, held=len(held), since=min(r.at for r in held), until=window_end)
        if _came_first(me, others, window_end):  # a concurrent alert of the same key: it is the one sent
            held = [r for r in others if (r.at, r.token) <= (me.at, me.token)] + [me]
            return Verdict(send=False, held=len(held), since=min(r.at for r in held))
        return self._sending(me, others, [*sent, *reported, *dupes])

    def _sending(self, me: _Record, others: list[_Record], settled: list[_Record]) -> Verdict:
        """This alert is the one sent: its sent record starts the cooldown, and it counts the open
        records before it.

        :param settled: records this alert's send makes obsolete (older sent ones, reported, duplicates).
        """
        sent_key = f"{self.prefix}sent.{me.at.strftime(_STAMP)}.{me.token}"
        self.store.add(sent_key, _SENT_NOTE)
        counted = [r for r in others if (r.at, r.token) < (me.at, me.token)]
        return Verdict(
            send=True,
            held=len(counted),
            since=min((r.at for r in counted), default=None),
            own=me.key,
            sent_key=sent_key,
            clean_up=tuple(r.key for r in [*counted, *settled]),
        )

    def done(self, verdict: Verdict, *, delivered: bool) -> None:
        """After the send: when someone got the alert, drop the records it reported; when nobody did,
        reopen the cooldown and keep this alert counted for the next one. Never raises."""
        if verdict.own is None or verdict.sent_key is None:
            return
        if delivered:
            self._forget([*verdict.clean_up, verdict.own])
            self._make_sure(verdict.sent_key, _SENT_NOTE)
            return
        missed = verdict.own.replace(".alert.", ".missed.", 1)
        try:
            self.store.add(missed, _MISSED_NOTE)
        except Exception as exc:
            log.warning("SMS alert storm guard could not record the failed alert: %s", _why(exc))
        self._forget([verdict.sent_key, verdict.own])
        self._make_sure(missed, _MISSED_NOTE, gone=verdict.sent_key)

    def _make_sure(self, keep: str, note: str, gone: str | None = None) -> None:
        """Where a racing write can undo this one's (a store that ``loses_writes``: Airflow < 3.3), check
        after a settle wait that ``keep`` is there and ``gone`` is not, and make it so again, up to
        :data:`CHECKS` times. Never raises."""
        if not getattr(self.store, "loses_writes", False):
            return
        try:
            for _ in range(CHECKS):
                if self.settle:
                    time.sleep(self.settle * random.uniform(1, 2))
                listed = self.store.keys(self.prefix)
                if keep in listed and gone not in listed:
                    return
                if keep not in listed:
                    self.store.add(keep, note)
                if gone is not None and gone in listed:
                    self.store.delete(gone)
        except Exception as exc:
            log.warning("SMS alert storm guard could not check its records: %s", _why(exc))

    def _forget(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.store.delete(key)
            except Exception as exc:
                log.warning("SMS alert storm guard could not delete Variable %s: %s", key, _why(exc))


def _one_record_per_alert(me: _Record, listed: list[str]) -> tuple[list[_Record], list[_Record]]:
    """The records listed, one per alert (``me`` for this one), and the duplicates left out. The records
    of one claim share its id: one written again after a lost write, or one that a lost delete brought
    back beside its missed record, is still one alert (the latest, or the missed)."""
    parsed = sorted(
        (r for r in map(_parse, listed) if r is not None), key=lambda r: (r.kind == "missed", r.at)
    )
    one = {r.token: r for r in parsed if r.kind != "sent"} | {me.token: me}
    dupes = [r for r in parsed if r.kind != "sent" and one[r.token] != r]
    return [r for r in parsed if r.kind == "sent"] + list(one.values()), dupes


def _reported(records: list[_Record], sent: list[_Record]) -> set[_Record]:
    """The records older than the last sent record: reported by it (back only if a delete of it was
    lost)."""
    last = (sent[-1].at, sent[-1].token) if sent else None
    return {r for r in records if r.kind != "sent" and last and (r.at, r.token) < last}


def _open_records(
    me: _Record, records: list[_Record], sent: list[_Record], reported: set[_Record]
) -> list[_Record]:
    """The other alerts' records that no sent record has reported yet."""
    sent_ids = {(r.at, r.token) for r in sent}
    return [
        r
        for r in records
        if r.kind != "sent" and r.key != me.key and (r.at, r.token) not in sent_ids and r not in reported
    ]


def _came_first(me: _Record, others: list[_Record], window_end: datetime | None) -> bool:
    """Whether a concurrent alert of the key (after the cooldown, within :data:`DECIDE_WINDOW` of
    ``me``) came before ``me``: then that one is sent."""
    return any(
        r.kind == "alert"
        and (window_end is None or r.at >= window_end)
        and (r.at, r.token) < (me.at, me.token)
        and me.at - r.at <= DECIDE_WINDOW
        for r in others
    )


def _parse(key: str) -> _Record | None:
    """``<prefix><kind>.<time>.<id>`` -> a record; None for anything else."""
    parts = key.rsplit(".", 3)
    if len(parts) != 4 or parts[1] not in ("alert", "missed", "sent"):
        return None
    try:
        at = datetime.strptime(parts[2], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return _Record(at, parts[3], parts[1], key)


def resolve_key(rendered: object, problem: str | None, template: object, dag_id: str) -> str:
    """The rendered ``dedupe_key``, or the DAG id (with a warning naming the reason, unless the key
    was the default one) when it failed to render or rendered empty: the alert still goes out."""
    key = rendered if isinstance(rendered, str) else str(rendered or "")
    if problem is None and key.strip():
        return key
    if template != DEFAULT_DEDUPE_KEY:
        log.warning(
            "SMS alert: dedupe_key %r failed (%s); grouping by the DAG id %r instead",
            template,
            problem or "it rendered empty",
            dag_id,
        )
    return dag_id


def alert_kind(context: Mapping[str, Any]) -> str:
    """ "failures" for a failure alert (an exception, a failed task, a DAG failure reason), else
    "alerts": the word in "+7 more failures since 14:02 UTC"."""
    reason = str(context.get("reason") or "")
    state = getattr(context.get("ti"), "state", None)
    state = str(getattr(state, "value", state) or "")
    failed = context.get("exception") is not None or "fail" in reason or state in ("failed", "up_for_retry")
    return "failures" if failed else "alerts"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def describe(verdict: Verdict, dedupe_key: str) -> str:
    """The log line for an alert held back."""
    if verdict.until is None:
        return (
            f"SMS alert held back: another alert for dedupe key {dedupe_key!r} is being sent right now; "
            f"{verdict.held} alert(s) held back since {_clock_time(verdict.since or now())}"
        )
    return (
        f"SMS alert held back by the cooldown of dedupe key {dedupe_key!r}: {verdict.held} alert(s) held "
        f"back since {_clock_time(verdict.since or now())}; the first alert after "
        f"{_clock_time(verdict.until)} is sent and counts them"
    )


@dataclass(frozen=True)
class Claim:
    """One alert's place in a storm, as the notifier uses it: ask :meth:`summary` before sending and
    report the outcome with :meth:`done`."""

    guard: StormGuard
    verdict: Verdict

    def summary(self, context: Mapping[str, Any], logger: Any) -> str | None:
        """None to hold the alert back (logged), else the "+N more" text for it (possibly empty)."""
        if not self.verdict.send:
            logger.info("%s", describe(self.verdict, self.guard.dedupe_key))
            return None
        return self.verdict.summary(alert_kind(context))

    def done(self, sent: Mapping[str, str]) -> None:
        self.guard.done(self.verdict, delivered=bool(sent))


def claim(
    cooldown: timedelta,
    dedupe_key: object,
    problem: str | None,
    template: object,
    context: Context,
    note: str,
) -> Claim:
    """Ask the storm guard about one alert (sync: Variables are read the sync way).

    :param cooldown: the notifier's cooldown.
    :param dedupe_key: the rendered ``dedupe_key``; ``problem`` says why it failed to render, if it did.
    :param template: the unrendered ``dedupe_key`` (a custom one that fails is warned about).
    :param context: the callback's context (for the DAG id).
    :param note: the alert's fallback text, written beside its record for humans.
    """
    from airflow_provider_smsww.notifications.fallback import dag_id_of

    dag_id = dag_id_of(context) or "unknown DAG"
    guard = StormGuard(resolve_key(dedupe_key, problem, template, dag_id), cooldown)
    return Claim(guard, guard.claim(note))


# -- where the records live: Airflow Variables, one per record (3.3) or a few per key (3.0-3.2) -----


class AlertStore(Protocol):
    """Where the guard keeps its records: keys under a prefix, each with a note for humans."""

    def keys(self, prefix: str) -> list[str]: ...

    def add(self, key: str, note: str) -> None: ...

    def delete(self, key: str) -> None: ...


class AlertVariableStore:
    """Each alert record in a Variable of its own, through the Task SDK (task runner, dag processor and
    triggerer alike), which lists them by prefix (Airflow 3.3)."""

    def keys(self, prefix: str) -> list[str]:
        from airflow.sdk import Variable

        return list(Variable.keys(prefix=prefix))

    def add(self, key: str, note: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, note, description="SmsWwNotifier storm guard (cooldown); safe to delete")

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)


def records_variable(key: str, shards: int = SHARDS) -> str:
    """The Variable holding record ``key`` (``<prefix><kind>.<time>.<id>``): ``<prefix>records.<n>``,
    ``n`` from the id, so that the alert, sent and missed records of one claim share a Variable."""
    prefix, _kind, _at, token = key.rsplit(".", 3)
    return f"{prefix}.{RECORDS}.{zlib.crc32(token.encode()) % shards}"


class RecordsVariableStore:
    """The :class:`AlertStore` of Airflow < 3.3: the records of a key in a few Variables, through the
    Task SDK's ``Variable.get``, ``set`` and ``delete`` only.

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
            self._backend().set(name, json.dumps(records, sort_keys=True), description=RECORDS_DESCRIPTION)

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


def default_store() -> AlertStore:
    """A record per Variable where the Task SDK lists Variables by prefix (Airflow 3.3), else all the
    records of a key in a few Variables (:class:`RecordsVariableStore`)."""
    from airflow.sdk import Variable

    if hasattr(Variable, "keys"):
        return AlertVariableStore()
    return RecordsVariableStore()
