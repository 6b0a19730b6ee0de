"""Token minting through Openapi's OAuth v2 service: an account email + API key become short-lived
Bearer tokens, cached per process and renewed before they expire. Used by the clients; no Airflow import.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_smsww import __version__
from airflow_provider_smsww.exceptions import SmsWwAuthError
from airflow_provider_smsww.models import Token, as_utc
from airflow_provider_smsww.responses import error_from_response, parse_token

OAUTH_PRODUCTION_URL = "https://oauth.openapi.com"
OAUTH_SANDBOX_URL = "https://test.oauth.openapi.com"
USER_AGENT = f"airflow-provider-smsww/{__version__}"


def default_scopes(base_url: str) -> list[str]:
    """Every SMS endpoint of the API host the client talks to (``*:sms.openapi.com/*``)."""
    host = urlsplit(base_url).hostname or "sms.openapi.com"
    return [f"*:{host}/*"]


@dataclass
class TokenMinter:
    """Mints Bearer tokens from an account email + API key through OAuth v2 and caches them.

    One minter is shared per (OAuth URL, email, scopes) in a process, so hooks created for each task
    reuse a live token instead of minting one per call. A token is renewed ``refresh_margin`` seconds
    before its ``expireAt``, or a quarter of its lifetime before when that is shorter (a token that
    lives 30 s is used for 22 s, not re-minted for every request), and at once after the API refuses
    it (401).
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
    #: Seconds the current token was valid for when it was minted.
    _lifetime: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _request(self) -> dict[str, Any]:
        return {
            "url": f"{self.oauth_url.rstrip('/')}/tokens",
            "json": {"scopes": self.scopes, "ttl": self.ttl, "name": USER_AGENT},
            "auth": httpx.BasicAuth(self.email, self.api_key),
        }

    def _fresh(self) -> str | None:
        token = self._token
        if token is None:
            return None
        if (expire_at := as_utc(token.expire_at)) is not None:
            remaining = (expire_at - datetime.now(UTC)).total_seconds()
            if remaining < min(self.refresh_margin, self._lifetime / 4):
                return None
        return token.token.get_secret_value()

    def _accept(self, response: httpx.Response) -> str:
        if response.status_code >= 400:
            err = error_from_response(response)
            if response.status_code in (401, 403):
                raise SmsWwAuthError(
                    f"Minting a token failed ({response.status_code}): check the connection's account "
                    "email (login) and api_key extra.",
                    status_code=response.status_code,
                    code=err.code,
                )
            raise err
        self._token = parse_token(response)
        expire_at = as_utc(self._token.expire_at)
        self._lifetime = 0.0 if expire_at is None else (expire_at - datetime.now(UTC)).total_seconds()
        secret = self._token.token.get_secret_value()
        if self.on_token is not None:
            self.on_token(secret)
        return secret

    def invalidate(self) -> None:
        self._token = None

    def get(self, http: httpx.Client) -> str:
        with self._lock:
            return self._fresh() or self._accept(http.post(**self._request()))

    async def aget(self, http: httpx.AsyncClient, lock: asyncio.Lock) -> str:
        """``lock`` belongs to the calling client's event loop: many concurrent sends mint one token."""
        if cached := self._fresh():
            return cached
        async with lock:
            return self._fresh() or self._accept(await http.post(**self._request()))


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
