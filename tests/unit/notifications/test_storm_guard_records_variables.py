"""The storm guard on Airflow < 3.3 (``storm_guard.RecordsVariableStore``): the records of a key in a few
Variables, changed by read-modify-write through ``get``/``set``/``delete`` only.

The Variables here are an in-memory stand-in with the Task SDK's semantics on Airflow 3.0-3.2 (no
listing, no compare-and-set, set = upsert), optionally slow so that racing read-modify-writes really
lose each other's writes. tests/integration/test_alert_runs.py runs the same store on real Variables.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest

from airflow_provider_smsww.notifications import storm_guard
from airflow_provider_smsww.notifications.storm_guard import (
    RECORDS_DESCRIPTION,
    SHARDS,
    AlertVariableStore,
    RecordsVariableStore,
    StormGuard,
    records_variable,
)
from tests.unit.notifications.test_storm_guard import COOLDOWN, T0, Clock, MemoryStore, alert, race


class FakeVariables:
    """``airflow.sdk.Variable`` as Airflow 3.0-3.2 have it: get, set, delete; no ``keys``.

    :param latency: up to this many seconds of random wait in every call (a busy API server), which
        widens the gap between a read and the write that follows it.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.data: dict[str, str] = {}
        self.descriptions: dict[str, str | None] = {}
        self.lock = threading.Lock()
        self.latency = latency
        self.fail = False
        #: Called after each write with the Variable's name (a test makes a racer's write there).
        self.after_set: Callable[[str], None] | None = None
        self.versions: dict[str, int] = {}
        self.read_version = threading.local()
        #: Writes based on a read that another write had already made stale (each one loses a write).
        self.lost = 0
        self.sets = 0

    def _wait(self) -> None:
        if self.fail:
            raise ConnectionError("api server unreachable")
        if self.latency:
            time.sleep(random.uniform(0, self.latency))

    def get(self, key: str, default: Any = None) -> Any:
        self._wait()
        with self.lock:
            self.read_version.of = (key, self.versions.get(key, 0))
            return self.data.get(key, default)

    def set(self, key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        self._wait()
        with self.lock:
            if getattr(self.read_version, "of", None) not in (None, (key, self.versions.get(key, 0))):
                self.lost += 1
            self.data[key] = json.dumps(value) if serialize_json else value
            self.descriptions[key] = description
            self.sets += 1
            self.versions[key] = self.versions.get(key, 0) + 1
        if self.after_set is not None:
            self.after_set(key)

    def delete(self, key: str) -> None:
        self._wait()
        with self.lock:
            self.data.pop(key, None)

    def records(self, prefix: str) -> dict[str, str]:
        """The records of a key, from all its Variables."""
        shards = [json.loads(v) for k, v in sorted(self.data.items()) if k.startswith(prefix + "records.")]
        return {k: v for shard in shards for k, v in shard.items()}


def guard(variables: FakeVariables, clock: Any = None, key: str = "etl", settle: float = 0) -> StormGuard:
    """One alert's guard, with its own store on the shared Variables (as the notifier makes them)."""
    return StormGuard(key, COOLDOWN, store=RecordsVariableStore(variables), clock=clock, settle=settle)


def kinds(variables: FakeVariables, g: StormGuard) -> list[str]:
    return sorted(k.split(".")[2] for k in variables.records(g.prefix))


def test_the_records_of_a_key_share_a_few_variables_and_deletes_remove_them() -> None:
    variables = FakeVariables()
    store = RecordsVariableStore(variables)
    prefix = storm_guard.variable_prefix("etl")
    first, second = (f"{prefix}alert.20250601T14020{n}000000Z.{token}" for n, token in ((5, "aa"), (6, "bb")))
    store.add(first, "FAILED etl.load " + "x" * 500)
    store.add(second, "FAILED etl.load_2")
    other = f"{storm_guard.variable_prefix('etl_v2')}alert.20250601T140207000000Z.cc"
    RecordsVariableStore(variables).add(other, "another key")

    assert set(variables.data) == {records_variable(k) for k in (first, second, other)}
    assert all(name.startswith(f"{prefix}records.") for name in map(records_variable, (first, second)))
    assert set(variables.descriptions.values()) == {RECORDS_DESCRIPTION}
    # One claim's records (alert, then sent or missed) share a Variable: one write changes them together.
    assert records_variable(first) == records_variable(f"{prefix}sent.20250601T140207000000Z.aa")
    assert store.keys(prefix) == [first, second]
    assert len(variables.records(prefix)[first]) == 160  # a note is for humans: one SMS part of it

    # Listing made the shards nobody had written (Airflow 3.0 logs a read of a missing one as an error).
    assert sum(name.startswith(f"{prefix}records.") for name in variables.data) == SHARDS

    store.delete(first)
    writes = variables.sets
    assert store.keys(prefix) == [second]
    store.delete(f"{prefix}alert.20250601T140208000000Z.dd")  # nothing to delete: nothing written
    assert variables.sets == writes


def test_eight_failures_send_one_then_the_next_after_the_cooldown_counts_seven() -> None:
    variables, clock = FakeVariables(), Clock()
    verdicts = [alert(guard(variables, clock)) for _ in range(8)]
    assert [v.send for v in verdicts] == [True] + [False] * 7
    assert [v.held for v in verdicts[1:]] == list(range(1, 8))

    clock.at = T0 + COOLDOWN + timedelta(seconds=1)
    after = alert(guard(variables, clock))
    assert (after.send, after.held) == (True, 7)
    assert kinds(variables, guard(variables)) == ["sent"]  # what it reported is gone


def test_a_failed_send_reopens_the_cooldown_and_a_dead_claim_is_counted() -> None:
    variables, clock = FakeVariables(), Clock()
    assert alert(guard(variables, clock), delivered=False).send  # nobody got it
    clock.at += storm_guard.DECIDE_WINDOW  # and a callback killed before deciding:
    RecordsVariableStore(variables).add(
        f"{storm_guard.variable_prefix('etl')}alert.{clock.at:%Y%m%dT%H%M%S%fZ}.dead", ""
    )
    clock.at += storm_guard.DECIDE_WINDOW + timedelta(seconds=1)
    second = alert(guard(variables, clock))
    assert (second.send, second.held) == (True, 2)
    assert not alert(guard(variables, clock)).send


def test_eight_racing_claims_send_one_and_count_the_other_seven(caplog: pytest.LogCaptureFixture) -> None:
    """8 callbacks at once on Variables with up to 10 ms per call: their read-modify-writes overwrite
    each other (``lost`` counts it), the dropped records are written again after the settle wait, and
    each time exactly one alert is sent and the next after the cooldown counts the other seven."""
    lost = 0
    for _ in range(10):
        variables = FakeVariables(latency=0.01)
        verdicts = race(partial(guard, variables, settle=0.05), 8)
        assert sum(v.send for v in verdicts) == 1
        assert all(v.held >= 1 for v in verdicts if not v.send)
        lost += variables.lost

        clock = Clock(storm_guard.now() + COOLDOWN + timedelta(seconds=1))
        after = alert(guard(variables, clock))
        assert (after.send, after.held) == (True, 7)
    assert lost > 0  # the race was real: writes were lost, and repaired
    assert "storm guard unavailable" not in caplog.text


def stale_write(variables: FakeVariables, racer: dict[str, str] | None = None) -> None:
    """The next write is lost: right after it, a racer that had read before it writes back what it read
    (plus ``racer``, its own records)."""
    before = dict(variables.data)

    def overwrite(name: str) -> None:
        variables.after_set = None
        value = {**json.loads(before.get(name, "{}")), **(racer or {})}
        variables.data[name] = json.dumps(value)

    variables.after_set = overwrite


def test_a_record_dropped_by_a_racer_is_written_again_and_the_alert_decides() -> None:
    variables, clock = FakeVariables(), Clock()
    g = guard(variables, clock)
    stale_write(variables)
    verdict = alert(g)
    assert verdict.send  # its first record was lost; the second one stayed
    assert kinds(variables, g) == ["sent"]
    assert not alert(guard(variables, clock)).send


def test_a_record_dropped_by_an_earlier_racer_is_written_again_and_held_behind_it() -> None:
    variables, clock = FakeVariables(), Clock()
    g = guard(variables, clock)
    racer = f"{g.prefix}alert.{clock.at:%Y%m%dT%H%M%S%fZ}.racer000"  # it read first, and wrote last
    stale_write(variables, {racer: "the racer's alert"})
    verdict = g.claim("note")
    # The racer is the earlier alert, so the one sent: this one is held back, counting both.
    assert (verdict.send, verdict.held, verdict.until) == (False, 2, None)
    assert kinds(variables, g) == ["alert", "alert"]


def test_an_alert_written_again_is_counted_once_even_if_its_first_record_comes_back() -> None:
    """A record written again after a lost write keeps its alert's id; if a racer's stale write brings
    the first one back, the two are still one alert."""
    variables, clock = FakeVariables(), Clock()
    assert alert(guard(variables, clock)).send
    stale_write(variables)
    held = guard(variables, clock).claim("note")
    assert not held.send
    (again,) = [k for k in variables.records(storm_guard.variable_prefix("etl")) if ".alert." in k]
    _, stamp, token = again.rsplit(".", 2)
    first_at = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ") - timedelta(microseconds=1)
    back = f"{storm_guard.variable_prefix('etl')}alert.{first_at:%Y%m%dT%H%M%S%fZ}.{token}"
    RecordsVariableStore(variables).add(back, "brought back")  # ...and its first record is back

    clock.at += COOLDOWN + timedelta(seconds=1)
    after = alert(guard(variables, clock))
    assert (after.send, after.held) == (True, 1)
    assert kinds(variables, guard(variables)) == ["sent"]


def drop_from(variables: FakeVariables, name: str, kind: str) -> None:
    """A racer that had read ``name`` before a record of ``kind`` was written writes back what it read."""
    records = json.loads(variables.data[name])
    variables.data[name] = json.dumps({k: v for k, v in records.items() if f".{kind}." not in k})


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_sent_record_dropped_by_a_racer_is_written_back(when: str) -> None:
    """Before the sender's clean-up (its own writes carry the sent record again) or after it (its
    check, a settle wait later, finds it missing and writes it)."""
    variables, clock = FakeVariables(), Clock()
    g = guard(variables, clock)
    verdict = g.claim("note")
    assert verdict.send
    assert verdict.sent_key is not None
    name = records_variable(verdict.sent_key)
    if when == "before":
        drop_from(variables, name, "sent")
    else:
        variables.after_set = lambda written: (
            setattr(variables, "after_set", None),
            drop_from(variables, name, "sent"),
        )
    g.done(verdict, delivered=True)  # the SMS went out
    assert kinds(variables, g) == ["sent"]
    assert not alert(guard(variables, clock)).send  # the cooldown holds


def test_a_sent_record_brought_back_after_a_failed_send_is_deleted_again() -> None:
    """Nobody got the alert, so its sent record must go (else the cooldown would hold back the next
    alerts for an SMS nobody received): a racer's stale write that brings it back is undone."""
    variables, clock = FakeVariables(), Clock()
    g = guard(variables, clock)
    verdict = g.claim("note")
    assert verdict.sent_key is not None
    name, sent_key = records_variable(verdict.sent_key), verdict.sent_key

    def bring_back(written: str) -> None:  # after the sender's last write, the racer's
        records = json.loads(variables.data[name])
        if (
            sent_key not in records
            and ".missed." in variables.data[name]
            and ".alert." not in variables.data[name]
        ):
            variables.after_set = None
            variables.data[name] = json.dumps({**records, sent_key: "the last SMS alert sent for this key"})

    variables.after_set = bring_back
    g.done(verdict, delivered=False)
    assert kinds(variables, g) == ["missed"]
    after = alert(guard(variables, clock))
    assert (after.send, after.held) == (True, 1)  # sent, counting the one nobody got


def test_records_that_never_stay_written_let_the_alert_through(caplog: pytest.LogCaptureFixture) -> None:
    """Airflow 3.0's ``Variable.set`` logs an API server error instead of raising it: the record is
    simply not there, every time. After CHECKS looks the alert is sent."""
    variables = FakeVariables()
    variables.after_set = lambda name: variables.data.clear()
    verdicts = [alert(guard(variables, Clock())) for _ in range(2)]
    assert [v.send for v in verdicts] == [True, True]
    assert f"dropped by racing writes {storm_guard.CHECKS} times" in caplog.text


def test_unreachable_variables_let_the_alert_through(caplog: pytest.LogCaptureFixture) -> None:
    variables = FakeVariables()
    variables.fail = True
    assert guard(variables).claim("note").send
    assert "storm guard unavailable (ConnectionError: api server unreachable)" in caplog.text

    variables.fail = False
    g = guard(variables, Clock())
    real_get = variables.get
    calls = iter(range(100))

    def fails_after_the_write(key: str, default: Any = None) -> Any:
        if next(calls) == 1:  # the read after the settle wait
            raise ConnectionError("api server went away")
        return real_get(key, default)

    variables.get = fails_after_the_write  # type: ignore[method-assign]
    assert g.claim("note").send
    assert "api server went away" in caplog.text


def test_a_variable_that_is_not_a_json_object_is_started_afresh(caplog: pytest.LogCaptureFixture) -> None:
    variables, clock = FakeVariables(), Clock()
    g = guard(variables, clock)
    for n in range(SHARDS):
        variables.data[f"{g.prefix}records.{n}"] = "edited by hand"
    assert alert(g).send
    assert "is not a JSON object; starting it afresh" in caplog.text
    assert not alert(guard(variables, clock)).send


@pytest.mark.parametrize("on", ["one variable per record", "one variable per key"])
def test_a_record_brought_back_by_a_lost_delete_is_not_counted_twice(on: str) -> None:
    """The sender deletes what it reported; when a racer's write brings one back (Airflow < 3.3) or a
    delete fails, the next alert after the cooldown does not count it again, and removes it."""
    clock = Clock()
    memory, variables = MemoryStore(), FakeVariables()

    def g() -> StormGuard:
        store = memory if on == "one variable per record" else RecordsVariableStore(variables)
        return StormGuard("etl", COOLDOWN, store=store, clock=clock, settle=0)

    assert alert(g()).send
    held = g().claim("note")  # held back, counted by the next one
    clock.at += COOLDOWN + timedelta(seconds=1)
    assert alert(g()).held == 1
    g().store.add(f"{g().prefix}alert.{held.since:%Y%m%dT%H%M%S%fZ}.back0000", "brought back")

    clock.at += COOLDOWN + timedelta(seconds=1)
    after = alert(g())
    assert (after.send, after.held) == (True, 0)
    assert [k.split(".")[2] for k in g().store.keys(g().prefix)] == ["sent"]


def test_the_store_is_chosen_by_what_the_task_sdk_has(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Variable

    lists = hasattr(Variable, "keys")
    assert isinstance(storm_guard.default_store(), AlertVariableStore if lists else RecordsVariableStore)
    if lists:  # Airflow 3.3 without its listing is Airflow 3.2
        monkeypatch.delattr(Variable, "keys")
        assert isinstance(storm_guard.default_store(), RecordsVariableStore)


def test_reads_skip_a_cached_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``[secrets] use_cache`` (Airflow 3.1+), another process's writes would stay unseen for
    minutes, and writing the cached copy back would drop them."""
    cache = pytest.importorskip("airflow.sdk.execution_time.cache").SecretCache
    from airflow.sdk import Variable

    monkeypatch.setattr(cache, "_cache", {})
    prefix = storm_guard.variable_prefix("etl")
    for n in range(SHARDS):
        cache.save_variable(f"{prefix}records.{n}", "{}")  # what this process read a while ago
    seen: list[Any] = []

    def get(key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        seen.append(cache._cache.get(cache._VARIABLE_PREFIX + key))
        if key != f"{prefix}records.0":
            return default
        return json.dumps({f"{prefix}alert.20250601T140205000000Z.other000": "another process's"})

    monkeypatch.setattr(Variable, "get", get)
    monkeypatch.setattr(Variable, "set", lambda key, value, description=None: None)
    assert RecordsVariableStore().keys(prefix) == [f"{prefix}alert.20250601T140205000000Z.other000"]
    assert seen == [None] * SHARDS
