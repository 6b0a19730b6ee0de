"""The one concurrency limiter: every fan-out of requests (dry runs, sends, reads, alerts) goes through
:func:`bounded`, so each has the same bound and the same way of stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


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
