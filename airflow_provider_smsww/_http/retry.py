"""How a call is retried, shared by the sync and async SMS clients and by OAuth: the retry policy, for
each attempt's outcome whether to wait and try again (:meth:`Retrying.decide`), and the one attempt
loop of each kind (:meth:`Retrying.run`, :meth:`Retrying.arun`). No I/O of its own: the loops call the
attempt and the sleep they are given, so every caller decides the same way by construction (see
:mod:`~airflow_provider_smsww._http.client` for the rules). :class:`RequestPlan` adds the SMS API's
settings and how an SMS call ends.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from airflow_provider_smsww import __version__
from airflow_provider_smsww._http.ratelimit import RateLimiter, Turn
from airflow_provider_smsww._http.responses import error_from_response, parse_retry_after
from airflow_provider_smsww.exceptions import SmsWwAuthError, SmsWwSendUncertainError, SmsWwTransportError

if TYPE_CHECKING:
    from airflow_provider_smsww._http.auth import TokenMinter

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-smsww/{__version__}"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` is a floor, capped by ``max_retry_after``.

    A server asking to wait longer than ``max_retry_after`` gets a :class:`SmsWwRateLimitError` at once
    (with ``retry_after`` set) rather than a worker slot held for that long.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))
        return max(backoff, retry_after or 0.0)


@dataclass
class Outcome:
    """What one attempt produced: a response, or a transport error before or after the request was sent."""

    response: httpx.Response | None = None
    error: httpx.TransportError | None = None

    @property
    def never_sent(self) -> bool:
        """True when the server cannot have seen the request: the connection was never made."""
        return isinstance(self.error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


@dataclass
class Retrying:
    """The retries of one host's calls: the policy, the jitter, and the limiter every attempt waits for
    (its pace, which every answer adapts, and the pause a retried 429 sets). Needs no credentials, so the
    SMS clients and OAuth (which has a limiter of its own: another host, not paced by the SMS rate) use
    the same rules.

    A call is named by ``call`` in the log lines (e.g. ``GET /messages/{id}`` or ``DELETE /tokens/...``:
    never a secret), and ``safe`` is True for calls that may be repeated freely (reads, dry runs).
    """

    policy: RetryPolicy
    rng: random.Random = field(default_factory=random.Random)
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def decide(self, call: str, outcome: Outcome, attempt: int, safe: bool) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop here."""
        if attempt >= self.policy.max_retries:
            return None
        response = outcome.response
        if response is None:
            if not (safe or outcome.never_sent):
                return None
            wait = self.policy.delay(attempt, None, self.rng)
            what = f"failed ({type(outcome.error).__name__})"
        else:
            status = response.status_code
            if status not in RETRYABLE_STATUS or (status != 429 and not safe):
                return None
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                return None
            wait = self.policy.delay(attempt, retry_after, self.rng)
            what = f"answered {status}"
        log.warning("%s %s; retry %d/%d in %.2fs", call, what, attempt + 1, self.policy.max_retries, wait)
        return wait

    def note_answer(self, outcome: Outcome, wait: float | None, turn: Turn) -> float:
        """Tell the limiter what the gateway answered the attempt that started at ``turn``. After a
        retried 429 (``wait`` set), first pause the limiter's requests for its ``Retry-After`` (else this
        wait), so that the adaptive rate cut by the 429 climbs back from the pause's end; the pause's end,
        which this request's own wait covers (0 when nothing was paused)."""
        response = outcome.response
        if response is None:
            return 0.0
        throttled = response.status_code == 429
        pause_end = 0.0
        if throttled and wait is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            pause_end = self.limiter.pause(wait if retry_after is None else retry_after)
        self.limiter.answered(turn, throttled)
        return pause_end

    def run(
        self, call: str, safe: bool, attempt: Callable[[], Outcome], sleep: Callable[[float], None]
    ) -> Outcome:
        """Make ``attempt`` until :meth:`decide` stops; the last outcome (sync callers)."""
        tries, own_pause = 0, 0.0
        while True:
            turn = self.limiter.wait(sleep, own_pause)
            outcome = attempt()
            wait = self.decide(call, outcome, tries, safe)
            own_pause = max(own_pause, self.note_answer(outcome, wait, turn))
            if wait is None:
                return outcome
            sleep(wait)
            tries += 1

    async def arun(
        self,
        call: str,
        safe: bool,
        attempt: Callable[[], Awaitable[Outcome]],
        sleep: Callable[[float], Awaitable[None]],
    ) -> Outcome:
        """Async twin of :meth:`run`."""
        tries, own_pause = 0, 0.0
        while True:
            turn = await self.limiter.await_turn(sleep, own_pause)
            outcome = await attempt()
            wait = self.decide(call, outcome, tries, safe)
            own_pause = max(own_pause, self.note_answer(outcome, wait, turn))
            if wait is None:
                return outcome
            await sleep(wait)
            tries += 1


class RequestPlan:
    """The SMS API's settings and how an SMS call ends, shared by the sync and async clients (no I/O here)."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        minter: TokenMinter | None,
        retry: RetryPolicy,
        rng: random.Random | None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if not token and minter is None:
            raise SmsWwAuthError("No credentials: give a token, or an account email and API key to mint one.")
        self.base_url = base_url.rstrip("/")
        self.static_token = token
        self.minter = minter
        self.retrying = Retrying(retry, rng or random.Random(), rate_limiter or RateLimiter())

    @property
    def retry(self) -> RetryPolicy:
        return self.retrying.policy

    @property
    def rate_limiter(self) -> RateLimiter:
        return self.retrying.limiter

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}

    def finish(self, method: str, path: str, outcome: Outcome, safe: bool) -> httpx.Response:
        """The final response of a call, or the error that ends it."""
        response = outcome.response
        where = f"{method} {path}"
        if response is None:
            err = outcome.error
            if not (safe or outcome.never_sent):
                raise SmsWwSendUncertainError(
                    f"{where}: the connection failed after the request was sent ({type(err).__name__}); "
                    "the message may or may not have been accepted"
                ) from None
            raise SmsWwTransportError(
                f"{where}: could not reach the API ({type(err).__name__}: {err})"
            ) from None
        if response.status_code < 400:
            return response
        if response.status_code >= 500 and not safe:
            raise SmsWwSendUncertainError(
                f"{where} answered {response.status_code}; the message may or may not have been accepted",
                status_code=response.status_code,
            )
        raise error_from_response(response)
