"""OAuth calls are retried by the SMS clients' rules (``Retrying`` in ``_http/retry.py``): the wallet read
like a read, the capped mint and its revocation like a real send, the clients' own token minting like a
read; with the connection's retry policy and OAuth's own 429 pause. Waits are recorded, never slept; the
jitter is the one of the client tests (``helpers.JITTER``, same seed). No token or API key in any log line
or error.
"""

from __future__ import annotations

import asyncio
import logging
import random
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww._http.auth import OAuthAccount
from airflow_provider_smsww._http.retry import Retrying, RetryPolicy
from airflow_provider_smsww.exceptions import (
    SmsWwError,
    SmsWwServerError,
    SmsWwTransportError,
)
from airflow_provider_smsww.hooks.connection import client_settings
from tests.unit._http.helpers import (
    API,
    API_KEY,
    EMAIL,
    JITTER,
    MESSAGE_ID,
    MINTED,
    OAUTH,
    SEED,
    TOKENS_URL,
    Harness,
    get,
    message_json,
    minter,
    token_body,
)

WALLET_URL = f"{OAUTH}/wallet"
REVOKE_URL = f"{OAUTH}/tokens/{MINTED}"
WALLET = {"data": {"credit": 12.5}}


def account(sleeps: list[float], max_retries: int = 3) -> OAuthAccount:
    """An account whose waits (sync or async) go to ``sleeps``, with the seeded jitter."""

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    retrying = Retrying(RetryPolicy(max_retries=max_retries), random.Random(SEED))
    return OAuthAccount(OAUTH, EMAIL, API_KEY, retrying=retrying, sleep=sleeps.append, asleep=record)


def read_wallet(kind: str, sleeps: list[float]) -> Any:
    oauth = account(sleeps)
    return oauth.get_wallet() if kind == "sync" else asyncio.run(oauth.aget_wallet())


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def harness(kind: str) -> Harness:
    return Harness(kind)


def test_a_wallet_read_is_retried_after_a_503(kind: str, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=WALLET_URL, status_code=503)
    httpx_mock.add_response(url=WALLET_URL, json=WALLET)
    sleeps: list[float] = []
    assert str(read_wallet(kind, sleeps).credit) == "12.5"
    assert sleeps == pytest.approx(JITTER[:1])


def test_a_wallet_read_waits_for_the_retry_after_of_a_429(kind: str, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=WALLET_URL, status_code=429, headers={"Retry-After": "2"})
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=WALLET_URL)
    httpx_mock.add_response(url=WALLET_URL, json=WALLET)
    sleeps: list[float] = []
    assert str(read_wallet(kind, sleeps).credit) == "12.5"
    # at least the 2 s asked, then a read timeout retried with the second jitter
    assert sleeps == pytest.approx([2.0, JITTER[1]])


@pytest.mark.parametrize(
    ("failure", "error", "match"),
    [
        pytest.param(httpx.Response(503), SmsWwServerError, r"POST /tokens\) answered 503", id="503"),
        pytest.param(
            httpx.ReadTimeout("read timed out"),
            SmsWwTransportError,
            r"after the request was sent.*not repeated",
            id="read-timeout",
        ),
    ],
)
async def test_a_capped_mint_is_not_repeated_once_oauth_may_have_minted_it(
    failure: httpx.Response | Exception, error: type[SmsWwError], match: str, httpx_mock: HTTPXMock
) -> None:
    if isinstance(failure, httpx.Response):
        httpx_mock.add_response(url=TOKENS_URL, method="POST", status_code=failure.status_code)
    else:
        httpx_mock.add_exception(failure, url=TOKENS_URL, method="POST")
    sleeps: list[float] = []
    with pytest.raises(error, match=match):
        await account(sleeps).amint(["*:*/*"], 60, {"walletAmount": 1.0})
    assert len(httpx_mock.get_requests()) == 1
    assert sleeps == []


async def test_a_capped_mint_is_retried_when_the_connection_was_never_made(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("connection refused"), url=TOKENS_URL, method="POST")
    httpx_mock.add_response(url=TOKENS_URL, method="POST", json=token_body())
    sleeps: list[float] = []
    minted = await account(sleeps).amint(["*:*/*"], 60, {"walletAmount": 1.0})
    assert minted.token.get_secret_value() == MINTED
    assert sleeps == pytest.approx(JITTER[:1])


async def test_a_revocation_is_retried_after_a_429(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=REVOKE_URL, method="DELETE", status_code=429, headers={"Retry-After": "1"})
    httpx_mock.add_response(url=REVOKE_URL, method="DELETE", json={"success": True})
    sleeps: list[float] = []
    assert await account(sleeps).arevoke(MINTED) is True
    assert sleeps == pytest.approx([1.0])


async def test_a_revocation_is_not_repeated_after_a_503(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=REVOKE_URL, method="DELETE", status_code=503)
    sleeps: list[float] = []
    with pytest.raises(SmsWwServerError):
        await account(sleeps).arevoke(MINTED)
    assert sleeps == []


# Every failing OAuth path: sets up its mocks, makes its call and ends in an error after its retries.
async def _revoke_429_then_503(m: HTTPXMock) -> Any:
    m.add_response(url=REVOKE_URL, method="DELETE", status_code=429)
    m.add_response(url=REVOKE_URL, method="DELETE", status_code=503, json={"message": f"no {MINTED}"})
    return await account([]).arevoke(MINTED)


async def _revoke_unreachable(m: HTTPXMock) -> Any:
    m.add_exception(httpx.ConnectError(f"refused {REVOKE_URL}"), url=REVOKE_URL, is_reusable=True)
    return await account([], max_retries=1).arevoke(MINTED)


async def _revoke_dropped(m: HTTPXMock) -> Any:
    m.add_exception(httpx.RemoteProtocolError(f"dropped {REVOKE_URL}"), url=REVOKE_URL)
    return await account([]).arevoke(MINTED)


async def _mint_429_then_connect(m: HTTPXMock) -> Any:
    m.add_response(url=TOKENS_URL, status_code=429, json={"message": API_KEY})
    m.add_exception(httpx.ConnectError("refused"), url=TOKENS_URL, is_reusable=True)
    return await account([], max_retries=2).amint(["*:*/*"], 60, {})


async def _wallet_503s(m: HTTPXMock) -> Any:
    m.add_response(url=WALLET_URL, status_code=503, json={"message": API_KEY}, is_reusable=True)
    return await account([], max_retries=1).aget_wallet()


OAUTH_FAILURES = {
    "revoke-429-then-503": _revoke_429_then_503,
    "revoke-unreachable": _revoke_unreachable,
    "revoke-dropped": _revoke_dropped,
    "mint-429-then-connect": _mint_429_then_connect,
    "wallet-503s": _wallet_503s,
}


@pytest.mark.parametrize("path", list(OAUTH_FAILURES))
async def test_no_token_or_api_key_in_oauth_logs_or_errors(
    path: str, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    # httpx's own request lines too, whatever level Airflow's logging config gives its logger.
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="httpx"),
        pytest.raises(SmsWwError) as info,
    ):
        await OAUTH_FAILURES[path](httpx_mock)
    retries = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_smsww._http.retry"]
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    if path.startswith("revoke"):
        assert all("DELETE /tokens/..." in line for line in retries)
        assert all("/tokens/..." in line for line in requests if "DELETE" in line)
        assert "DELETE /tokens/..." in info.value.message
    texts = [caplog.text, str(info.value), repr(info.value), *retries]
    assert info.value.__cause__ is None
    for secret in (MINTED, API_KEY):
        for text in texts:
            assert secret not in text, f"{secret!r} leaked on path {path}"


# --- the clients' token minting ----------------------------------------------------------------------


def test_the_clients_minting_is_retried_after_a_503(harness: Harness, httpx_mock: HTTPXMock) -> None:
    """The clients' token has no cap: a duplicate is an unused token, so a 5xx is retried like a read."""
    httpx_mock.add_response(url=TOKENS_URL, status_code=503)
    httpx_mock.add_response(url=TOKENS_URL, json=token_body())
    httpx_mock.add_response(url=f"{API}/messages/{MESSAGE_ID}", json={"data": message_json()})
    assert get(harness, minter=minter()).id == MESSAGE_ID
    assert harness.sleeps == pytest.approx(JITTER[:1])


def test_a_429_on_minting_pauses_oauth_not_the_sms_api(harness: Harness, httpx_mock: HTTPXMock) -> None:
    """The 429's ``Retry-After`` is OAuth's: the SMS request after the mint does not wait for it again."""
    httpx_mock.add_response(url=TOKENS_URL, status_code=429, headers={"Retry-After": "3"})
    httpx_mock.add_response(url=TOKENS_URL, json=token_body())
    httpx_mock.add_response(url=f"{API}/messages/{MESSAGE_ID}", json={"data": message_json()})
    assert get(harness, minter=minter()).id == MESSAGE_ID
    assert harness.sleeps == pytest.approx([3.0])


# --- the connection's retry policy --------------------------------------------------------------------


def test_oauth_calls_keep_the_connections_retry_policy_and_their_own_limiter() -> None:
    conn = SimpleNamespace(host=API, port=None, login=EMAIL, password="static-token")
    extra = {"api_key": API_KEY, "max_retries": 2, "backoff_base": 0.1, "backoff_max": 4, "rate_limit": 5}
    settings, oauth = client_settings("smsww_oauth_retries", conn, extra)
    assert oauth is not None
    assert oauth.retrying.policy == settings["retry"] == RetryPolicy(2, 0.1, 4.0)
    assert oauth.retrying.limiter is not settings["rate_limiter"]
    assert oauth.retrying.limiter.interval == 0.0  # not paced by the SMS rate
