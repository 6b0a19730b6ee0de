"""Issue 23 item 2: unknown outcomes settle from evidence. 300 recipients, 10% of sends answered 5xx
before storing (and, where a resend could double, 5% stored then answered 5xx), against the in-process
sandbox: a consistent listing finishes in well under 2 minutes; a listing 60 s
behind and a gateway clock 6 minutes behind with no ``Date`` header text nobody twice.

The clock is real time plus every wait skipped: the sends and look-ups take the time they take, the
waits between look-ups cost nothing, and the sandbox (its listing lag, its ``createdAt``) runs on the
same clock. The sandbox's own count per number is the judge.

Issue 28 item 4: a try killed at half of 400 recipients, resumed at once behind a listing 30 s and
120 s late, texts nobody twice (the resumed try's speed on a consistent listing is timed with a real
killed process in ``test_resume_after_kill.py``).
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_smsww._http.client import AsyncSmsWwClient
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.sandbox.faults import FaultConfig
from airflow_provider_smsww.sandbox.server import InProcessSandbox, in_process_sandbox
from airflow_provider_smsww.sending import bulk
from airflow_provider_smsww.sending.batch import check_locally
from airflow_provider_smsww.sending.ledger import MemoryLedger, TaskStateLedger
from tests.fakes import FakeStore, connect

pytestmark = pytest.mark.integration

TEXT = "Your parcel is on its way"
RECIPIENTS = [f"+39347{i:07d}" for i in range(300)]


class SkippingClock:
    """Real time plus every ``sleep`` skipped; ``waited`` is the sum of the skipped sleeps."""

    def __init__(self) -> None:
        self.waited = 0.0

    def seconds(self) -> float:
        return time.monotonic() + self.waited

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.waited)

    async def sleep(self, seconds: float) -> None:
        self.waited += seconds


def use(monkeypatch: pytest.MonkeyPatch, box: InProcessSandbox) -> None:
    """The hook's clients talk to the in-process app (no socket, hence no ``Date`` header)."""
    connect(monkeypatch, box, backoff_base=0.001, backoff_max=0.01)
    monkeypatch.setattr(
        "airflow_provider_smsww._http.client.AsyncSmsWwClient",
        functools.partial(AsyncSmsWwClient, transport=box.async_transport),
    )


async def send_until_done(clock: SkippingClock, max_tries: int = 4) -> list[Any]:
    """Tries of the batch on one ledger (as task retries would), until one ends without failures."""
    ledger, reports = MemoryLedger(), []
    batch = check_locally(RECIPIENTS, TEXT)
    for _ in range(max_tries):
        hook = SmsWwHook()
        try:
            report = await bulk.send_all(hook, batch, ledger, now=clock.now, sleep=clock.sleep)
            assert (await hook.get_async_conn()).clock_offset is None  # no Date header to go by
        finally:
            await hook.aclose()
        reports.append(report)
        if not report.failures:
            return reports
    raise AssertionError(f"not done in {max_tries} tries: {reports[-1].failures}")


def texted_once(box: InProcessSandbox) -> None:
    assert box.sandbox.per_recipient() == dict.fromkeys(RECIPIENTS, 1)


async def test_a_consistent_listing_settles_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every accepted message is listed at once: each unknown outcome is resent after the 15 s floor,
    not after 5 minutes; the 300 finish in well under 2 minutes (the issue measured over 15)."""
    clock = SkippingClock()
    faults = FaultConfig(rate_5xx=0.1, seed=23)
    with in_process_sandbox(faults=faults, credit=10_000, clock=clock.seconds, wall_clock=clock.now) as box:
        use(monkeypatch, box)
        started = time.monotonic()
        await send_until_done(clock)
        elapsed = time.monotonic() - started + clock.waited
        texted_once(box)
        lost = sum(1 for f in box.faults.log if f.fault == "503")
    assert lost >= 25  # about 10% of 300, and their resends
    assert elapsed < 120, elapsed
    assert clock.waited < 90, clock.waited


async def test_a_listing_60_s_behind_texts_nobody_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing shows a message 60 s after it is stored: no message of the batch is listed at the
    first look-ups (no evidence: no resend), then the observed lag sets a window of 3 x 60 s; the
    unknown outcomes that were stored (5xx after storing) are found, the others resent once absent
    that long."""
    clock = SkippingClock()
    faults = FaultConfig(rate_5xx=0.1, rate_5xx_after=0.05, seed=60)
    config = {"credit": 10_000, "clock": clock.seconds, "wall_clock": clock.now, "listing_lag": 60.0}
    with in_process_sandbox(faults=faults, **config) as box:
        use(monkeypatch, box)
        resends: list[float] = []
        original = bulk.log.warning

        def warning(msg: str, *args: Any) -> None:
            if "sending again" in msg:
                resends.append(args[1])  # the window the resend waited for
            original(msg, *args)

        monkeypatch.setattr(bulk.log, "warning", warning)
        await send_until_done(clock)
        texted_once(box)
    assert resends
    assert min(resends) >= 3 * 55  # about 3 x the 60 s lag, never the 15 s floor


async def test_a_gateway_clock_6_minutes_behind_without_date_texts_nobody_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's ``createdAt`` is 6 minutes behind ours and its answers carry no ``Date``: the
    batch's accepted messages show the offset, so the unknown outcomes it stored are found (a fixed
    5-minute allowance would miss them all and resend them)."""
    clock = SkippingClock()
    faults = FaultConfig(rate_5xx=0.1, rate_5xx_after=0.05, seed=6)

    def behind() -> datetime:
        return clock.now() - timedelta(minutes=6)

    with in_process_sandbox(faults=faults, credit=10_000, clock=clock.seconds, wall_clock=behind) as box:
        use(monkeypatch, box)
        await send_until_done(clock)
        texted_once(box)
        stored_then_5xx = [f for f in box.faults.log if f.fault == "503-after"]
    assert len(stored_then_5xx) >= 10


#: The batch of the killed-try tests (issue 28 item 4), and the accepted messages at which the try dies.
RESUMED = [f"+39348{i:07d}" for i in range(400)]
HALF = len(RESUMED) // 2


class DiesAtHalf(FakeStore):
    """The task state store of a try that dies once half the batch is recorded: the write that would
    go past half fails, and with it the try, as a killed worker would (its round stays open; what was
    accepted but not yet written is unrecorded). Once ``dead``, writes go through again (the next try)."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    def set(self, key: str, value: Any) -> None:
        if not self.dead and key.startswith("smsww:accepted:") and len(self.recorded()) + len(value) > HALF:
            self.dead = True
            raise RuntimeError("worker killed")
        super().set(key, value)


@pytest.mark.parametrize("lag", [30.0, 120.0])
async def test_a_try_killed_at_half_resumes_behind_a_lagging_listing_texting_nobody_twice(
    monkeypatch: pytest.MonkeyPatch, lag: float
) -> None:
    """400 recipients, the try dies at half the batch, the next starts at once; the listing shows a
    message ``lag`` s after it is stored. The resumed try takes every unrecorded recipient for an
    unknown outcome sent as late as its own start, and its evidence is the earlier try's accepted
    messages: none is listed for about ``lag`` s, so nothing is resent before they are (and the window
    grows with their absence); those the killed try had stored unrecorded are found, not resent."""
    clock = SkippingClock()
    config = {"credit": 10_000, "clock": clock.seconds, "wall_clock": clock.now, "listing_lag": lag}
    with in_process_sandbox(**config) as box:
        use(monkeypatch, box)
        store = DiesAtHalf()
        with pytest.raises(RuntimeError, match="worker killed"):
            await one_try(store, clock)
        stored_at_kill = len(box.sandbox.accepted())
        store.dead = True
        windows = resend_windows(monkeypatch)
        resumed_at = clock.now()
        report = await one_try(store, clock)
        resumed_for = (clock.now() - resumed_at).total_seconds()
        assert box.sandbox.per_recipient() == dict.fromkeys(RESUMED, 1)
    assert not report.failures
    assert len(report.records) == len(RESUMED)
    # Some the killed try had stored were unrecorded (at least the ids of the write that failed): resent
    # early, they would be texted twice. The write that failed was the one past half.
    assert report.reused <= HALF <= stored_at_kill < len(RESUMED)
    assert stored_at_kill > report.reused
    assert windows
    assert min(windows) >= lag  # never resent before the listing could have shown it
    print(f"\nRESUMED lag={lag:g}s stored_at_kill={stored_at_kill} window={min(windows):g}s", end="")
    print(f" resumed_try={resumed_for:.0f}s (simulated)")


async def one_try(store: FakeStore, clock: SkippingClock) -> Any:
    """One try of the 400 on the task state store ``store``, through its own hook."""
    hook = SmsWwHook()
    try:
        batch = check_locally(RESUMED, TEXT)
        return await bulk.send_all(hook, batch, TaskStateLedger(store), now=clock.now, sleep=clock.sleep)
    finally:
        await hook.aclose()


def resend_windows(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The settle window of each resend the bulk send logs from now on."""
    windows: list[float] = []
    original = bulk.log.warning

    def warning(msg: str, *args: Any) -> None:
        if "sending again" in msg:
            windows.append(args[1])
        original(msg, *args)

    monkeypatch.setattr(bulk.log, "warning", warning)
    return windows
