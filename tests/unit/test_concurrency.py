"""``run_in_new_loop``: Airflow's ``execution_timeout`` (a SIGALRM whose handler raises) always ends async
work, even when the signal lands in a background task or a callback, where asyncio would drop it."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from airflow_provider_smsww.concurrency import run_in_new_loop


class Timeout(BaseException):
    """Like ``AirflowTaskTimeout``: a BaseException, so ``except Exception`` does not catch it."""


def raise_timeout(signum: int, frame: FrameType | None) -> None:
    raise Timeout("Timeout, PID: 1")


@pytest.fixture
def airflow_timeout() -> Iterator[None]:
    """The handler Airflow's ``timeout`` installs, and the timer cleared afterwards. The previous
    test's garbage (thousands of tasks) is collected first: a signal landing in that collection, before
    ``run_in_new_loop`` is even called, would be the test's own doing."""
    gc.collect()
    previous = signal.signal(signal.SIGALRM, raise_timeout)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


async def busy_with_callbacks_and_unawaited_tasks(seen: list[str]) -> str:
    """Work where most of the time is spent in loop callbacks and in tasks nobody awaits: a signal's
    exception raised there is logged and dropped by plain ``asyncio.run``."""
    loop = asyncio.get_running_loop()

    def burn() -> None:
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            pass

    async def background() -> None:
        burn()

    unawaited: set[asyncio.Task[None]] = set()
    try:
        for _ in range(2_000):
            loop.call_soon(burn)
            unawaited.add(loop.create_task(background()))
            await asyncio.sleep(0)
        return "finished"
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise
    finally:
        seen.append("unwound")


@pytest.mark.parametrize("after", [0.01, 0.03, 0.05, 0.07, 0.11, 0.13])
def test_a_timeout_during_callbacks_and_background_tasks_is_raised_after_the_work_unwound(
    airflow_timeout: None, after: float
) -> None:
    seen: list[str] = []
    signal.setitimer(signal.ITIMER_REAL, after)
    start = time.monotonic()
    with pytest.raises(Timeout, match="Timeout, PID"):
        run_in_new_loop(busy_with_callbacks_and_unawaited_tasks(seen))
    assert seen == ["cancelled", "unwound"]
    assert time.monotonic() - start < 1.0, "the work stopped at the timeout, not at its end"
    assert signal.getsignal(signal.SIGALRM) is raise_timeout, "Airflow's handler is back"


def test_work_that_swallows_its_cancellation_still_times_out(airflow_timeout: None) -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "kept going"
        return "finished"

    signal.setitimer(signal.ITIMER_REAL, 0.05)
    with pytest.raises(Timeout):
        run_in_new_loop(stubborn())


def test_an_error_raised_while_cancelled_is_the_cause_of_the_timeout(airflow_timeout: None) -> None:
    async def converts() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            raise RuntimeError("ledger write failed while stopping") from None

    signal.setitimer(signal.ITIMER_REAL, 0.05)
    with pytest.raises(Timeout) as raised:
        run_in_new_loop(converts())
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_without_a_timeout_the_result_comes_back_and_the_handler_is_untouched(airflow_timeout: None) -> None:
    async def quick() -> int:
        await asyncio.sleep(0)
        return 7

    assert run_in_new_loop(quick()) == 7
    assert signal.getsignal(signal.SIGALRM) is raise_timeout


def test_off_the_main_thread_it_runs_plainly() -> None:
    async def quick() -> str:
        return threading.current_thread().name

    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(run_in_new_loop(quick())), name="worker")
    worker.start()
    worker.join()
    assert results == ["worker"]


def test_an_alarm_while_the_loop_is_made_is_raised_and_the_work_never_starts(
    airflow_timeout: None, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    """The signal lands before the loop runs (CI saw it land in a garbage collector's weakref callback,
    where Airflow's handler's exception was dropped)."""
    make_loop = asyncio.events.new_event_loop

    def alarm_then_make_loop() -> asyncio.AbstractEventLoop:
        signal.raise_signal(signal.SIGALRM)
        return make_loop()

    monkeypatch.setattr(asyncio.events, "new_event_loop", alarm_then_make_loop)
    started: list[str] = []

    async def work() -> None:
        started.append("work")

    with pytest.raises(Timeout):
        run_in_new_loop(work())
    assert started == []
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # closed, not left unawaited
    assert signal.getsignal(signal.SIGALRM) is raise_timeout


def test_an_alarm_while_the_loop_stops_is_raised(airflow_timeout: None) -> None:
    """The work has returned; the loop is cancelling a task it left behind when the signal lands."""
    lingering: set[asyncio.Task[None]] = set()

    async def leaves_a_task_behind() -> str:
        async def sleeper() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                signal.raise_signal(signal.SIGALRM)
                raise

        lingering.add(asyncio.get_running_loop().create_task(sleeper()))
        await asyncio.sleep(0)
        return "returned"

    with pytest.raises(Timeout):
        run_in_new_loop(leaves_a_task_behind())
    assert signal.getsignal(signal.SIGALRM) is raise_timeout
