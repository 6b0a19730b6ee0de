"""No secret (token, minted token, API key, callback header) in any log line or error, on every error
path of a send; the secrets do go out on the wire where they belong."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww._http.client import RetryPolicy
from airflow_provider_smsww.exceptions import (
    SmsWwError,
)
from tests.unit._http.helpers import (
    API,
    HEADER_SECRET,
    MINTED,
    MINTED_2,
    SECRETS,
    TOKENS_URL,
    Harness,
    minter,
    send,
    token_body,
)

# --- secrets ----------------------------------------------------------------------------------------


def _api_401_twice(m: HTTPXMock) -> None:
    m.add_response(url=TOKENS_URL, json=token_body(MINTED))
    m.add_response(url=TOKENS_URL, json=token_body(MINTED_2))
    m.add_response(url=f"{API}/WW-messages", status_code=401, is_reusable=True)


def _mint_then_500(m: HTTPXMock) -> None:
    m.add_response(url=TOKENS_URL, json=token_body(MINTED))
    m.add_response(url=f"{API}/WW-messages", status_code=500)


def _status(status: int) -> Callable[[HTTPXMock], None]:
    def setup(m: HTTPXMock) -> None:
        m.add_response(status_code=status, json={"code": 1, "message": "refused"})

    return setup


#: Every error path of a send: name -> (mock set-up, whether the client mints its token).
SECRET_PATHS: dict[str, tuple[Callable[[HTTPXMock], None], bool]] = {
    **{
        str(status): (_status(status), False) for status in (400, 401, 402, 403, 404, 422, 500, 502, 503, 504)
    },
    "403-2020": (
        lambda m: m.add_response(status_code=403, json={"code": 2020, "message": "blocklisted"}),
        False,
    ),
    "429": (lambda m: m.add_response(status_code=429, headers={"Retry-After": "999"}), False),
    "html": (lambda m: m.add_response(status_code=201, text="<html/>"), False),
    "bad-json": (lambda m: m.add_response(status_code=201, json={"data": {"messageCount": "two"}}), False),
    "read-timeout": (lambda m: m.add_exception(httpx.ReadTimeout("timed out")), False),
    "dropped": (lambda m: m.add_exception(httpx.RemoteProtocolError("Server disconnected")), False),
    "connect": (lambda m: m.add_exception(httpx.ConnectError("refused"), is_reusable=True), False),
    "mint-401": (lambda m: m.add_response(url=TOKENS_URL, status_code=401, json={"message": "no"}), True),
    "mint-no-token": (lambda m: m.add_response(url=TOKENS_URL, json={"data": {}}), True),
    "api-401-twice": (_api_401_twice, True),
    "mint-then-500": (_mint_then_500, True),
}


@pytest.mark.parametrize("path", list(SECRET_PATHS))
def test_no_secret_in_logs_or_errors(
    path: str, harness: Harness, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    setup, minted = SECRET_PATHS[path]
    setup(httpx_mock)
    kwargs: dict[str, Any] = {"retry": RetryPolicy(max_retries=1)}
    if minted:
        kwargs["minter"] = minter()
    with caplog.at_level(logging.DEBUG), pytest.raises(SmsWwError) as info:
        send(harness, **kwargs)
    texts = [caplog.text, str(info.value), repr(info.value), info.value.message]
    texts += [r.getMessage() for r in caplog.records]
    # a chained cause could carry a request; the client raises "from None"
    assert info.value.__cause__ is None
    for secret in SECRETS:
        for text in texts:
            assert secret not in text, f"{secret!r} leaked on path {path}"
    # the secrets did go out on the wire where they belong
    sent = [r for r in httpx_mock.get_requests() if r.url.host == "sms.example.test"]
    if sent:
        assert HEADER_SECRET in sent[0].content.decode()
