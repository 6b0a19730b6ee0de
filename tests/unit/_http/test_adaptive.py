"""The adaptive rate, on a fake clock: the configured rate until the gateway throttles, a cut on a 429
(to the accepted rate when that is lower), a climb back after, never above ``rate_limit``, never below
the floor; and the limiter that applies it (one cut per pause, slots given back after a cut)."""

from __future__ import annotations

import pytest

from airflow_provider_smsww._http.adaptive import BACKOFF, DEEPEST_CUT, FLOOR_SHARE, AdaptiveRate
from airflow_provider_smsww._http.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def accepted_for(rate: AdaptiveRate, seconds: float, per_second: float, start: float) -> float:
    """Record ``per_second`` accepted requests for ``seconds`` from ``start``; the time after the last."""
    step = 1.0 / per_second
    moment = start
    for _ in range(round(seconds * per_second)):
        rate.accepted(moment)
        moment += step
    return moment


def test_alone_it_keeps_the_configured_rate() -> None:
    rate = AdaptiveRate(20)
    end = accepted_for(rate, 30, 20, start=0.0)
    assert rate.rate(end) == 20


def test_a_429_cuts_the_rate_by_the_backoff_when_the_gateway_accepted_as_much() -> None:
    rate = AdaptiveRate(20)
    end = accepted_for(rate, 5, 20, start=0.0)
    rate.throttled(end, climb_from=end)
    assert rate.rate(end) == pytest.approx(20 * BACKOFF)


def test_a_429_cuts_to_the_accepted_rate_when_that_is_lower() -> None:
    """Eight processes at 20/s each against 20/s: the gateway accepted about 2.5/s of this one's."""
    rate = AdaptiveRate(20)
    end = accepted_for(rate, 2, 2.5, start=0.0)
    rate.throttled(end, climb_from=end)
    assert rate.rate(end) == pytest.approx(2.5, rel=0.15)


def test_the_climb_back_starts_when_the_pause_ends_and_reaches_the_throttled_rate_then_more() -> None:
    rate = AdaptiveRate(20)
    end = accepted_for(rate, 2, 5, start=0.0)
    before = rate.rate(end)  # 20: never throttled
    rate.throttled(end, climb_from=end + 1.0)
    cut = rate.rate(end)
    assert rate.rate(end + 1.0) == pytest.approx(cut)  # nothing regained during the pause
    rising = [rate.rate(end + 1.0 + t) for t in (1, 2, 4, 8)]
    assert cut < rising[0] < rising[1] < rising[2] <= rising[3]
    assert rate.rate(end + 60) == before  # back at the ceiling in the end


def test_one_429_cuts_to_a_tenth_at_most_even_when_nothing_was_accepted() -> None:
    rate = AdaptiveRate(20)
    rate.rate(0.0)  # the first request starts...
    rate.throttled(0.01, climb_from=0.01)  # ...and is throttled: nothing accepted yet
    assert rate.rate(0.01) == pytest.approx(20 * DEEPEST_CUT)


def test_never_above_the_configured_rate_nor_below_the_floor() -> None:
    rate = AdaptiveRate(20)
    moment = 0.0
    for _ in range(40):  # throttled over and over, nothing accepted
        rate.throttled(moment, climb_from=moment)
        assert rate.rate(moment) >= 20 * FLOOR_SHARE
        moment += 0.5
    assert rate.rate(moment - 0.5) == pytest.approx(20 * FLOOR_SHARE)
    assert max(rate.rate(moment + t) for t in range(0, 600, 7)) == 20


def test_the_limiter_cuts_once_per_pause_and_gives_back_the_slots_of_the_old_pace() -> None:
    clock = Clock()
    gate = RateLimiter(20, clock=clock)
    turns = [gate.reserve()[1] for _ in range(10)]  # ten requests reserve slots 50 ms apart
    assert gate.adaptive is not None
    clock.now += 0.05
    gate.pause(1.0)
    gate.answered(turns[0], throttled=True)  # the first cuts the rate
    cut = gate.adaptive.rate(clock.now)
    assert cut < 20
    for turn in turns[1:]:  # the others started before the cut: no further cut
        gate.answered(turn, throttled=True)
    assert gate.adaptive.rate(clock.now) == cut
    delay, turn = gate.reserve()
    assert delay == pytest.approx(1.0)  # the pause, not the tenth slot of the old pace
    assert gate.reserve()[0] == pytest.approx(1.0 + 1 / cut)
    clock.now += 1.0
    gate.answered(turn, throttled=True)  # a request that started after the cut: news
    assert gate.adaptive.rate(clock.now) < cut


def test_no_rate_no_adaptation() -> None:
    gate = RateLimiter()
    turn = gate.reserve()[1]
    gate.answered(turn, throttled=True)
    assert gate.adaptive is None
    assert gate.interval == 0.0
