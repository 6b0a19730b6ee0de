"""HTTP clients for the SMS Worldwide API. No Airflow import.

:class:`SmsWwClient` (sync) and :class:`AsyncSmsWwClient` (async) share everything but their attempt: the
request plan, the retry decision and the retry loops are in :mod:`~airflow_provider_smsww._http.retry`
(OAuth's calls in :mod:`~airflow_provider_smsww._http.auth` use them too), the error mapping in
:mod:`~airflow_provider_smsww._http.responses` and token minting in :mod:`~airflow_provider_smsww._http.auth`,
so both clients behave the same by construction. Only ``hooks/`` imports the ``_http`` package.

Retries. Reads (``GET``) and dry-run sends are retried with exponential backoff and full jitter on 429
(waiting at least ``Retry-After``), 5xx and transport errors: they cost nothing and change nothing. A
*real* send is retried only when the gateway provably did not process it: a connection that was never
established, or a 429 (the rate limiter refused it). When a real send may have reached the gateway (a
5xx, a timeout or a dropped connection after the request was written), the client raises
:class:`~airflow_provider_smsww.exceptions.SmsWwSendUncertainError` instead of resending, because the
API has no idempotency key and a blind retry could deliver (and bill) the SMS twice. The operator then
looks the message up in ``GET /messages`` and resends only if it is not there.

Rate. Every attempt first waits for its turn at a
:class:`~airflow_provider_smsww._http.ratelimit.RateLimiter`: an optional rate, and the pause of a retried 429
(its ``Retry-After``), honoured by every request sharing the limiter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_smsww._http.anyio_lock import mend_anyio_lock
from airflow_provider_smsww._http.ratelimit import RateLimiter
from airflow_provider_smsww._http.responses import date_offset, parse_data
from airflow_provider_smsww._http.retry import Outcome, RequestPlan, RetryPolicy
from airflow_provider_smsww.exceptions import (
    SmsWwValidationError,
)
from airflow_provider_smsww.models import PAGE_SIZE, Message, Region, SendOtpRequest, SendRequest
from airflow_provider_smsww.validation import is_message_id

if TYPE_CHECKING:
    from airflow_provider_smsww._http.auth import TokenMinter

log = logging.getLogger(__name__)


PRODUCTION_URL = "https://sms.openapi.com"
SANDBOX_URL = "https://test.sms.openapi.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Measured (benchmarks/bulk_send.py): httpcore's CPU per request grows with the connections it keeps, so
#: the keep-alive pool matches the operators' default concurrency (20); more in flight open short-lived ones.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def _send_args(request: SendRequest | SendOtpRequest) -> tuple[dict[str, Any], bool]:
    """A send's body and whether it may be repeated (a dry run may; a real send see module docstring)."""
    return request.wire(), request.options.dry_run


class SmsWwClient:
    """Synchronous client. One pooled ``httpx.Client`` per instance; use as a context manager or call
    :meth:`close`.

    :param base_url: the SMS API, e.g. ``https://sms.openapi.com``.
    :param token: a Bearer token; or give ``minter`` to mint tokens from an email + API key.
    :param transport: an httpx transport (tests and the in-process sandbox).
    :param sleep: how to wait between retries (tests pass a recorder instead of sleeping).
    :param rate_limiter: the rate and 429 pauses to share (:mod:`~airflow_provider_smsww._http.ratelimit`);
        default private.
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
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._plan = RequestPlan(
            base_url=base_url,
            token=token,
            minter=minter,
            retry=retry or RetryPolicy(),
            rng=rng,
            rate_limiter=rate_limiter,
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
        return self._plan.minter.get(self._http, self._plan.retrying, self._sleep)

    def _attempt(self, method: str, url: str, **kwargs: Any) -> Outcome:
        try:
            response = self._http.request(method, url, headers=self._plan.headers(self._token()), **kwargs)
            if response.status_code == 401 and self._plan.minter is not None:
                # A minted token may have been revoked or expired early: mint once more (a 401 means
                # the call was not processed, so repeating it is safe).
                self._plan.minter.invalidate()
                response = self._http.request(
                    method, url, headers=self._plan.headers(self._token()), **kwargs
                )
        except httpx.TransportError as exc:
            return Outcome(error=exc)
        self.clock_offset = date_offset(response, self.clock_offset)
        return Outcome(response=response)

    def request(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> httpx.Response:
        """One API call with retries; ``safe`` marks calls that may be repeated (see module docstring)."""
        url = self._plan.base_url + path
        attempt = partial(self._attempt, method, url, **kwargs)
        outcome = self._plan.retrying.run(f"{method} {path}", safe, attempt, self._sleep)
        return self._plan.finish(method, path, outcome, safe)

    def send_message(self, request: SendRequest, region: Region = "WW") -> Message:
        """``POST /{region}-messages``. Dry runs are retried like reads; real sends see module docstring."""
        return self._send(f"/{region}-messages", request)

    def send_otp(self, request: SendOtpRequest) -> Message:
        """``POST /otp``: retried like :meth:`send_message` (a real one is never resent blindly)."""
        return self._send("/otp", request)

    def _send(self, path: str, request: SendRequest | SendOtpRequest) -> Message:
        body, safe = _send_args(request)
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
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._plan = RequestPlan(
            base_url=base_url,
            token=token,
            minter=minter,
            retry=retry or RetryPolicy(),
            rng=rng,
            rate_limiter=rate_limiter,
        )
        mend_anyio_lock()  # httpcore's connection locks, on the anyio releases that can deadlock them
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
        return await self._plan.minter.aget(self._http, self._token_lock, self._plan.retrying, self._sleep)

    async def _attempt(self, method: str, url: str, **kwargs: Any) -> Outcome:
        try:
            response = await self._http.request(
                method, url, headers=self._plan.headers(await self._token()), **kwargs
            )
            if response.status_code == 401 and self._plan.minter is not None:
                self._plan.minter.invalidate()
                response = await self._http.request(
                    method, url, headers=self._plan.headers(await self._token()), **kwargs
                )
        except httpx.TransportError as exc:
            return Outcome(error=exc)
        self.clock_offset = date_offset(response, self.clock_offset)
        return Outcome(response=response)

    async def request(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> httpx.Response:
        url = self._plan.base_url + path
        attempt = partial(self._attempt, method, url, **kwargs)
        outcome = await self._plan.retrying.arun(f"{method} {path}", safe, attempt, self._sleep)
        return self._plan.finish(method, path, outcome, safe)

    async def send_message(self, request: SendRequest, region: Region = "WW") -> Message:
        return await self._send(f"/{region}-messages", request)

    async def send_otp(self, request: SendOtpRequest) -> Message:
        return await self._send("/otp", request)

    async def _send(self, path: str, request: SendRequest | SendOtpRequest) -> Message:
        body, safe = _send_args(request)
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

    async def list_page(self, skip: int, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """One ``GET /messages`` page, raw: a reader validates only the entries it wants (see listing.py)."""
        response = await self.request("GET", "/messages", safe=True, params={"skip": skip, "limit": limit})
        page: list[dict[str, Any]] = parse_data(response, list[dict[str, Any]])
        return page


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
