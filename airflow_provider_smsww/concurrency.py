"""The one concurrency limiter: every fan-out of requests (dry runs, sends, reads, alerts) goes through
:func:`bounded`, so each has the same bound and the same way of stopping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class Progress:
    """Logs ``<verb> done/total`` and the rate at most every ``every`` seconds, and once at the end:
    a long list (10,000 recipients) shows it is moving without a line per request."""

    def __init__(self, total: int, verb: str, every: float = 5.0) -> None:
        self.total, self.verb, self.every = total, verb, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            log.info("%s %d/%d (%.0f messages/s)", self.verb, self.done, self.total, rate)


async def bounded(
    items: Iterable[T], worker: Callable[[T], Awaitable[R]], concurrency: int
) -> list[R | None]:
    """Run ``worker`` over ``items`` with at most ``concurrency`` in flight; results in input order.

    An exception from a worker cancels everything not yet finished and is raised as itself (not as an
    exception group): a batch that cannot record what it sent must stop sending, and a read that met a
    fatal error must not go on. A worker woken after the failure does not start (its result is None).
    """
    semaphore = asyncio.Semaphore(max(1, concurrency))
    failed = False

    async def one(item: T) -> R | None:
        nonlocal failed
        async with semaphore:
            if failed:  # a waiter woken by the failing task's release must not start
                return None
            try:
                return await worker(item)
            except BaseException:
                failed = True
                raise

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]
