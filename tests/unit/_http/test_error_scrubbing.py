"""Issue 12 item 5: a gateway or proxy that echoes what it received (the Authorization header, the
callback headers, the Basic credentials of a token request) must not put a secret into an exception,
and so into a traceback or a task log. Every text taken from a response is scrubbed first."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from airflow_provider_smsww._http.auth import TokenMinter
from airflow_provider_smsww._http.client import RetryPolicy, SmsWwClient
from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from tests.fakes import API, TOKEN

OAUTH = "https://oauth.example.test"
API_KEY = "api-key-abcdef0123456789"
MINTED = "minted-token-9876543210"
CALLBACK_SECRET = 'cb-secret-"quoted"-42'


def echo(request: httpx.Request) -> httpx.Response:
    """An unhelpful proxy: answers 422 (or 500) with everything it was sent."""
    echoed = f"bad request {dict(request.headers)} body={request.content.decode()}"
    status = 500 if request.url.host == "oauth.example.test" else 422
    return httpx.Response(status, json={"code": status, "message": echoed})


def test_an_echoed_bearer_token_and_callback_headers_are_scrubbed(
    httpx_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_callback(echo)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SmsWwError) as info:
        SmsWwHook().send_message(
            "+393331234567",
            "Hello",
            callback={"url": "https://hooks.example.test/x", "headers": {"X-Key": CALLBACK_SECRET}},
        )
    text = str(info.value)
    assert "***" in text
    for secret in (TOKEN, CALLBACK_SECRET, json.dumps(CALLBACK_SECRET)[1:-1]):
        assert secret not in text
        assert secret not in caplog.text


def test_echoed_basic_credentials_and_api_key_are_scrubbed_from_a_minting_error(httpx_mock: Any) -> None:
    httpx_mock.add_callback(echo)
    minter = TokenMinter(OAUTH, "ops@example.test", API_KEY, ["*:sms.example.test/*"])
    client = SmsWwClient(API, minter=minter, retry=RetryPolicy(max_retries=0))
    with client, pytest.raises(SmsWwError) as info:
        client.get_message("aaaaaaaaaaaaaaaaaaaaaaa1")
    text = str(info.value)
    assert API_KEY not in text
    basic = httpx_mock.get_requests()[0].headers["Authorization"].split()[1]
    assert basic not in text
    assert "***" in text


def test_a_minted_token_echoed_by_the_api_is_scrubbed(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=f"{OAUTH}/tokens", json={"token": MINTED, "expireAt": None})
    httpx_mock.add_callback(echo, url=httpx.URL(f"{API}/messages/aaaaaaaaaaaaaaaaaaaaaaa1"))
    minter = TokenMinter(OAUTH, "ops@example.test", API_KEY, ["*:sms.example.test/*"])
    client = SmsWwClient(API, minter=minter, retry=RetryPolicy(max_retries=0))
    with client, pytest.raises(SmsWwError) as info:
        client.get_message("aaaaaaaaaaaaaaaaaaaaaaa1")
    assert MINTED not in str(info.value)
    # the proxy did echo the token, and the search finds where it was scrubbed
    (read,) = httpx_mock.get_requests(url=f"{API}/messages/aaaaaaaaaaaaaaaaaaaaaaa1")
    assert read.headers["Authorization"] == f"Bearer {MINTED}"
    assert "***" in str(info.value)
