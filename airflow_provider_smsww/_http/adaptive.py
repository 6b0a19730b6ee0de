"""Adaptive pacing: the request rate one process allows itself under an account's rate limit that other
processes share, learnt from the gateway's 429s alone.

Why: the gateway's rate limit is the account's, but every worker, triggerer and TaskFlow task that sends
through it is its own process. Each pacing itself at the connection's ``rate_limit`` sends N times the
limit from N processes, and the gateway answers the excess 429 (measured: 10% of requests with 4
processes, 18% with 8). The processes of one host share their schedule and this rate through a file
(:mod:`~airflow_provider_smsww._http.pace`), so they pace as one client. Between hosts nothing is shared
(no extra service, no database row, no Airflow pool: a pool bounds running tasks, not requests per
second) that tells one client how many others there are; the gateway's 429 does, and every one hears it.

How, after the AWS SDKs' adaptive retry mode (botocore's ``ClientRateLimiter`` and its CUBIC
calculator): a process starts at the configured ``rate_limit`` (alone, it keeps it and never hears a 429).
A 429 cuts its rate to the lower of :data:`BACKOFF` times the current rate and the rate the gateway
actually accepted from it over the last :data:`ACCEPTED_WINDOW` seconds (from the host, when its
processes share the rate; so N processes that start together land near their share in a step or two,
not in many halvings; never below
:data:`DEEPEST_CUT` of the current rate at once). After a cut the rate climbs back on a
cubic curve: fast at first, flat around the rate that was throttled, then faster again, so a process
whose neighbours have finished takes their share. Never above ``rate_limit``, never below
:data:`FLOOR_SHARE` of it. One cut per pause: a 429 for a request that started before the last cut
(its neighbours in flight) is no news.

What it remembers is a :class:`RateState` of fixed size (the accepted requests are counted in
:data:`WINDOW_BUCKETS` slices of the window, not one entry each), so that the processes of a host can keep
one in a file. No I/O, no sleeping and no lock here:
:class:`~airflow_provider_smsww._http.ratelimit.RateLimiter` calls it under its locks with its clock, so
tests drive it with a fake one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: After a 429, the rate is at most this share of the rate that was throttled (botocore: 0.7).
BACKOFF = 0.7
#: The cubic curve's steepness as a share of ``rate_limit`` per second cubed: with 20 requests/s, 0.1
#: (botocore's 0.4 is for one client alone; a slower climb costs fewer 429s when processes share).
CUBIC_SCALE = 0.005
#: Seconds over which the accepted rate is measured when a 429 cuts the rate.
ACCEPTED_WINDOW = 2.0
#: The window is counted in this many slices (an eighth of it: the measure is exact to a quarter second).
WINDOW_BUCKETS = 8
#: One 429 cuts the rate to no less than this share of it (a process whose first request was throttled
#: has accepted nothing yet: that says little about its share).
DEEPEST_CUT = 0.1
#: The rate never drops below this share of ``rate_limit`` (50 processes sharing it evenly).
FLOOR_SHARE = 0.02

_BUCKET = ACCEPTED_WINDOW / WINDOW_BUCKETS


@dataclass
class RateState:
    """What the adaptive rate remembers: the curve since the last 429, and the accepted requests of the
    last :data:`ACCEPTED_WINDOW` seconds.

    :param throttled_at: the curve's plateau, the rate the last 429 cut (0 before any).
    :param climb_from: when the climb after the last cut starts (None: no cut).
    :param plateau_after: seconds from the climb's start to the plateau.
    :param first_seen: the first request's time (the window is shorter before it is full).
    :param newest_bucket: the index of the newest slice of the window (time // slice length).
    :param counts: accepted requests per slice, oldest first.
    """

    throttled_at: float = 0.0
    climb_from: float | None = None
    plateau_after: float = 0.0
    first_seen: float | None = None
    newest_bucket: int = 0
    counts: list[int] = field(default_factory=lambda: [0] * WINDOW_BUCKETS)


class AdaptiveRate:
    """The rate one client allows itself: ``rate_limit`` until the gateway throttles, then a cut and a
    cubic climb back (see the module docstring).

    :param rate_limit: the configured rate (requests per second): the account's rate limit, the ceiling.
    """

    def __init__(self, rate_limit: float) -> None:
        if not rate_limit > 0:
            raise ValueError(f"rate_limit must be a positive number of requests per second: {rate_limit!r}")
        self.rate_limit = rate_limit
        self.floor = rate_limit * FLOOR_SHARE
        self._steepness = rate_limit * CUBIC_SCALE
        #: Replaced by the limiter with the state it keeps (its process's, or its host's).
        self.state = RateState()

    def rate(self, now: float) -> float:
        """The requests per second allowed at ``now``.

        :param now: the clock's time.
        """
        state = self.state
        if state.first_seen is None:
            state.first_seen = now
        if state.climb_from is None:
            return self.rate_limit
        since = max(0.0, now - state.climb_from)
        curve = state.throttled_at + self._steepness * (since - state.plateau_after) ** 3
        return min(self.rate_limit, max(self.floor, curve))

    def accepted(self, now: float) -> None:
        """The gateway accepted a request (any answer but 429) at ``now``.

        :param now: the clock's time.
        """
        if self.state.first_seen is None:
            self.state.first_seen = now
        self._slide(now)
        self.state.counts[-1] += 1

    def throttled(self, now: float, climb_from: float) -> None:
        """The gateway answered 429: cut the rate, and climb back from ``climb_from`` (the end of the
        pause the 429 set; ``now`` when none).

        :param now: the clock's time.
        :param climb_from: when the climb starts.
        """
        current = self.rate(now)
        cut = max(self.floor, DEEPEST_CUT * current, min(BACKOFF * current, self.accepted_rate(now)))
        self.state.throttled_at = current
        self.state.plateau_after = ((current - cut) / self._steepness) ** (1 / 3)
        self.state.climb_from = max(now, climb_from)

    def accepted_rate(self, now: float) -> float:
        """Requests per second the gateway accepted over the last :data:`ACCEPTED_WINDOW` seconds (or
        since the first request, when sooner).

        :param now: the clock's time.
        """
        self._slide(now)
        first = now if self.state.first_seen is None else self.state.first_seen
        covered = now - (self.state.newest_bucket - WINDOW_BUCKETS + 1) * _BUCKET  # the slices' span
        span = min(covered, now - first)
        return sum(self.state.counts) / span if span > 0 else self.rate_limit

    def _slide(self, now: float) -> None:
        """Move the window so that its newest slice holds ``now``: older slices are forgotten."""
        state = self.state
        shift = math.floor(now / _BUCKET) - state.newest_bucket
        if shift > 0:
            kept = state.counts[shift:] if shift < WINDOW_BUCKETS else []
            state.counts = kept + [0] * (WINDOW_BUCKETS - len(kept))
            state.newest_bucket += shift
