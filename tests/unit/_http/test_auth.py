"""Credentials and token minting: a client needs credentials, the minted token's request, its reuse until
it nears expiry, a 401 re-minting once, OAuth's errors, and one shared minter per credentials."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww import __version__
from airflow_provider_smsww._http import auth as auth_module
from airflow_provider_smsww._http.auth import default_scopes, shared_minter
from airflow_provider_smsww._http.client import AsyncSmsWwClient, SmsWwClient
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwResponseError,
    SmsWwValidationError,
)
from tests.unit._http.helpers import (
    API,
    API_KEY,
    EMAIL,
    JITTER,
    MESSAGE_ID,
    MINTED,
    MINTED_2,
    OAUTH,
    TOKENS_URL,
    Harness,
    api_tokens,
    get,
    message_json,
    minter,
    mints,
    send,
    send_request,
    token_body,
)


def test_a_client_needs_credentials() -> None:
    with pytest.raises(SmsWwAuthError, match="No credentials"):
        SmsWwClient(API)
    with pytest.raises(SmsWwAuthError, match="No credentials"):
        AsyncSmsWwClient(API, token="")


# --- token minting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [True, False], ids=["wrapped-in-data", "bare"])
def test_minting_posts_basic_auth_scopes_and_ttl(
    wrapped: bool, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKENS_URL, json=token_body(wrapped=wrapped))
    httpx_mock.add_response(method="GET", json={"data": message_json()})
    seen: list[str] = []
    get(harness, minter=minter(ttl=600, on_token=seen.append))
    (mint,) = mints(httpx_mock)
    expected = base64.b64encode(f"{EMAIL}:{API_KEY}".encode()).decode()
    assert mint.headers["Authorization"] == f"Basic {expected}"
    assert json.loads(mint.content) == {
        "scopes": ["*:sms.example.test/*"],
        "ttl": 600,
        "name": f"airflow-provider-smsww/{__version__}",
    }
    assert api_tokens(httpx_mock) == [MINTED]
    assert seen == [MINTED]


@contextmanager
def minter_clock_at(when: datetime) -> Iterator[None]:
    """The token minter's clock (``auth.datetime.now``) stopped at ``when``."""

    class At(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return when

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(auth_module, "datetime", At)
        yield


def test_a_minted_token_is_reused_until_it_nears_expiry(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(MINTED, expire_in=3600))
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(MINTED_2, expire_in=7200))
    httpx_mock.add_response(method="GET", json={"data": message_json()}, is_reusable=True)
    shared = minter(refresh_margin=60)
    with SmsWwClient(API, minter=shared) as client:
        client.get_message(MESSAGE_ID)
        client.get_message(MESSAGE_ID)
    with SmsWwClient(API, minter=shared) as client:  # another client, same minter: still cached
        client.get_message(MESSAGE_ID)
    assert len(mints(httpx_mock)) == 1

    # 3541 s later the token has 59 s left: under the 60 s margin, so a new one is minted
    later = datetime.now(UTC) + timedelta(seconds=3541)
    with minter_clock_at(later), SmsWwClient(API, minter=shared) as client:
        client.get_message(MESSAGE_ID)
        client.get_message(MESSAGE_ID)
    assert len(mints(httpx_mock)) == 2
    assert api_tokens(httpx_mock) == [MINTED, MINTED, MINTED, MINTED_2, MINTED_2]


def test_a_short_lived_token_is_renewed_relative_to_its_ttl(httpx_mock: HTTPXMock) -> None:
    """A token of a 30 s ttl is inside the 60 s ``refresh_margin`` from the moment it is minted: a margin
    that ignored the ttl would have it minted anew for every request (issue 12 item 6), so it is reused
    until a quarter of its life is left."""
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(expire_in=30), is_reusable=True)
    httpx_mock.add_response(method="GET", json={"data": message_json()}, is_reusable=True)
    shared = minter(refresh_margin=60)
    with SmsWwClient(API, minter=shared) as client:
        client.get_message(MESSAGE_ID)
        client.get_message(MESSAGE_ID)
    assert len(mints(httpx_mock)) == 1

    later = datetime.now(UTC) + timedelta(seconds=24)  # 6 s left of 30: under a quarter
    with minter_clock_at(later), SmsWwClient(API, minter=shared) as client:
        client.get_message(MESSAGE_ID)
    assert len(mints(httpx_mock)) == 2


def test_a_token_that_comes_back_expired_is_minted_each_time(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(expire_in=-5), is_reusable=True)
    httpx_mock.add_response(method="GET", json={"data": message_json()}, is_reusable=True)
    with SmsWwClient(API, minter=minter(refresh_margin=60)) as client:
        client.get_message(MESSAGE_ID)
        client.get_message(MESSAGE_ID)
    assert len(mints(httpx_mock)) == 2


@pytest.mark.parametrize(
    "expire_at",
    [
        pytest.param(
            lambda: (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat(), id="naive"
        ),
        pytest.param(lambda: int((datetime.now(UTC) + timedelta(hours=1)).timestamp()), id="epoch"),
        pytest.param(lambda: None, id="none"),
    ],
)
def test_other_expiry_shapes_are_cached(expire_at: Callable[[], Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKENS_URL, json={"token": MINTED, "expireAt": expire_at()})
    httpx_mock.add_response(method="GET", json={"data": message_json()}, is_reusable=True)
    with SmsWwClient(API, minter=minter()) as client:
        client.get_message(MESSAGE_ID)
        client.get_message(MESSAGE_ID)
    assert len(mints(httpx_mock)) == 1


def test_a_401_from_the_api_re_mints_once(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(MINTED))
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(MINTED_2))
    httpx_mock.add_response(method="POST", url=f"{API}/WW-messages", status_code=401, json={"code": 401})
    httpx_mock.add_response(
        method="POST", url=f"{API}/WW-messages", status_code=201, json={"data": message_json()}
    )
    assert send(harness, minter=minter()).id == MESSAGE_ID  # a real send: a 401 was not processed
    assert api_tokens(httpx_mock) == [MINTED, MINTED_2]
    assert harness.sleeps == []


def test_a_second_401_is_an_auth_error(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(MINTED))
    httpx_mock.add_response(url=TOKENS_URL, json=token_body(MINTED_2))
    httpx_mock.add_response(method="GET", status_code=401, json={"code": 401}, is_reusable=True)
    with pytest.raises(SmsWwAuthError):
        get(harness, minter=minter())
    assert api_tokens(httpx_mock) == [MINTED, MINTED_2]


def test_a_static_token_is_not_re_minted_on_401(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=401, json={"code": 401})
    with pytest.raises(SmsWwAuthError):
        get(harness)
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_on_tokens_name_login_and_api_key(
    status: int, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=TOKENS_URL,
        status_code=status,
        json={"success": False, "message": "Unauthorized", "error": 10, "data": None},
    )
    with pytest.raises(SmsWwAuthError) as info:
        get(harness, minter=minter())
    assert "login" in info.value.message
    assert "api_key" in info.value.message
    assert info.value.status_code == status
    assert info.value.code == 10
    assert API_KEY not in str(info.value)
    assert api_tokens(httpx_mock) == []


def test_invalid_scopes_on_tokens_keep_the_oauth_code(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=TOKENS_URL,
        status_code=422,
        json={
            "success": False,
            "message": "Invalid scopes specified or API not enabled",
            "error": 90,
            "data": None,
        },
    )
    with pytest.raises(SmsWwValidationError, match="Invalid scopes specified") as info:
        get(harness, minter=minter())
    assert info.value.code == 90


def test_a_token_answer_without_a_token_is_a_response_error(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKENS_URL, json={"data": {"name": "no token here"}})
    with pytest.raises(SmsWwResponseError, match="POST /tokens answered without a token"):
        get(harness, minter=minter())


def test_a_broken_mint_before_a_real_send_is_retried(harness: Harness, httpx_mock: HTTPXMock) -> None:
    """A read timeout on /tokens means the SMS was never posted: not an uncertain send."""
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=TOKENS_URL)
    httpx_mock.add_response(url=TOKENS_URL, json=token_body())
    httpx_mock.add_response(
        method="POST", url=f"{API}/WW-messages", status_code=201, json={"data": message_json()}
    )
    assert send(harness, minter=minter()).id == MESSAGE_ID
    assert harness.sleeps == pytest.approx(JITTER[:1])
    assert len(httpx_mock.get_requests(url=f"{API}/WW-messages")) == 1


async def test_concurrent_async_sends_mint_one_token(httpx_mock: HTTPXMock) -> None:
    async def slow_mint(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.02)  # every send is waiting for a token meanwhile
        return httpx.Response(200, json=token_body())

    httpx_mock.add_callback(slow_mint, url=TOKENS_URL)
    httpx_mock.add_response(method="POST", status_code=201, json={"data": message_json()}, is_reusable=True)
    async with AsyncSmsWwClient(API, minter=minter()) as client:
        results = await asyncio.gather(*(client.send_message(send_request()) for _ in range(20)))
    assert len(results) == 20
    assert len(mints(httpx_mock)) == 1
    assert api_tokens(httpx_mock) == [MINTED] * 20


def test_shared_minter_is_one_per_credentials() -> None:
    scopes = default_scopes("https://sms.openapi.com")
    assert scopes == ["*:sms.openapi.com/*"]
    first = shared_minter(OAUTH, EMAIL, API_KEY, scopes)
    assert shared_minter(OAUTH, EMAIL, API_KEY, scopes) is first
    masked: list[str] = []
    again = shared_minter(OAUTH, EMAIL, API_KEY, scopes, on_token=masked.append)
    assert again is first
    assert again.on_token == masked.append  # a later caller's mask_secret is not lost
    assert shared_minter(OAUTH, EMAIL, "rotated-key", scopes) is not first
    assert shared_minter(OAUTH, "other@example.test", API_KEY, scopes) is not first
    assert API_KEY not in repr(first)
