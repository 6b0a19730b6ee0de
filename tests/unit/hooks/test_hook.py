"""SmsWwHook: an Airflow connection (from an AIRFLOW_CONN_ environment variable) becomes a client."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww._http import auth as auth_module
from airflow_provider_smsww._http import client as client_module
from airflow_provider_smsww._http.client import AsyncSmsWwClient, SmsWwClient
from airflow_provider_smsww.exceptions import SmsWwAuthError
from airflow_provider_smsww.hooks import connection as connection_module
from airflow_provider_smsww.hooks.smsww import SmsWwHook

TOKEN = "hook-token-SECRET-a1b2c3"
MINTED = "hook-minted-SECRET-d4e5f6"
EMAIL = "ops@example.test"
API_KEY = "hook-api-key-SECRET-778899"
MESSAGE_ID = "633aabe3e4a9a0e69811ad7f"
MESSAGE = {"data": {"id": MESSAGE_ID, "state": "PENDING"}}


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """No minter shared with other tests; ``mask_secret`` recorded instead of Airflow's."""
    monkeypatch.setattr(auth_module, "_MINTERS", {})
    masked: list[Any] = []
    monkeypatch.setattr(connection_module, "mask_secret", masked.append)
    return masked


def set_json_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str = "smsww_default", **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "smsww", **fields}))


def set_uri_conn(monkeypatch: pytest.MonkeyPatch, uri: str, conn_id: str = "smsww_default") -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)


def probe(hook: SmsWwHook, httpx_mock: HTTPXMock, base_url: str) -> httpx.Request:
    """One read through the hook's client; returns the request the API saw."""
    httpx_mock.add_response(method="GET", url=f"{base_url}/messages/{MESSAGE_ID}", json=MESSAGE)
    assert hook.client.get_message(MESSAGE_ID).id == MESSAGE_ID
    request = httpx_mock.get_requests(url=f"{base_url}/messages/{MESSAGE_ID}")[-1]
    return request


def token_answer(token: str = MINTED) -> dict[str, Any]:
    expire = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return {"data": {"token": token, "expireAt": expire, "scopes": []}}


# --- reading the connection -------------------------------------------------------------------------


def test_json_connection_with_a_token(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, host="https://sms.example.test", password=TOKEN)
    hook = SmsWwHook()
    request = probe(hook, httpx_mock, "https://sms.example.test")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert hook.get_conn() is hook.client
    hook.close()


def test_uri_connection_with_string_extras(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_uri_conn(
        monkeypatch,
        f"smsww://:{quote(TOKEN)}@sms.example.test?sandbox=true&timeout=7.5&max_retries=2",
    )
    hook = SmsWwHook()
    request = probe(hook, httpx_mock, "https://sms.example.test")  # host wins over sandbox
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert hook.client._http.timeout == httpx.Timeout(7.5)
    assert hook.client._plan.retry.max_retries == 2
    hook.close()


def test_an_empty_host_means_production(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, password=TOKEN)
    hook = SmsWwHook()
    probe(hook, httpx_mock, "https://sms.openapi.com")
    # defaults: the client's own timeout and retry policy
    assert hook.client._http.timeout == client_module.DEFAULT_TIMEOUT
    assert hook.client._plan.retry.max_retries == 5
    hook.close()


@pytest.mark.parametrize("sandbox", [True, "true", "True", "1", "yes"])
def test_sandbox_extra_switches_to_the_test_host(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    set_json_conn(monkeypatch, password=TOKEN, extra={"sandbox": sandbox})
    hook = SmsWwHook()
    probe(hook, httpx_mock, "https://test.sms.openapi.com")
    hook.close()


@pytest.mark.parametrize("sandbox", [False, "false", "no", "0", ""])
def test_sandbox_false_stays_on_production(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    set_json_conn(monkeypatch, password=TOKEN, extra={"sandbox": sandbox})
    hook = SmsWwHook()
    probe(hook, httpx_mock, "https://sms.openapi.com")
    hook.close()


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("sms.example.test", "https://sms.example.test"),
        ("sms.example.test/", "https://sms.example.test"),
        ("  sms.example.test  ", "https://sms.example.test"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://sms.example.test:8443", "https://sms.example.test:8443"),
    ],
)
def test_host_override_with_or_without_scheme(
    host: str, base_url: str, monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    set_json_conn(monkeypatch, host=host, password=TOKEN)
    hook = SmsWwHook()
    probe(hook, httpx_mock, base_url)
    hook.close()


@pytest.mark.parametrize(
    ("host", "port", "base_url"),
    [
        ("sms.example.test", 8443, "https://sms.example.test:8443"),
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8080", 9999, "http://127.0.0.1:8080"),  # a port in the host wins
        ("sms.example.test", None, "https://sms.example.test"),
    ],
)
def test_the_port_field_is_used_when_the_host_names_no_port(
    host: str, port: int | None, base_url: str, monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    """Airflow 3.3's form shows Port (its Test button sends it): a Port given there is not ignored."""
    set_json_conn(monkeypatch, host=host, port=port, password=TOKEN)
    hook = SmsWwHook()
    probe(hook, httpx_mock, base_url)
    hook.close()


def test_timeout_and_max_retries_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, password=TOKEN, extra={"timeout": 3, "max_retries": "0"})
    hook = SmsWwHook()
    assert hook.client._http.timeout == httpx.Timeout(3.0)
    assert hook.client._plan.retry.max_retries == 0
    hook.close()


def test_another_connection_id(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, conn_id="sms_eu", host="eu.example.test", password=TOKEN)
    hook = SmsWwHook(smsww_conn_id="sms_eu")
    probe(hook, httpx_mock, "https://eu.example.test")
    hook.close()


# --- minting from email + API key -------------------------------------------------------------------


def test_email_and_api_key_mint_a_masked_token(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock, isolated: list[Any]
) -> None:
    set_json_conn(monkeypatch, login=EMAIL, extra={"api_key": API_KEY, "sandbox": True})
    httpx_mock.add_response(method="POST", url="https://test.oauth.openapi.com/tokens", json=token_answer())
    hook = SmsWwHook()
    request = probe(hook, httpx_mock, "https://test.sms.openapi.com")
    assert request.headers["Authorization"] == f"Bearer {MINTED}"
    mint = httpx_mock.get_request(url="https://test.oauth.openapi.com/tokens")
    assert mint is not None
    assert (
        mint.headers["Authorization"] == "Basic " + base64.b64encode(f"{EMAIL}:{API_KEY}".encode()).decode()
    )
    assert json.loads(mint.content)["scopes"] == ["*:test.sms.openapi.com/*"]
    assert isolated == [MINTED]  # handed to mask_secret as soon as it was minted
    hook.close()


def test_production_minting_uses_the_production_oauth_host(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    set_json_conn(monkeypatch, login=EMAIL, extra={"api_key": API_KEY})
    httpx_mock.add_response(method="POST", url="https://oauth.openapi.com/tokens", json=token_answer())
    hook = SmsWwHook()
    probe(hook, httpx_mock, "https://sms.openapi.com")
    mint = httpx_mock.get_request(url="https://oauth.openapi.com/tokens")
    assert mint is not None
    assert json.loads(mint.content)["scopes"] == ["*:sms.openapi.com/*"]
    hook.close()


def test_oauth_host_and_scopes_extras(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    scopes = ["POST:sms.example.test/WW-messages", "GET:sms.example.test/messages"]
    set_json_conn(
        monkeypatch,
        host="sms.example.test",
        login=EMAIL,
        extra={"api_key": API_KEY, "oauth_host": "localhost:9999", "scopes": scopes},
    )
    httpx_mock.add_response(method="POST", url="https://localhost:9999/tokens", json=token_answer())
    hook = SmsWwHook()
    probe(hook, httpx_mock, "https://sms.example.test")
    mint = httpx_mock.get_request(url="https://localhost:9999/tokens")
    assert mint is not None
    assert json.loads(mint.content)["scopes"] == scopes
    hook.close()


def test_scopes_in_a_uri_connection_are_split(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_uri_conn(
        monkeypatch,
        f"smsww://{quote(EMAIL)}@sms.example.test?api_key={API_KEY}"
        "&oauth_host=http%3A%2F%2Foauth.example.test"
        "&scopes=GET%3Asms.example.test%2Fmessages%2CPOST%3Asms.example.test%2FWW-messages",
    )
    httpx_mock.add_response(method="POST", url="http://oauth.example.test/tokens", json=token_answer())
    hook = SmsWwHook()
    probe(hook, httpx_mock, "https://sms.example.test")
    mint = httpx_mock.get_request(url="http://oauth.example.test/tokens")
    assert mint is not None
    assert json.loads(mint.content)["scopes"] == [
        "GET:sms.example.test/messages",
        "POST:sms.example.test/WW-messages",
    ]
    hook.close()


def test_hooks_share_one_minted_token(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, login=EMAIL, extra={"api_key": API_KEY})
    httpx_mock.add_response(method="POST", url="https://oauth.openapi.com/tokens", json=token_answer())
    for _ in range(3):  # e.g. three tasks in one worker process
        hook = SmsWwHook()
        probe(hook, httpx_mock, "https://sms.openapi.com")
        hook.close()
    assert len(httpx_mock.get_requests(url="https://oauth.openapi.com/tokens")) == 1


def test_a_token_in_the_password_wins_over_minting(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    set_json_conn(monkeypatch, login=EMAIL, password=TOKEN, extra={"api_key": API_KEY})
    hook = SmsWwHook()
    assert probe(hook, httpx_mock, "https://sms.openapi.com").headers["Authorization"] == f"Bearer {TOKEN}"
    assert hook.client._plan.minter is None
    hook.close()


# --- missing credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"login": EMAIL}, id="email-without-api-key"),
        pytest.param({"extra": {"api_key": API_KEY}}, id="api-key-without-email"),
        pytest.param({"password": "", "extra": {"api_key": ""}, "login": EMAIL}, id="empty-values"),
    ],
)
def test_missing_credentials_say_what_to_set(
    fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    set_json_conn(monkeypatch, host="sms.example.test", **fields)
    with pytest.raises(SmsWwAuthError) as info:
        SmsWwHook().client  # noqa: B018
    message = str(info.value)
    assert "'smsww_default' has no credentials" in message
    assert "password" in message
    assert "'api_key' extra" in message
    assert API_KEY not in message
    assert httpx_mock.get_requests() == []


# --- test_connection --------------------------------------------------------------------------------


def test_test_connection_ok(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, host="sms.example.test", password=TOKEN)
    httpx_mock.add_response(url="https://sms.example.test/messages?skip=0&limit=1", json={"data": []})
    hook = SmsWwHook()
    assert hook.test_connection() == (True, "Connection OK: the SMS API accepted the credentials.")
    assert "client" not in hook.__dict__  # closed afterwards


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (401, {"code": 401, "message": "Unauthorized"}, "answered 401"),
        (403, {"code": 1, "message": "scope"}, "lacks the scope"),
        (200, "<html>a captive portal</html>", "non-JSON"),
    ],
)
def test_test_connection_refused(
    status: int,
    body: Any,
    text: str,
    monkeypatch: pytest.MonkeyPatch,
    httpx_mock: HTTPXMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_json_conn(monkeypatch, host="sms.example.test", password=TOKEN)
    if isinstance(body, str):
        httpx_mock.add_response(status_code=status, text=body)
    else:
        httpx_mock.add_response(status_code=status, json=body)
    hook = SmsWwHook()
    with caplog.at_level(logging.DEBUG):
        ok, message = hook.test_connection()
    assert ok is False
    assert text in message
    assert TOKEN not in message
    assert TOKEN not in caplog.text
    assert "client" not in hook.__dict__


def test_test_connection_unreachable(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, host="sms.example.test", password=TOKEN, extra={"max_retries": 0})
    httpx_mock.add_exception(httpx.ConnectError("Name or service not known"))
    ok, message = SmsWwHook().test_connection()
    assert ok is False
    assert "could not reach the API (ConnectError" in message


def test_test_connection_without_credentials(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    set_json_conn(monkeypatch, login=EMAIL, extra={"api_key": ""})
    ok, message = SmsWwHook().test_connection()
    assert ok is False
    assert "has no credentials" in message


def test_test_connection_with_a_wrong_api_key(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    set_json_conn(monkeypatch, login=EMAIL, extra={"api_key": API_KEY})
    httpx_mock.add_response(url="https://oauth.openapi.com/tokens", status_code=401, json={"message": "no"})
    with caplog.at_level(logging.DEBUG):
        ok, message = SmsWwHook().test_connection()
    assert ok is False
    assert "login" in message
    assert "api_key" in message
    assert API_KEY not in message
    assert API_KEY not in caplog.text


# --- UI, async, closing -----------------------------------------------------------------------------


def test_hook_identity_and_ui_field_behaviour() -> None:
    """Airflow 3.3 reads the form's layout from the provider info (the hook has no
    ``get_ui_field_behaviour``: nothing that reads it is supported)."""
    from airflow_provider_smsww import get_provider_info

    assert SmsWwHook.conn_type == "smsww"
    assert SmsWwHook.default_conn_name == "smsww_default"
    assert SmsWwHook.conn_name_attr == "smsww_conn_id"
    assert SmsWwHook.hook_name == "SMS Worldwide (Openapi)"
    assert "get_ui_field_behaviour" not in SmsWwHook.__dict__  # deprecated by Airflow 3.3
    behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    assert behaviour["hidden-fields"] == ["schema"]  # Port shown for the Test button
    assert behaviour["relabeling"] == {
        "login": "Account email",
        "password": "Bearer token",
        "host": "API host",
    }
    assert set(behaviour["placeholders"]) == {"host", "port", "login", "password"}


async def test_get_async_conn_in_async_code(monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock) -> None:
    set_json_conn(monkeypatch, host="sms.example.test", password=TOKEN, extra={"sandbox": "true"})
    httpx_mock.add_response(url=f"https://sms.example.test/messages/{MESSAGE_ID}", json=MESSAGE)
    hook = SmsWwHook()
    client = await hook.get_async_conn()
    assert isinstance(client, AsyncSmsWwClient)
    assert await hook.get_async_conn() is client  # pooled
    message = await client.get_message(MESSAGE_ID)
    assert message.id == MESSAGE_ID
    assert httpx_mock.get_requests()[0].headers["Authorization"] == f"Bearer {TOKEN}"
    await hook.aclose()
    assert client._http.is_closed
    assert await hook.get_async_conn() is not client
    await hook.aclose()


async def test_get_async_conn_mints_in_async_code(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock, isolated: list[Any]
) -> None:
    set_json_conn(monkeypatch, login=EMAIL, extra={"api_key": API_KEY, "sandbox": True})
    httpx_mock.add_response(url="https://test.oauth.openapi.com/tokens", json=token_answer())
    httpx_mock.add_response(url=f"https://test.sms.openapi.com/messages/{MESSAGE_ID}", json=MESSAGE)
    hook = SmsWwHook()
    client = await hook.get_async_conn()
    await client.get_message(MESSAGE_ID)
    assert httpx_mock.get_requests()[-1].headers["Authorization"] == f"Bearer {MINTED}"
    assert isolated == [MINTED]
    await hook.aclose()


async def test_a_sync_built_async_client_is_closed_by_aclose(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, password=TOKEN)
    hook = SmsWwHook()
    hook.open_async_client()  # the sync way, for sync code that runs its own loop
    client = await hook.get_async_conn()
    assert isinstance(client, AsyncSmsWwClient)
    assert await hook.get_async_conn() is client
    await hook.aclose()
    assert client._http.is_closed
    assert await hook.get_async_conn() is not client
    await hook.aclose()


def test_close_closes_the_pool_and_a_new_client_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, password=TOKEN)
    hook = SmsWwHook()
    hook.close()  # nothing open yet: no error
    client = hook.client
    assert isinstance(client, SmsWwClient)
    hook.close()
    assert client._http.is_closed
    assert hook.client is not client
    hook.close()
