"""The storm guard (airflow_provider_smsww.notifications.storm_guard): cooldown, counting, racing
callbacks, bad input.

The store here is an in-memory stand-in with the semantics of Airflow Variables through the Task SDK
(set = upsert, keys by prefix, delete; no compare-and-set), optionally slow, so that racing callbacks
really interleave. tests/integration/test_alert_runs.py runs the same guard on real Variables.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from airflow_provider_smsww.notifications import storm_guard
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.notifications.storm_guard import (
    StormGuard,
    Verdict,
    check_cooldown,
    check_dedupe_key,
    resolve_key,
)

T0 = datetime(2025, 6, 1, 14, 2, 5, tzinfo=UTC)
COOLDOWN = timedelta(minutes=15)


class MemoryStore:
    """Variables as the SDK offers them, with an optional random latency per call (a busy API server)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.data: dict[str, str] = {}
        self.lock = threading.Lock()
        self.latency = latency
        self.fail = False

    def _wait(self) -> None:
        if self.fail:
            raise ConnectionError("api server unreachable")
        if self.latency:
            time.sleep(random.uniform(0, self.latency))

    def keys(self, prefix: str) -> list[str]:
        self._wait()
        with self.lock:
            return sorted(k for k in self.data if k.startswith(prefix))

    def add(self, key: str, note: str) -> None:
        self._wait()
        with self.lock:
            self.data[key] = note

    def delete(self, key: str) -> None:
        self._wait()
        with self.lock:
            self.data.pop(key, None)


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(microseconds=1)  # every alert a distinct instant, as on a real clock
        return self.at


def guard(
    store: MemoryStore, clock: Any = None, key: str = "etl", cooldown: timedelta = COOLDOWN
) -> StormGuard:
    return StormGuard(key, cooldown, store=store, clock=clock, settle=0)


def alert(g: StormGuard, delivered: bool = True) -> Verdict:
    """One alert through the guard, the way the notifier uses it."""
    verdict = g.claim("note")
    if verdict.send:
        g.done(verdict, delivered=delivered)
    return verdict


def test_eight_failures_send_one_then_the_next_after_the_cooldown_counts_seven() -> None:
    store, clock = MemoryStore(), Clock()
    g = guard(store, clock)
    verdicts = [alert(g) for _ in range(8)]
    assert [v.send for v in verdicts] == [True] + [False] * 7
    assert [v.held for v in verdicts[1:]] == list(range(1, 8))  # each held one is counted

    clock.at = T0 + COOLDOWN + timedelta(seconds=1)
    after = alert(g)
    assert after.send
    assert after.held == 7
    assert after.since is not None
    assert after.since.strftime("%H:%M") == "14:02"
    assert after.summary() == "+7 more failures since 2025-06-01 14:02 UTC"  # not today: with the date
    # The records it reported are gone: the next window starts from zero.
    assert [k.split(".")[2] for k in store.keys(g.prefix)] == ["sent"]


def test_summary_is_clock_time_only_for_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storm_guard, "now", lambda: T0 + timedelta(hours=1))
    verdict = Verdict(send=True, held=7, since=T0)
    assert verdict.summary() == "+7 more failures since 14:02 UTC"
    assert verdict.summary("alerts") == "+7 more alerts since 14:02 UTC"
    assert Verdict(send=True).summary() == ""


def test_keys_do_not_share_a_cooldown() -> None:
    store, clock = MemoryStore(), Clock()
    assert alert(guard(store, clock, key="etl")).send
    assert alert(guard(store, clock, key="etl_v2")).send  # a prefix of another key is not the same key
    assert not alert(guard(store, clock, key="etl")).send


def test_a_failed_send_reopens_the_cooldown_and_is_counted_next_time() -> None:
    store, clock = MemoryStore(), Clock()
    g = guard(store, clock)
    first = alert(g, delivered=False)  # the gateway was down: nobody got it
    assert first.send
    second = alert(g)
    assert second.send  # not held back by an alert nobody received
    assert second.held == 1
    assert not alert(g).send


def test_a_dead_claim_does_not_block_later_alerts() -> None:
    store, clock = MemoryStore(), Clock()
    g = guard(store, clock)
    store.add(f"{g.prefix}alert.{T0.strftime('%Y%m%dT%H%M%S%fZ')}.deadbeef", "a callback killed mid-way")
    clock.at = T0 + storm_guard.DECIDE_WINDOW + timedelta(seconds=1)
    verdict = alert(g)
    assert verdict.send
    assert verdict.held == 1  # counted, not lost


def test_an_unreachable_store_lets_the_alert_through(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    store.fail = True
    verdict = guard(store).claim("note")
    assert verdict.send
    assert "storm guard unavailable" in caplog.text
    assert "api server unreachable" in caplog.text


def race(make_guard: Callable[[], StormGuard], callbacks: int) -> list[Verdict]:
    """``callbacks`` alerts of one key released at the same instant, each in its own thread with the
    guard ``make_guard()`` gives it."""
    verdicts: list[Verdict] = []
    start = threading.Barrier(callbacks)

    def callback() -> None:
        g = make_guard()
        start.wait()
        verdicts.append(alert(g))

    threads = [threading.Thread(target=callback) for _ in range(callbacks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return verdicts


@pytest.mark.parametrize("callbacks", [2, 8])
def test_racing_callbacks_send_exactly_one(callbacks: int) -> None:
    """Callbacks of one incident at the same moment (8 tasks failing together, or a task and its DAG
    callback): over 25 rounds on a store with up to 20 ms latency per call, exactly one sends each time."""
    for _ in range(25):
        store = MemoryStore(latency=0.02)
        verdicts = race(partial(StormGuard, "etl", COOLDOWN, store=store, settle=0.1), callbacks)
        assert sum(v.send for v in verdicts) == 1


def test_the_documented_worst_case_is_one_extra_sms() -> None:
    """What the store cannot make atomic: Variables have no compare-and-set. A second SMS needs a
    callback that stalls between listing the records and writing its sent record while another, with
    an earlier time, writes its record, lists and decides. Then two alerts are sent, and only two:
    every later callback sees a sent record and is held back."""
    store = MemoryStore()
    late = StormGuard("etl", COOLDOWN, store=store, clock=lambda: T0, settle=0)
    sends: list[bool] = []

    class StallsAfterListing:
        """The winner's view of the store: the other callback runs entirely inside its stall."""

        def keys(self, prefix: str) -> list[str]:
            listed = store.keys(prefix)
            sends.append(alert(late).send)
            return listed

        add = store.add
        delete = store.delete

    stalled = StormGuard(
        "etl", COOLDOWN, store=StallsAfterListing(), clock=lambda: T0 + timedelta(seconds=1), settle=0
    )
    sends.append(alert(stalled).send)
    assert sends == [True, True]
    later = StormGuard("etl", COOLDOWN, store=store, clock=lambda: T0 + timedelta(seconds=2), settle=0)
    assert not alert(later).send


# -- bad input, when the DAG is parsed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cooldown", "match"),
    [
        (timedelta(0), "must be positive"),
        (timedelta(minutes=-5), "must be positive"),
        (900, "must be a datetime.timedelta"),
        ("15m", "must be a datetime.timedelta"),
        (True, "must be a datetime.timedelta"),
    ],
)
def test_a_bad_cooldown_is_refused_at_parse_time(cooldown: Any, match: str) -> None:
    with pytest.raises(ValueError, match=rf"cooldown {match}"):
        SmsWwNotifier(recipients="+393331234567", message="x", cooldown=cooldown)


@pytest.mark.parametrize("key", [42, None, ["etl"], "", "   "])
def test_a_bad_dedupe_key_is_refused_at_parse_time(key: Any) -> None:
    with pytest.raises(ValueError, match="dedupe_key must"):
        SmsWwNotifier(recipients="+393331234567", message="x", cooldown=COOLDOWN, dedupe_key=key)


def test_checks_accept_good_input() -> None:
    assert check_cooldown(None) is None
    assert check_cooldown(COOLDOWN) == COOLDOWN
    assert check_dedupe_key("{{ dag.dag_id }}-{{ ti.task_id }}") == "{{ dag.dag_id }}-{{ ti.task_id }}"


def test_a_key_that_fails_to_render_falls_back_to_the_dag_id(caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_key("etl.load", None, "{{ dag.dag_id }}.{{ ti.task_id }}", "etl") == "etl.load"
    assert resolve_key(None, "UndefinedError: 'nope' is undefined", "{{ nope }}", "etl") == "etl"
    assert "dedupe_key '{{ nope }}' failed (UndefinedError: 'nope' is undefined)" in caplog.text
    assert resolve_key("  ", None, "{{ params.team }}", "etl") == "etl"
    assert "it rendered empty" in caplog.text
