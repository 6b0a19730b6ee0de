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

No I/O and no event loop here: :meth:`RateLimiter.reserve` is arithmetic under a thread lock, and the
sync and async clients sleep the way they already do, so one limiter serves both, from any thread or loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from airflow_provider_smsww._http.adaptive import AdaptiveRate
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
    """

    def __init__(self, rate: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate_limit must be a positive number of requests per second, not {rate!r}")
        self.rate_limit = rate
        self.adaptive = AdaptiveRate(rate) if rate else None
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0.0  # earliest start of the next paced request
        self._paused_until = 0.0
        self._changes = 0  # pauses and cuts so far: a sleeper woken after a new one takes a new slot
        self._cuts = 0  # rate cuts so far: a 429 for a request started before the last one is no news

    @property
    def interval(self) -> float:
        """Seconds between request starts at the rate allowed now (0: not paced)."""
        with self._lock:
            return 1.0 / self.adaptive.rate(self._clock()) if self.adaptive else 0.0

    def reserve(self, own_pause: float = 0.0) -> tuple[float, Turn]:
        """Take the next start slot: the seconds to wait before starting (0: start now), and the
        :class:`Turn` it was taken at. ``own_pause`` is the end of a pause the caller set itself (its own
        retry wait already covers it)."""
        with self._lock:
            now = self._clock()
            paused_until = self._paused_until if self._paused_until > own_pause else 0.0
            start = max(now, self._next, paused_until)
            if self.adaptive:
                self._next = start + 1.0 / self.adaptive.rate(start)
            return start - now, Turn(self._changes, self._cuts)

    def pause(self, seconds: float) -> float:
        """Hold every request start for ``seconds`` from now (a 429's ``Retry-After``); the pause's end."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._changed()
            return self._paused_until

    def answered(self, turn: Turn, throttled: bool) -> None:
        """What the gateway answered a request that started at ``turn``: a 429 (``throttled``) cuts the
        adaptive rate, once per pause; anything else counts as accepted. Call it after :meth:`pause`, so
        that the rate climbs back from the pause's end."""
        if self.adaptive is None:
            return
        with self._lock:
            now = self._clock()
            if not throttled:
                self.adaptive.accepted(now)
            elif turn.cuts == self._cuts:
                self.adaptive.throttled(now, self._paused_until)
                self._cuts += 1
                self._changed()

    def _changed(self) -> None:
        """A pause or a cut: slots reserved at the old pace are given back (their sleepers take new ones)."""
        self._changes += 1
        self._next = min(self._next, self._clock())

    def wait(self, sleep: Callable[[float], None], own_pause: float = 0.0) -> Turn:
        """Block until this request may start (sync client); the turn it starts at."""
        delay, turn = self.reserve(own_pause)
        while delay > 0:
            sleep(delay)
            if self._changes == turn.changes:  # no new pause or cut while sleeping: the slot is ours
                return turn
            delay, turn = self.reserve(own_pause)
        return turn

    async def await_turn(self, sleep: Callable[[float], Awaitable[None]], own_pause: float = 0.0) -> Turn:
        """Wait until this request may start (async client); the turn it starts at."""
        delay, turn = self.reserve(own_pause)
        while delay > 0:
            await sleep(delay)
            if self._changes == turn.changes:
                return turn
            delay, turn = self.reserve(own_pause)
        return turn


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_rate_limiter(conn_id: str, base_url: str, rate: float | None) -> RateLimiter:
    """The process-wide rate limiter of a connection, so that every client on it (a task's sync and async
    clients, the triggers of one triggerer) shares the rate and the 429 pauses; a new one when the
    configured rate changed."""
    key = (conn_id, base_url)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None or limiter.rate_limit != (rate or None):
            limiter = _LIMITERS[key] = RateLimiter(rate)
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
