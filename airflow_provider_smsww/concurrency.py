"""How the provider's async work runs: every fan-out of requests (dry runs, sends, reads, alerts) goes
through the one concurrency limiter, :func:`bounded`, so each has the same bound and the same way of
stopping; sync code (an operator's ``execute``, a notifier) runs it with :func:`run_in_new_loop`, so that
Airflow's ``execution_timeout`` still ends it.

The timeout is a SIGALRM whose handler raises ``AirflowTaskTimeout`` wherever the main thread is. Inside an
event loop that can be a background task nobody awaits, or a callback whose exception asyncio logs and
drops: the timeout is lost and the try runs on past it. :func:`run_in_new_loop` lets the signal only
schedule the handler on the loop; what the handler raises cancels the work, and is raised once the work
has unwound (its ledger writes done).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import FrameType
from typing import Any, TypeVar

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


def run_in_new_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end on a new event loop; an exception raised by the SIGALRM handler in place
    when it starts (Airflow's timeout) cancels ``work`` and is raised after it.

    The provider's handler is in place from before the loop is made until after it is closed: a signal
    that comes while the loop starts, or while it stops, is handed to Airflow's handler here, not in
    whatever code (a garbage collector's weakref callback) the main thread is running then.

    :param work: the coroutine to run.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(work)  # no signal reaches this thread
    handler = signal.getsignal(signal.SIGALRM)
    if not callable(handler):
        return asyncio.run(work)
    raised: list[BaseException] = []
    pending: list[FrameType | None] = []  # alarms not handed to Airflow's handler yet
    running: list[Any] = []  # the loop and the task of the work, while the loop runs

    def on_alarm() -> None:
        if pending:
            try:
                handler(signal.SIGALRM, pending.pop())
            except BaseException as exc:
                raised.append(exc)
                running[1].cancel()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        pending.append(frame)
        if running and running[0].is_running():
            running[0].call_soon_threadsafe(on_alarm)

    async def guarded() -> T:
        running[:] = [asyncio.get_running_loop(), asyncio.current_task()]
        if pending:  # the alarm came while the loop was starting: the work does not start
            try:
                handler(signal.SIGALRM, pending.pop())
            except BaseException:
                work.close()
                raise
        return await work

    signal.signal(signal.SIGALRM, on_signal)
    try:
        try:
            result = asyncio.run(guarded())
        finally:
            signal.signal(signal.SIGALRM, handler)
            running.clear()
            if pending and not raised:  # came while the loop stopped, or its callback never ran
                handler(signal.SIGALRM, pending.pop())
    except BaseException as exc:
        if raised and exc is not raised[0]:
            raise raised[0] from (None if isinstance(exc, asyncio.CancelledError) else exc)
        raise
    if raised:  # the work swallowed its cancellation and returned: the timeout still ends the task
        raise raised[0]
    return result
