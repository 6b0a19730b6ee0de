"""HTTP clients for the SMS Worldwide API: the only module that speaks HTTP. No Airflow import.

:class:`SmsWwClient` (sync) and :class:`AsyncSmsWwClient` (async) share everything but the I/O loop:
the request plan and the retry decision are plain functions and classes below, the error mapping is in
:mod:`~airflow_provider_smsww.responses` and token minting in :mod:`~airflow_provider_smsww.auth`, so
both clients behave the same by construction. Only the hook imports this module.

Retries. Reads (``GET``) and dry-run sends are retried with exponential backoff and full jitter on 429
(waiting at least ``Retry-After``), 5xx and transport errors: they cost nothing and change nothing. A
*real* send is retried only when the gateway provably did not process it: a connection that was never
established, or a 429 (the rate limiter refused it). When a real send may have reached the gateway (a
5xx, a timeout or a dropped connection after the request was written), the client raises
:class:`~airflow_provider_smsww.exceptions.SmsWwSendUncertainError` instead of resending, because the
API has no idempotency key and a blind retry could deliver (and bill) the SMS twice. The operator then
looks the message up in ``GET /messages`` and resends only if it is not there.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_smsww.auth import USER_AGENT
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwSendUncertainError,
    SmsWwTransportError,
    SmsWwValidationError,
)
from airflow_provider_smsww.models import Message, Region, SendRequest
from airflow_provider_smsww.responses import date_offset, error_from_response, parse_data, parse_retry_after
from airflow_provider_smsww.validation import is_message_id

if TYPE_CHECKING:
    from airflow_provider_smsww.auth import TokenMinter

log = logging.getLogger(__name__)


PRODUCTION_URL = "https://sms.openapi.com"
SANDBOX_URL = "https://test.sms.openapi.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
PAGE_SIZE = 100


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
class _Outcome:
    """What one attempt produced: a response, or a transport error before or after the request was sent."""

    response: httpx.Response | None = None
    error: httpx.TransportError | None = None
    #: False when the error came from minting a token, before the API request itself was made.
    reached_api: bool = True

    @property
    def never_sent(self) -> bool:
        """True when the server cannot have seen the request: the connection was never made."""
        if not self.reached_api:
            return True
        return isinstance(self.error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class _Plan:
    """Settings and decisions shared by the sync and async clients (no I/O here)."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        minter: TokenMinter | None,
        retry: RetryPolicy,
        rng: random.Random | None,
    ) -> None:
        if not token and minter is None:
            raise SmsWwAuthError("No credentials: give a token, or an account email and API key to mint one.")
        self.base_url = base_url.rstrip("/")
        self.static_token = token
        self.minter = minter
        self.retry = retry
        self.rng = rng or random.Random()

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}

    def decide(self, method: str, path: str, outcome: _Outcome, attempt: int, safe: bool) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop here.

        ``safe`` is True for calls that may be repeated freely (reads and dry runs).
        """
        if attempt >= self.retry.max_retries:
            return None
        response = outcome.response
        if response is None:
            if not (safe or outcome.never_sent):
                return None
            wait = self.retry.delay(attempt, None, self.rng)
            log.warning(
                "%s %s failed (%s); retry %d/%d in %.2fs",
                method,
                path,
                type(outcome.error).__name__,
                attempt + 1,
                self.retry.max_retries,
                wait,
            )
            return wait
        status = response.status_code
        if status not in RETRYABLE_STATUS or (status != 429 and not safe):
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and retry_after > self.retry.max_retry_after:
            return None
        wait = self.retry.delay(attempt, retry_after, self.rng)
        log.warning(
            "%s %s answered %d; retry %d/%d in %.2fs",
            method,
            path,
            status,
            attempt + 1,
            self.retry.max_retries,
            wait,
        )
        return wait

    def finish(self, method: str, path: str, outcome: _Outcome, safe: bool) -> httpx.Response:
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


def _send_args(request: SendRequest, region: Region) -> tuple[str, dict[str, Any], bool]:
    return f"/{region}-messages", request.wire(), request.options.dry_run


class SmsWwClient:
    """Synchronous client. One pooled ``httpx.Client`` per instance; use as a context manager or call
    :meth:`close`.

    :param base_url: the SMS API, e.g. ``https://sms.openapi.com``.
    :param token: a Bearer token; or give ``minter`` to mint tokens from an email + API key.
    :param transport: an httpx transport (tests and the in-process sandbox).
    :param sleep: how to wait between retries (tests pass a recorder instead of sleeping).
    """

    def __init__(
        self,
        base_url: str = PRODUCTION_URL,
        *,
        token: str | None = None,
        minter: TokenMinter | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._plan = _Plan(
            base_url=base_url, token=token, minter=minter, retry=retry or RetryPolicy(), rng=rng
        )
        self._http = httpx.Client(timeout=timeout, limits=limits, transport=transport)
        self.clock_offset: timedelta | None = None  # the gateway's clock minus ours (its Date header)
        self._sleep = sleep

    def __enter__(self) -> SmsWwClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _token(self) -> str:
        if self._plan.static_token:
            return self._plan.static_token
        assert self._plan.minter is not None
        return self._plan.minter.get(self._http)

    def _attempt(self, method: str, url: str, **kwargs: Any) -> _Outcome:
        reached_api = False
        try:
            headers = self._plan.headers(self._token())
            reached_api = True
            response = self._http.request(method, url, headers=headers, **kwargs)
            if response.status_code == 401 and self._plan.minter is not None:
                # A minted token may have been revoked or expired early: mint once more (a 401 means
                # the call was not processed, so repeating it is safe).
                self._plan.minter.invalidate()
                reached_api = False
                headers = self._plan.headers(self._token())
                reached_api = True
                response = self._http.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            return _Outcome(error=exc, reached_api=reached_api)
        self.clock_offset = date_offset(response, self.clock_offset)
        return _Outcome(response=response)

    def request(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> httpx.Response:
        """One API call with retries; ``safe`` marks calls that may be repeated (see module docstring)."""
        url = self._plan.base_url + path
        attempt = 0
        while True:
            outcome = self._attempt(method, url, **kwargs)
            wait = self._plan.decide(method, path, outcome, attempt, safe)
            if wait is None:
                return self._plan.finish(method, path, outcome, safe)
            self._sleep(wait)
            attempt += 1

    def send_message(self, request: SendRequest, region: Region = "WW") -> Message:
        """``POST /{region}-messages``. Dry runs are retried like reads; real sends see module docstring."""
        path, body, safe = _send_args(request, region)
        return parse_data(self.request("POST", path, safe=safe, json=body), Message)

    def get_message(self, message_id: str) -> Message:
        """``GET /messages/{id}``; :class:`SmsWwNotFoundError` when unknown."""
        response = self.request("GET", f"/messages/{_quote_id(message_id)}", safe=True)
        return parse_data(response, Message)

    def list_messages(self, *, page_size: int = PAGE_SIZE, max_items: int | None = None) -> Iterator[Message]:
        """Every message on the account, page by page (``skip``/``limit``), newest first on the gateway;
        at most ``max_items`` of them when given.

        Only an empty page ends the walk, and ``skip`` advances by what a page held: the spec does not
        say whether the gateway caps ``limit``, and a short page taken for the last one would hide
        older messages from reconciliation (and so send them twice). Costs one request at the end.
        """
        skip = 0
        while max_items is None or skip < max_items:
            params = {"skip": skip, "limit": page_size}
            page: list[Message] = parse_data(
                self.request("GET", "/messages", safe=True, params=params), list[Message]
            )
            if not page:
                return
            if max_items is not None:
                page = page[: max_items - skip]
            yield from page
            skip += len(page)


class AsyncSmsWwClient:
    """Asynchronous twin of :class:`SmsWwClient` (same arguments, same behaviour), for bulk sends and
    the triggerer. ``sleep`` defaults to ``asyncio.sleep``."""

    def __init__(
        self,
        base_url: str = PRODUCTION_URL,
        *,
        token: str | None = None,
        minter: TokenMinter | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._plan = _Plan(
            base_url=base_url, token=token, minter=minter, retry=retry or RetryPolicy(), rng=rng
        )
        self._http = httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)
        self.clock_offset: timedelta | None = None  # the gateway's clock minus ours (its Date header)
        self._sleep = sleep
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncSmsWwClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _token(self) -> str:
        if self._plan.static_token:
            return self._plan.static_token
        assert self._plan.minter is not None
        return await self._plan.minter.aget(self._http, self._token_lock)

    async def _attempt(self, method: str, url: str, **kwargs: Any) -> _Outcome:
        reached_api = False
        try:
            headers = self._plan.headers(await self._token())
            reached_api = True
            response = await self._http.request(method, url, headers=headers, **kwargs)
            if response.status_code == 401 and self._plan.minter is not None:
                self._plan.minter.invalidate()
                reached_api = False
                headers = self._plan.headers(await self._token())
                reached_api = True
                response = await self._http.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            return _Outcome(error=exc, reached_api=reached_api)
        self.clock_offset = date_offset(response, self.clock_offset)
        return _Outcome(response=response)

    async def request(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> httpx.Response:
        url = self._plan.base_url + path
        attempt = 0
        while True:
            outcome = await self._attempt(method, url, **kwargs)
            wait = self._plan.decide(method, path, outcome, attempt, safe)
            if wait is None:
                return self._plan.finish(method, path, outcome, safe)
            await self._sleep(wait)
            attempt += 1

    async def send_message(self, request: SendRequest, region: Region = "WW") -> Message:
        path, body, safe = _send_args(request, region)
        response = await self.request("POST", path, safe=safe, json=body)
        return parse_data(response, Message)

    async def get_message(self, message_id: str) -> Message:
        response = await self.request("GET", f"/messages/{_quote_id(message_id)}", safe=True)
        return parse_data(response, Message)

    async def list_messages(
        self, *, page_size: int = PAGE_SIZE, max_items: int | None = None
    ) -> AsyncIterator[Message]:
        skip = 0
        while max_items is None or skip < max_items:
            params = {"skip": skip, "limit": page_size}
            response = await self.request("GET", "/messages", safe=True, params=params)
            page: list[Message] = parse_data(response, list[Message])
            if not page:
                return
            if max_items is not None:
                page = page[: max_items - skip]
            for message in page:
                yield message
            skip += len(page)


def _quote_id(message_id: str) -> str:
    """Message ids go into the path: refuse anything that could change the path."""
    if not is_message_id(message_id):
        raise SmsWwValidationError(f"{message_id!r} is not a message id")
    return message_id


__all__ = [
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "AsyncSmsWwClient",
    "RetryPolicy",
    "SmsWwClient",
]
