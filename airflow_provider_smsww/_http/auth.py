"""Openapi's OAuth v2 service: an account email + API key become short-lived Bearer tokens, cached per
process and renewed before they expire (:class:`TokenMinter`, used by the clients); and the account's
own calls (:class:`OAuthAccount`: wallet credit, a limited per-task token and its revocation), used by
the hook. Every call here is retried by the SMS clients' rules (:class:`~._http.retry.Retrying`), with
the connection's retry policy but a rate limiter of its own: OAuth is another host, not paced by the SMS
rate, and its 429 pauses only its own calls. No Airflow import.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_smsww._http.anyio_lock import mend_anyio_lock
from airflow_provider_smsww._http.ratelimit import RateLimiter
from airflow_provider_smsww._http.responses import error_from_response, parse_data, parse_token
from airflow_provider_smsww._http.retry import USER_AGENT, Outcome, Retrying, RetryPolicy
from airflow_provider_smsww.exceptions import SmsWwAuthError, SmsWwError, SmsWwTransportError
from airflow_provider_smsww.models import Token, Wallet, as_utc

OAUTH_PRODUCTION_URL = "https://oauth.openapi.com"
OAUTH_SANDBOX_URL = "https://test.oauth.openapi.com"


def default_scopes(base_url: str) -> list[str]:
    """Every SMS endpoint of the API host the client talks to (``*:sms.openapi.com/*``)."""
    host = urlsplit(base_url).hostname or "sms.openapi.com"
    return [f"*:{host}/*"]


def send_scopes(base_url: str, region: str) -> list[str]:
    """Only what a batch send needs: ``POST /{region}-messages`` (dry runs and sends) and the reads
    of ``GET /messages`` and ``GET /messages/{id}`` (reconciliation)."""
    host = urlsplit(base_url).hostname or "sms.openapi.com"
    return [f"POST:{host}/{region}-messages", f"GET:{host}/messages", f"GET:{host}/messages/*"]


@dataclass
class TokenMinter:
    """Mints Bearer tokens from an account email + API key through OAuth v2 and caches them.

    One minter is shared per (OAuth URL, email, scopes) in a process, so hooks created for each task
    reuse a live token instead of minting one per call. A token is renewed ``refresh_margin`` seconds
    before its ``expireAt``, or a quarter of its lifetime before when that is shorter (a token of a
    30 s ttl is reused for about 22 s, not minted anew for every request), and at once after the API
    refuses it (401).

    Minting is retried like a read (429, 5xx, transport errors), with the calling client's policy, jitter
    and sleep: this token has no spending cap, so a duplicate minted by a repeated request is only an
    unused token that expires with its ``ttl``.
    """

    oauth_url: str
    email: str
    api_key: str = field(repr=False)
    scopes: list[str]
    ttl: int = 3600
    refresh_margin: float = 60.0
    #: Called with each new token, e.g. Airflow's ``mask_secret`` so that it never shows in a task log.
    on_token: Callable[[str], None] | None = field(default=None, repr=False)
    _token: Token | None = field(default=None, init=False, repr=False)
    _received_at: datetime | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    #: OAuth's own pause after a 429 (the SMS clients' limiter paces another host).
    _limiter: RateLimiter = field(default_factory=RateLimiter, init=False, repr=False)

    def _call(self) -> dict[str, Any]:
        body = {"scopes": self.scopes, "ttl": self.ttl, "name": USER_AGENT}
        return _call(self.oauth_url, self.email, self.api_key, "POST", "/tokens", body)

    def _retrying(self, client: Retrying) -> Retrying:
        """The calling client's policy and jitter, with OAuth's own limiter."""
        return replace(client, limiter=self._limiter)

    def _fresh(self) -> str | None:
        token = self._token
        if token is None:
            return None
        if (expire_at := as_utc(token.expire_at)) is not None:
            remaining = (expire_at - datetime.now(UTC)).total_seconds()
            lifetime = (expire_at - (self._received_at or expire_at)).total_seconds()
            if remaining < min(self.refresh_margin, max(lifetime, 0.0) / 4):
                return None
        return token.token.get_secret_value()

    def _accept(self, outcome: Outcome) -> str:
        response = _response(_MINT_SHARED, outcome, safe=True)
        if response.status_code in (401, 403):
            raise _oauth_failure(response, "Minting a token")
        if response.status_code >= 400:
            raise error_from_response(response)
        self._token, self._received_at = parse_token(response), datetime.now(UTC)
        secret = self._token.token.get_secret_value()
        if self.on_token is not None:
            self.on_token(secret)
        return secret

    def invalidate(self) -> None:
        self._token = None

    def get(self, http: httpx.Client, retrying: Retrying, sleep: Callable[[float], None]) -> str:
        """The live token, or a new one minted with the calling client's ``http``, ``retrying`` and
        ``sleep``."""
        with self._lock:
            if cached := self._fresh():
                return cached
            attempt = partial(_attempt, http, self._call())
            return self._accept(self._retrying(retrying).run(_MINT_SHARED, True, attempt, sleep))

    async def aget(
        self,
        http: httpx.AsyncClient,
        lock: asyncio.Lock,
        retrying: Retrying,
        sleep: Callable[[float], Awaitable[None]],
    ) -> str:
        """Async twin of :meth:`get`. ``lock`` belongs to the calling client's event loop: many concurrent
        sends mint one token."""
        if cached := self._fresh():
            return cached
        async with lock:
            if cached := self._fresh():
                return cached
            attempt = partial(_aattempt, http, self._call())
            return self._accept(await self._retrying(retrying).arun(_MINT_SHARED, True, attempt, sleep))


_MINTERS: dict[tuple[str, str, tuple[str, ...]], TokenMinter] = {}
_MINTERS_LOCK = threading.Lock()


def shared_minter(
    oauth_url: str,
    email: str,
    api_key: str,
    scopes: list[str],
    on_token: Callable[[str], None] | None = None,
) -> TokenMinter:
    """The process-wide minter for these credentials (a new one if the API key changed)."""
    key = (oauth_url, email, tuple(scopes))
    with _MINTERS_LOCK:
        minter = _MINTERS.get(key)
        if minter is None or minter.api_key != api_key:
            minter = _MINTERS[key] = TokenMinter(oauth_url, email, api_key, scopes, on_token=on_token)
        elif on_token is not None:
            minter.on_token = on_token  # e.g. mask_secret: a minter first made without it still masks
        return minter


def _oauth_failure(response: httpx.Response, what: str) -> SmsWwError:
    """The error for a refused OAuth call, named by ``what`` (never by its URL, which may hold a token)."""
    err = error_from_response(response)
    if response.status_code in (401, 403):
        return SmsWwAuthError(
            f"{what} failed ({response.status_code}): check the connection's account email (login) and "
            "api_key extra.",
            status_code=response.status_code,
            code=err.code,
        )
    suffix = f" (code {err.code})" if err.code is not None else ""
    return type(err)(
        f"{what} answered {response.status_code}{suffix}", status_code=err.status_code, code=err.code
    )


@dataclass(frozen=True)
class OAuthAccount:
    """The account's own calls on OAuth v2, with HTTP Basic (email : API key): read the wallet, mint
    a token with ``limits`` (a spending cap the gateway enforces), revoke it. The wallet is read sync
    and async; a capped token is minted and revoked only from the async send path. One short-lived
    connection a call (a task makes three of them at most), its retries included.

    Retries follow the SMS clients' rules (:class:`~._http.retry.Retrying`): reading the wallet is
    retried like an SMS read (429 after its ``Retry-After``, 5xx, transport errors); minting and
    revoking like a real send, only when OAuth provably did not process the request (the connection was
    never made, or 429). After a 5xx or a broken connection once the request was written, a capped
    token may have been minted: minting again could leave two tokens of the same cap, so the call fails.

    :param oauth_url: the OAuth v2 host, e.g. ``https://oauth.openapi.com``.
    :param email: the account email.
    :param api_key: the account's API key (never logged).
    :param timeout: seconds (or an ``httpx.Timeout``) for each call.
    :param retrying: the retry policy (the connection's) and a limiter of OAuth's own.
    :param sleep: how to wait between sync retries; ``asleep`` between async ones (tests record them).
    """

    oauth_url: str
    email: str
    api_key: str = field(repr=False)
    timeout: httpx.Timeout | float = 30.0
    retrying: Retrying = field(default_factory=lambda: Retrying(RetryPolicy()), repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False, compare=False)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return _call(self.oauth_url, self.email, self.api_key, method, path, body)

    def _request(self, what: str, call: dict[str, Any], safe: bool) -> httpx.Response:
        with httpx.Client(timeout=self.timeout) as http:
            outcome = self.retrying.run(what, safe, partial(_attempt, http, call), self.sleep)
        return _response(what, outcome, safe)

    async def _arequest(self, what: str, call: dict[str, Any], safe: bool) -> httpx.Response:
        mend_anyio_lock()  # as every async client of the package: see _http/anyio_lock.py
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            outcome = await self.retrying.arun(what, safe, partial(_aattempt, http, call), self.asleep)
        return _response(what, outcome, safe)

    def get_wallet(self) -> Wallet:
        """``GET /wallet``: the account's credit."""
        return _wallet(self._request(_WALLET, self._call("GET", "/wallet"), safe=True))

    async def aget_wallet(self) -> Wallet:
        """Async twin of :meth:`get_wallet`."""
        return _wallet(await self._arequest(_WALLET, self._call("GET", "/wallet"), safe=True))

    async def amint(
        self, scopes: list[str], ttl: int, limits: dict[str, Any], name: str = USER_AGENT
    ) -> Token:
        """``POST /tokens`` with ``limits`` (the spec's ``TokenLimits``); the token is not cached. Not
        repeated once OAuth may have minted it (see the class docstring)."""
        body = {"scopes": scopes, "ttl": ttl, "name": name, "limits": limits}
        return _minted(await self._arequest(_MINT, self._call("POST", "/tokens", body), safe=False))

    async def arevoke(self, token: str) -> bool:
        """``DELETE /tokens/{token}``: later calls with it are refused. True when it is gone. Retried
        only when not processed; its log lines and errors never show the token."""
        call = self._call("DELETE", f"/tokens/{_token_path(token)}")
        return _revoked(await self._arequest(_REVOKE, call, safe=False))


def _call(
    oauth_url: str, email: str, api_key: str, method: str, path: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    """The arguments of one OAuth request (``httpx.Client.request``), with HTTP Basic."""
    return {
        "method": method,
        "url": f"{oauth_url.rstrip('/')}{path}",
        "json": body,
        "auth": httpx.BasicAuth(email, api_key),
        "headers": {"User-Agent": USER_AGENT},
    }


def _attempt(http: httpx.Client, call: dict[str, Any]) -> Outcome:
    try:
        return Outcome(response=http.request(**call))
    except httpx.TransportError as exc:
        return Outcome(error=exc)


async def _aattempt(http: httpx.AsyncClient, call: dict[str, Any]) -> Outcome:
    try:
        return Outcome(response=await http.request(**call))
    except httpx.TransportError as exc:
        return Outcome(error=exc)


def _response(what: str, outcome: Outcome, safe: bool) -> httpx.Response:
    """The last response of a call, or the transport error that ended it, named by ``what`` (never by
    its URL, which may hold a token)."""
    if outcome.response is not None:
        return outcome.response
    name = type(outcome.error).__name__
    if safe or outcome.never_sent:
        raise SmsWwTransportError(f"{what}: could not reach OAuth ({name})") from None
    raise SmsWwTransportError(
        f"{what}: the connection failed after the request was sent ({name}); not repeated"
    ) from None


_WALLET = "Reading the credit (GET /wallet)"
_MINT = "Minting a per-task token (POST /tokens)"
_MINT_SHARED = "Minting a token (POST /tokens)"
_REVOKE = "Revoking the per-task token (DELETE /tokens/...)"


def _wallet(response: httpx.Response) -> Wallet:
    if response.status_code >= 400:
        raise _oauth_failure(response, _WALLET)
    wallet: Wallet = parse_data(response, Wallet)
    return wallet


def _minted(response: httpx.Response) -> Token:
    if response.status_code >= 400:
        raise _oauth_failure(response, _MINT)
    return parse_token(response)


def _revoked(response: httpx.Response) -> bool:
    """True when the token is gone: deleted now (2xx) or unknown already (404, e.g. expired)."""
    if response.status_code < 400 or response.status_code == 404:
        return True
    raise _oauth_failure(response, _REVOKE)


def _token_path(token: str) -> str:
    """A token goes into the path: only the characters tokens are made of."""
    if not token or not all(c.isalnum() or c in "-_." for c in token):
        raise SmsWwAuthError("The minted token has characters a token path cannot carry; not revoking it.")
    return token


_TOKEN_IN_PATH = re.compile(r"/tokens/[^/?#\s\"]+")


class _TokenPathFilter(logging.Filter):
    """httpx logs each request's URL at INFO, and a revocation's URL carries the token
    (``DELETE /tokens/{token}``): the record names it ``/tokens/...`` instead, whatever the level of the
    ``httpx`` logger and whether or not Airflow's masker knows the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub("/tokens/...", str(arg)) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_TokenPathFilter())
