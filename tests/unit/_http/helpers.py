"""What the client tests share: the spec's example message, a send request, the credentials (each a
recognisable secret), the seeded jitter, :class:`Harness` (one operation on a fresh sync or async
client, its waits recorded, never slept) and the token-minting helpers.

The ``harness`` fixture (both clients) is in ``conftest.py`` beside this module."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pytest_httpx import HTTPXMock

from airflow_provider_smsww._http.auth import TokenMinter
from airflow_provider_smsww._http.client import AsyncSmsWwClient, RetryPolicy, SmsWwClient
from airflow_provider_smsww.models import Callback, Message, MessageOptions, SendRequest

API = "https://sms.example.test"
OAUTH = "https://oauth.example.test"
TOKENS_URL = f"{OAUTH}/tokens"
TOKEN = "static-token-SECRET-7f3a9c"
MINTED = "minted-token-SECRET-51be02"
MINTED_2 = "minted-token-SECRET-second"
EMAIL = "ops@example.test"
API_KEY = "api-key-SECRET-c0ffee"
HEADER_SECRET = "callback-header-SECRET-9d1e"
SECRETS = (TOKEN, MINTED, MINTED_2, API_KEY, HEADER_SECRET)
SEED = 1234
#: random.Random(SEED).uniform(0, 0.5 * 2**attempt) for attempts 0, 1, 2, ... (full jitter, base 0.5).
JITTER = [0.4832267678460694, 0.4407325991753527, 0.014982940117174381, 3.6439038497964966]
MESSAGE_ID = "633aabe3e4a9a0e69811ad7f"


def message_json(**overrides: Any) -> dict[str, Any]:
    """A MessageResponse with the spec's example values."""
    body: dict[str, Any] = {
        "id": MESSAGE_ID,
        "username": "ops@example.test",
        "state": "NEW",
        "sender": "MyCompany",
        "recipient": "+393331234567",
        "internationalPrefix": "39",
        "countryCode": "IT",
        "message": "Hello! This is a test message.",
        "encoding": "GSM-7",
        "charactersCount": 30,
        "messageCount": 1,
        "price": 0,
        "totalPrice": 0,
        "blocklisted": False,
        "options": {"dryRun": False, "failOnMultipleMessages": False},
        "isOtp": False,
        "createdAt": "2025-11-19T10:00:00Z",
        "updatedAt": "2025-11-19T10:00:00Z",
        "sentAt": None,
        "deliveredAt": None,
    }
    body.update(overrides)
    return body


def send_request(*, dry_run: bool = False, callback: bool = False) -> SendRequest:
    return SendRequest(
        recipient="+393331234567",
        message="Hello! This is a test message.",
        sender="MyCompany",
        options=MessageOptions(dry_run=dry_run),
        callback=Callback(
            url="https://www.mysite.com/myEndpoint",
            headers={"Authorization": HEADER_SECRET},
            custom={"my_custom_id": "123456789"},
        )
        if callback
        else None,
    )


class Harness:
    """Runs one operation on a fresh sync or async client, recording every wait instead of sleeping."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sleeps: list[float] = []

    def make(self, **kwargs: Any) -> SmsWwClient | AsyncSmsWwClient:
        kwargs.setdefault("retry", RetryPolicy(max_retries=3))
        kwargs.setdefault("rng", random.Random(SEED))
        if "minter" not in kwargs:
            kwargs.setdefault("token", TOKEN)
        if self.kind == "sync":
            return SmsWwClient(API, sleep=self.sleeps.append, **kwargs)

        async def record(seconds: float) -> None:
            self.sleeps.append(seconds)

        return AsyncSmsWwClient(API, sleep=record, **kwargs)

    def run(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``operation`` is a client method name; ``list_messages`` is drained into a list."""
        call_kwargs = kwargs.pop("call", {})
        client = self.make(**kwargs)
        if isinstance(client, SmsWwClient):
            with client:
                result = getattr(client, operation)(*args, **call_kwargs)
                return list(result) if operation == "list_messages" else result

        async def main() -> Any:
            async with client:
                if operation == "list_messages":
                    return [m async for m in client.list_messages(*args, **call_kwargs)]
                return await getattr(client, operation)(*args, **call_kwargs)

        return asyncio.run(main())


def send(h: Harness, *, dry_run: bool = False, **kwargs: Any) -> Message:
    return h.run("send_message", send_request(dry_run=dry_run, callback=True), **kwargs)


def get(h: Harness, **kwargs: Any) -> Message:
    return h.run("get_message", MESSAGE_ID, **kwargs)


def token_body(
    token: str = MINTED, *, expire_in: float | None = 3600, wrapped: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": token,
        "name": "airflow",
        "scopes": ["*:sms.example.test/*"],
        "createdAt": "2025-11-19T10:00:00Z",
        "refreshToken": "656d1e2f8b3c2a001f7e4a13",
    }
    if expire_in is not None:
        body["expireAt"] = (datetime.now(UTC) + timedelta(seconds=expire_in)).isoformat()
    return {"data": body, "success": True, "message": ""} if wrapped else body


def minter(**kwargs: Any) -> TokenMinter:
    return TokenMinter(OAUTH, EMAIL, API_KEY, ["*:sms.example.test/*"], **kwargs)


def api_tokens(httpx_mock: HTTPXMock) -> list[str]:
    """Bearer tokens the SMS API saw, in order."""
    return [
        r.headers["Authorization"].removeprefix("Bearer ")
        for r in httpx_mock.get_requests()
        if r.url.host == "sms.example.test"
    ]


def mints(httpx_mock: HTTPXMock) -> list[httpx.Request]:
    return httpx_mock.get_requests(url=TOKENS_URL)
