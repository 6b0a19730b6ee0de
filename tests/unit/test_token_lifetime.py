"""Issue 12 item 6: a short-lived token (ttl under the 60 s refresh margin) was re-minted for every
request. It is now renewed relative to its lifetime, and still before it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_smsww.auth import TokenMinter
from airflow_provider_smsww.client import RetryPolicy, SmsWwClient
from tests.fakes import API

OAUTH = "https://oauth.example.test"
MESSAGE = {"id": "aaaaaaaaaaaaaaaaaaaaaaa1", "state": "NEW"}


def minter() -> TokenMinter:
    return TokenMinter(OAUTH, "ops@example.test", "api-key-0123456789", ["*:sms.example.test/*"], ttl=30)


def mints(httpx_mock: Any) -> int:
    return sum(1 for r in httpx_mock.get_requests() if r.url.host == "oauth.example.test")


@pytest.mark.parametrize("ttl", [30, 10])
def test_a_short_lived_token_is_reused_while_it_is_fresh(httpx_mock: Any, ttl: int) -> None:
    expire_at = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat()
    httpx_mock.add_response(url=f"{OAUTH}/tokens", json={"token": "short-lived-token", "expireAt": expire_at})
    httpx_mock.add_response(method="GET", json={"data": MESSAGE}, is_reusable=True)
    with SmsWwClient(API, minter=minter(), retry=RetryPolicy(max_retries=0)) as client:
        for _ in range(5):
            client.get_message(MESSAGE["id"])
    assert mints(httpx_mock) == 1


def test_a_token_close_to_its_expiry_is_renewed(httpx_mock: Any) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    later = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    httpx_mock.add_response(url=f"{OAUTH}/tokens", json={"token": "first-token-1", "expireAt": later})
    httpx_mock.add_response(url=f"{OAUTH}/tokens", json={"token": "second-token-2", "expireAt": later})
    httpx_mock.add_response(method="GET", json={"data": MESSAGE}, is_reusable=True)
    tokens = minter()
    with SmsWwClient(API, minter=tokens, retry=RetryPolicy(max_retries=0)) as client:
        client.get_message(MESSAGE["id"])
        assert tokens._token is not None
        tokens._token = tokens._token.model_copy(update={"expire_at": datetime.fromisoformat(soon)})
        client.get_message(MESSAGE["id"])  # 2 s left of a 30 s token: under a quarter, renewed
    assert mints(httpx_mock) == 2
