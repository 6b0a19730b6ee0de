"""The retry ledger on the task state store: accepted ids written in groups (group commit), read back
whole by a later try, and no write after a failed one."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_smsww.sending.ledger import (
    GROUP_SIZE,
    TaskStateLedger,
)
from airflow_provider_smsww.sending.ledger_stores import ledger_for_task
from tests.fakes import FakeStore


class SlowStore(FakeStore):
    """A store whose writes take a while, as a round trip through the supervisor does; it records
    which thread wrote, and when each write finished."""

    def __init__(self, delay: float = 0.02, fail_on_set: int | None = None) -> None:
        super().__init__(fail_on_set=fail_on_set)
        self.delay = delay
        self.threads: set[int] = set()

    def set(self, key: str, value: Any) -> None:
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        super().set(key, value)


def record(n: int) -> dict[str, Any]:
    """What the operator records for one accepted message (an id of the API's 24 characters)."""
    return {
        "recipient": f"+3933300{n:05d}",
        "id": f"{n:024x}",
        "state": "SCHEDULED",
        "messageCount": 1,
        "encoding": "GSM-7",
    }


def test_records_that_arrive_during_a_write_go_together_in_the_next_write() -> None:
    store = SlowStore()
    ledger = TaskStateLedger(store)
    stored_when_returned: list[bool] = []

    async def one(n: int) -> None:
        await ledger.arecord(f"r{n}", record(n))
        stored_when_returned.append(f"r{n}" in store.recorded())

    async def main() -> None:
        first = asyncio.create_task(one(0))
        await asyncio.sleep(0.005)  # r0's write is under way
        await asyncio.gather(first, *(one(n) for n in range(1, 50)))

    asyncio.run(main())
    # r0 is written alone; the 49 that arrived during its write go together in the next one.
    assert store.sets == 2
    assert sorted(store.data) == ["smsww:accepted:0", "smsww:accepted:1"]
    assert len(store.data["smsww:accepted:1"]) == 49
    # Each caller returned only once its own record was in the store, written off the event loop.
    assert stored_when_returned == [True] * 50
    assert threading.get_ident() not in store.threads
    # A later try reads every group back, in as many reads as groups plus one.
    later = TaskStateLedger(store)
    store.gets.clear()
    assert later.get("r7") == record(7)
    assert later.get("r49") == record(49)
    assert later.get("nobody") is None
    assert store.gets == ["smsww:accepted:0", "smsww:accepted:1", "smsww:accepted:2"]


def test_a_fast_store_is_written_on_the_event_loop_a_slow_one_off_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23: a thread hop per group costs more CPU than a fast store's write. The first write goes
    to a thread and is timed; while writes take under INLINE_WRITE_MAX the next ones run on the loop,
    and a slow one sends the next back to the thread. The threshold is raised to 50 ms here, so that a
    busy machine cannot make an instant write look slow."""
    monkeypatch.setattr("airflow_provider_smsww.sending.ledger.INLINE_WRITE_MAX", 0.05)
    store = SlowStore(delay=0)
    ledger = TaskStateLedger(store)
    loop_thread = threading.get_ident()
    on_loop: list[bool] = []
    write = store.set

    def set_(key: str, value: Any) -> None:
        on_loop.append(threading.get_ident() == loop_thread)
        write(key, value)

    store.set = set_  # type: ignore[method-assign]

    async def main() -> None:
        for n in range(4):
            await ledger.arecord(f"r{n}", record(n))
            if n == 1:
                store.delay = 0.1  # r2's write is slow, on the loop: r3's goes off it

    asyncio.run(main())
    assert on_loop == [False, True, True, False]
    assert set(store.recorded()) == {"r0", "r1", "r2", "r3"}


def test_a_group_stays_under_the_store_size_airflow_warns_about() -> None:
    store = SlowStore()
    ledger = TaskStateLedger(store)

    async def main() -> None:
        first = asyncio.create_task(ledger.arecord("r0", record(0)))
        await asyncio.sleep(0.005)  # r0's write is under way: 250 more queue meanwhile
        await asyncio.gather(first, *(ledger.arecord(f"+3933300{n:05d}", record(n)) for n in range(1, 251)))

    asyncio.run(main())
    groups = [store.data[f"smsww:accepted:{i}"] for i in range(len(store.data))]
    assert [len(g) for g in groups] == [1, GROUP_SIZE, GROUP_SIZE, 250 - 2 * GROUP_SIZE]
    # Airflow's [state_store] max_value_storage_bytes default (64 KB), with ids of the API's length.
    assert max(len(json.dumps(g)) for g in groups) < 65535 / 2
    assert TaskStateLedger(store).get("+393330000250") == record(250)


def test_a_later_try_appends_groups_after_the_earlier_ones() -> None:
    store = FakeStore()
    TaskStateLedger(store).record("a", record(1))
    retry = TaskStateLedger(store)
    asyncio.run(retry.arecord("b", record(2)))
    assert sorted(store.data) == ["smsww:accepted:0", "smsww:accepted:1"]
    assert store.recorded() == {"a": record(1), "b": record(2)}


def test_after_a_failed_write_no_later_write_is_made() -> None:
    """A gap in the group keys would hide every later group from a retry: the ledger stops instead,
    and every caller whose record is not stored gets the error."""
    store = SlowStore(fail_on_set=2)  # the second group
    ledger = TaskStateLedger(store)

    async def one(n: int) -> str:
        try:
            await ledger.arecord(f"r{n}", record(n))
        except RuntimeError as exc:
            return str(exc)
        return "stored"

    async def main() -> list[str]:
        first = asyncio.create_task(one(0))
        await asyncio.sleep(0.005)  # r0's write is under way: r1-r4 go in the second group
        outcomes = await asyncio.gather(first, *(one(n) for n in range(1, 5)))
        return [*outcomes, await one(99)]

    outcomes = asyncio.run(main())
    assert outcomes[0] == "stored"
    assert outcomes[1:5] == ["worker crashed while recording an accepted message"] * 4
    assert "stopped at an earlier failed write" in outcomes[5]
    assert store.sets == 2  # nothing after the failure
    assert TaskStateLedger(store).get("r0") == record(0)
    assert TaskStateLedger(store).get("r99") is None


def test_a_cancelled_caller_does_not_cancel_the_write_of_the_others() -> None:
    store = SlowStore(delay=0.05)
    ledger = TaskStateLedger(store)

    async def main() -> None:
        first = asyncio.create_task(ledger.arecord("r0", record(0)))
        await asyncio.sleep(0.01)  # r0's write is under way: r1 and r2 queue for the next group
        waiting = asyncio.create_task(ledger.arecord("r1", record(1)))
        other = asyncio.create_task(ledger.arecord("r2", record(2)))
        await asyncio.sleep(0)
        waiting.cancel()
        await first
        await other  # not cancelled with r1

    asyncio.run(main())
    # r1 was accepted by the gateway: its record is written all the same.
    assert set(store.recorded()) == {"r0", "r1", "r2"}


def test_started_at_and_rounds_are_their_own_keys() -> None:
    store = FakeStore()
    ledger = TaskStateLedger(store)
    when = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    ledger.mark_started(when)
    ledger.set_round({"+393330000001": when}, open=False)
    later = TaskStateLedger(store)
    assert later.started_at() == when
    assert later.unknown_outcomes() == {"+393330000001": when}
    assert later.get("+393330000001") is None


def test_an_open_round_reads_as_a_crash() -> None:
    ledger = TaskStateLedger(FakeStore())
    ledger.set_round({}, open=True)
    assert ledger.unknown_outcomes() is None


@pytest.mark.parametrize("clear_on_success", ["True", "False"])
def test_a_ledger_airflow_deletes_on_success_is_named_in_the_log(
    clear_on_success: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With [state_store] clear_on_success, a cleared successful task has no ledger: it sends again."""
    monkeypatch.setenv("AIRFLOW__STATE_STORE__CLEAR_ON_SUCCESS", clear_on_success)
    caplog.set_level(logging.WARNING, logger="airflow_provider_smsww")
    assert isinstance(ledger_for_task({"task_state_store": FakeStore()}), TaskStateLedger)
    warned = "clearing the task after a success sends every message again" in caplog.text
    assert warned is (clear_on_success == "True")
