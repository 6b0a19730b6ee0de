"""The anyio ``Lock`` deadlock (anyio 4.5.0 to 4.13.x) that hung the fault soak on Airflow 3.1's libraries."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import anyio
import pytest

from airflow_provider_smsww._http import client as client_module
from airflow_provider_smsww._http.anyio_lock import AFFECTED, _release, mend_anyio_lock


async def test_a_free_lock_with_only_a_cancelled_waiter_queued_is_taken_at_once() -> None:
    """A waiter cancelled before the release stays queued until it runs; an acquire in that window
    waited forever on anyio 4.5-4.13 (the lock has no owner and nobody would wake it)."""
    mend_anyio_lock()
    lock = anyio.Lock()
    await lock.acquire()
    waiter = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    waiter.cancel()  # cancelled, has not run yet: still queued
    lock.release()  # passes the cancelled waiter over and leaves the lock free
    async with asyncio.timeout(2):
        await lock.acquire()  # same step: the cancelled waiter is still queued
    assert lock.locked()
    lock.release()
    await asyncio.gather(waiter, return_exceptions=True)
    assert lock.statistics().tasks_waiting == 0
    assert not lock.locked()


async def test_the_lock_still_queues_behind_a_live_waiter() -> None:
    mend_anyio_lock()
    lock = anyio.Lock()
    order: list[str] = []

    async def take(name: str) -> None:
        async with lock:
            order.append(name)
            await asyncio.sleep(0.01)

    await asyncio.gather(take("a"), take("b"), take("c"))
    assert order == ["a", "b", "c"]


def test_mended_only_on_the_affected_releases() -> None:
    affected = AFFECTED[0] <= _release(version("anyio")) < AFFECTED[1]
    assert mend_anyio_lock() is affected
    from anyio._backends._asyncio import Lock

    assert getattr(Lock.acquire, "mends_stale_waiters", False) is affected
    assert _release("4.13.0") == (4, 13)
    assert _release("4.14.0rc1") == (4, 14)


def test_the_async_client_mends_the_lock_before_it_makes_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(client_module, "mend_anyio_lock", lambda: calls.append(True) or True)
    client_module.AsyncSmsWwClient("http://127.0.0.1:9", token="t")  # builds no connection
    assert calls == [True]
