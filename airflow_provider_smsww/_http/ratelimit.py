"""The client's rate limiter: an optional request rate (a gateway's rate limit, the connection extra
``rate_limit`` in requests per second) and a pause shared by every request of the connection when
one of them is answered 429 with ``Retry-After``.

The rate is adaptive (:mod:`~airflow_provider_smsww._http.adaptive`): ``rate_limit`` is the account's,
shared by every process that sends through it, so a process starts at it and slows down when the gateway
throttles it, then climbs back; one that sends alone keeps it.

Why shared: a bulk send has tens of requests in flight. When the gateway says "slow down" to one of
them, the others are about to hear the same; without a shared pause each would spend an attempt (and
its own retry budget) learning it. With the limiter, every request that starts after the 429 waits until
the gateway's time, so a rate-limited account costs one 429, not one per request in flight.

No event loop here: :meth:`RateLimiter.reserve` is arithmetic under a thread lock (and, for a paced
connection, the host's file lock: :mod:`~airflow_provider_smsww._http.pace`), and the sync and async
clients sleep the way they already do, so one limiter serves both, from any thread or loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from airflow_provider_smsww._http.adaptive import AdaptiveRate
from airflow_provider_smsww._http.pace import HostPace, Pace, ProcessPace, pace_for
from airflow_provider_smsww.exceptions import SmsWwValidationError


class Turn(NamedTuple):
    """When a request took its start slot: how many pauses and cuts had been made by then."""

    changes: int
    cuts: int


class RateLimiter:
    """Spaces request starts ``1 / rate`` seconds apart (when a rate is given: adaptive, see
    :mod:`~airflow_provider_smsww._http.adaptive`) and holds every start during a pause.

    :param rate: the connection's ``rate_limit`` in requests per second (the ceiling of the adaptive
        rate), or None for no pacing (the 429 pause still applies).
    :param clock: a monotonic clock in seconds (tests pass a fake one).
    :param pace: where the schedule is kept: this process's (the default) or the host's, shared by its
        processes (:mod:`~airflow_provider_smsww._http.pace`).
    """

    def __init__(
        self,
        rate: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        pace: ProcessPace | HostPace | None = None,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate_limit must be a positive number of requests per second, not {rate!r}")
        self.rate_limit = rate
        self.pace = pace or ProcessPace()
        self.adaptive = AdaptiveRate(rate) if rate else None
        self._clock = clock
        self._lock = threading.Lock()

    @contextmanager
    def _holding(self) -> Iterator[Pace]:
        """The schedule under this process's lock (and the host's, when shared), the adaptive rate
        working on the state kept there."""
        with self._lock, self.pace.hold() as pace:
            if self.adaptive:
                self.adaptive.state = pace.rate
            yield pace

    @property
    def interval(self) -> float:
        """Seconds between request starts at the rate allowed now (0: not paced)."""
        with self._holding():
            return 1.0 / self.adaptive.rate(self._clock()) if self.adaptive else 0.0

    def reserve(self, own_pause: float = 0.0) -> tuple[float, Turn]:
        """Take the next start slot: the seconds to wait before starting (0: start now), and the
        :class:`Turn` it was taken at. ``own_pause`` is the end of a pause the caller set itself (its own
        retry wait already covers it)."""
        with self._holding() as pace:
            now = self._clock()
            paused_until = pace.paused_until if pace.paused_until > own_pause else 0.0
            start = max(now, pace.next_start, paused_until)
            if self.adaptive:
                pace.next_start = start + 1.0 / self.adaptive.rate(start)
            return start - now, Turn(pace.changes, pace.cuts)

    def pause(self, seconds: float) -> float:
        """Hold every request start for ``seconds`` from now (a 429's ``Retry-After``); the pause's end."""
        with self._holding() as pace:
            pace.paused_until = max(pace.paused_until, self._clock() + seconds)
            self._changed(pace)
            return pace.paused_until

    def answered(self, turn: Turn, throttled: bool) -> None:
        """What the gateway answered a request that started at ``turn``: a 429 (``throttled``) cuts the
        adaptive rate, once per pause; anything else counts as accepted. Call it after :meth:`pause`, so
        that the rate climbs back from the pause's end."""
        if self.adaptive is None:
            return
        with self._holding() as pace:
            if not throttled:
                self.adaptive.accepted(self._clock())
            elif turn.cuts == pace.cuts:
                self.adaptive.throttled(self._clock(), pace.paused_until)
                pace.cuts += 1
                self._changed(pace)

    def _changed(self, pace: Pace) -> None:
        """A pause or a cut: slots reserved at the old pace are given back (their sleepers take new ones)."""
        pace.changes += 1
        pace.next_start = min(pace.next_start, self._clock())

    def _unchanged_since(self, turn: Turn) -> bool:
        with self._holding() as pace:
            return pace.changes == turn.changes

    def wait(self, sleep: Callable[[float], None], own_pause: float = 0.0) -> Turn:
        """Block until this request may start (sync client); the turn it starts at."""
        delay, turn = self.reserve(own_pause)
        while delay > 0:
            sleep(delay)
            if self._unchanged_since(turn):  # no new pause or cut while sleeping: the slot is ours
                return turn
            delay, turn = self.reserve(own_pause)
        return turn

    async def await_turn(self, sleep: Callable[[float], Awaitable[None]], own_pause: float = 0.0) -> Turn:
        """Wait until this request may start (async client); the turn it starts at."""
        delay, turn = self.reserve(own_pause)
        while delay > 0:
            await sleep(delay)
            if self._unchanged_since(turn):
                return turn
            delay, turn = self.reserve(own_pause)
        return turn


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_rate_limiter(conn_id: str, base_url: str, rate: float | None) -> RateLimiter:
    """The process-wide rate limiter of a connection, so that every client on it (a task's sync and async
    clients, the triggers of one triggerer) shares the rate and the 429 pauses; a new one when the
    configured rate changed. A paced connection keeps its schedule in the host's file, so every process
    of the host shares it too (:mod:`~airflow_provider_smsww._http.pace`)."""
    key = (conn_id, base_url)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None or limiter.rate_limit != (rate or None):
            limiter = _LIMITERS[key] = RateLimiter(rate, pace=pace_for(conn_id, base_url, rate or None))
        return limiter


def rate_from_extra(extra: Mapping[str, Any], conn_id: str) -> float | None:
    """The connection extra ``rate_limit`` (requests per second; unset: no pacing), or an error naming it."""
    value = extra.get("rate_limit")
    if value in (None, ""):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = 0.0
    if not rate > 0:
        raise SmsWwValidationError(
            f"Connection {conn_id!r}: extra 'rate_limit' must be a positive number of requests per second, "
            f"not {value!r}"
        )
    return rate
