"""The account's rate limit, as the gateway enforces it: a token bucket over every request to the SMS API
(sends and reads; not the OAuth service, another host in production), refilled at ``rate_limit``
requests per second and holding one second of them. A request that finds it empty is answered 429 with
``Retry-After``: the whole seconds until the bucket holds a token again (RFC 9110's delay-seconds).

Why in the sandbox: the limit is the account's, shared by every process that sends through it, so a
deployment's pacing can only be tried against a gateway that counts them all (``smsww-sandbox
--rate-limit 20``). The spec documents no rate-limit headers, so the sandbox sends none but Retry-After.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from airflow_provider_smsww.sandbox.faults import SEND_PATHS

#: The SMS API's paths: what the account's rate limit counts.
RATE_LIMITED_PATHS = (*SEND_PATHS, "/messages")


class AccountRateLimit:
    """A token bucket of ``rate`` tokens a second, ``max(1, rate)`` at most (one second's worth). Thread-safe.

    :param rate: requests per second the account may make.
    :param clock: a monotonic clock in seconds (the sandbox's).
    """

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        if not rate > 0:
            raise ValueError(f"rate_limit must be a positive number of requests per second: {rate!r}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._at = clock()

    def admit(self, path: str) -> int | None:
        """Take a token for a request to ``path``: None when admitted (or the path is not counted), else
        the ``Retry-After`` seconds to answer with.

        :param path: the request's path.
        """
        if not path.startswith(RATE_LIMITED_PATHS):
            return None
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return max(1, math.ceil((1 - self._tokens) / self.rate))
