"""A deadlock in anyio's asyncio ``Lock`` (anyio 4.5.0 to 4.13.x, mended in 4.14.0), closed here.

httpcore guards each connection with such a lock, so cancelling requests in flight (a batch that stops
on an error, a task timeout, a trigger's cleanup) can hang the task forever: a waiter cancelled before
the lock is released stays queued until it next runs, ``release()`` passes it over and leaves the lock
free, and an ``acquire()`` in that window sees the queue non-empty and waits behind a waiter that will
never take the lock. The libraries of Airflow 3.0's and 3.1's time pin such anyio releases (4.9, 4.10,
4.13), and asking for anyio >= 4.14 would make their users upgrade a library Airflow pins, so the client
mends the lock instead: an ``acquire()`` that finds the lock free with only cancelled waiters queued
takes it at once, as anyio 4.14 does. Nothing changes on other anyio releases.
"""

from __future__ import annotations

from asyncio import current_task
from functools import cache
from importlib.metadata import version
from typing import Any

#: The anyio releases whose asyncio ``Lock`` has the deadlock: [first, mended).
AFFECTED = ((4, 5), (4, 14))


def _release(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


@cache
def mend_anyio_lock() -> bool:
    """Mend anyio's asyncio ``Lock.acquire`` once per process, on the affected releases only (cached:
    every async client calls it).

    :return: True when the running anyio needed it, False otherwise.
    """
    if not AFFECTED[0] <= _release(version("anyio")) < AFFECTED[1]:
        return False
    from anyio._backends._asyncio import Lock

    original = Lock.acquire

    async def acquire(self: Any) -> None:
        if self._owner_task is None and self._waiters and all(fut.cancelled() for _, fut in self._waiters):
            # Free, and every waiter queued is cancelled (each removes itself when it runs): take it.
            self._owner_task = current_task()
            return
        await original(self)

    acquire.mends_stale_waiters = True  # type: ignore[attr-defined]
    Lock.acquire = acquire  # type: ignore[method-assign]
    return True
