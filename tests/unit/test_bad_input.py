"""Bad input matrix: every bad input gets a clear, specific error, and no money is spent.

"No money spent" is asserted on the wire: no request at all for what can be checked locally, and no
real (non dry-run) send for what only the API can refuse.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwError,
    SmsWwGateError,
    SmsWwResponseError,
    SmsWwTransportError,
)
from airflow_provider_smsww.operators.smsww import SmsSendOperator

API = "https://sms.example.test"
TOKEN = "bad-input-token-abcdef"


def set_connection(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMSWW_DEFAULT", json.dumps({"conn_type": "smsww", **conn}))


@pytest.fixture(autouse=True)
def connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, host=API, password=TOKEN)


def run(**kwargs: Any) -> Any:
    kwargs.setdefault("recipients", ["+393331234567"])
    kwargs.setdefault("message", "Hello")
    return SmsSendOperator(task_id="send", **kwargs).execute({"run_id": "r"})


def real_sends(httpx_mock: Any) -> list[httpx.Request]:
    return [
        r
        for r in httpx_mock.get_requests()
        if r.method == "POST" and not json.loads(r.content)["options"]["dryRun"]
    ]


LOCAL_CASES = [
    pytest.param({"recipients": ["3331234567"]}, "not an E.164 number", id="national-number"),
    pytest.param({"recipients": ["0039333123456"]}, "instead of '00'", id="double-zero-prefix"),
    pytest.param({"recipients": ["+39abc"]}, "not an E.164 number", id="letters"),
    pytest.param({"recipients": ["+123"]}, "not an E.164 number", id="too-short"),
    pytest.param({"recipients": ["+3933312345678901"]}, "not an E.164 number", id="too-long"),
    pytest.param({"recipients": ["+399"]}, "not an E.164 number", id="nonsense"),
    pytest.param({"recipients": ["+10000000000"]}, "not a valid phone number", id="invalid-for-country"),
    pytest.param({"recipients": []}, "no recipients given", id="no-recipients"),
    pytest.param({"message": ""}, "message is empty", id="empty-message"),
    pytest.param({"message": "   "}, "message is empty", id="blank-message"),
    pytest.param({"message": "x" * 153 * 256}, "at most 255", id="oversize-message"),
    pytest.param({"sender": "AB"}, "3 to 11", id="sender-too-short"),
    pytest.param({"sender": "ABCDEFGHIJKL"}, "3 to 11", id="sender-too-long"),
    pytest.param({"sender": "Acme-Co"}, "3 to 11", id="sender-punctuation"),
    pytest.param({"sender": "12345"}, "purely numeric", id="sender-numeric"),
    pytest.param({"region": "FR"}, "region 'FR' is unknown", id="unknown-region"),
    pytest.param({"region": "IT", "recipients": ["+34612345678"]}, "only sends to IT", id="wrong-country"),
    pytest.param(
        {"message": "Привет " * 11, "fail_on_multiple_messages": True},
        "fail_on_multiple_messages",
        id="non-gsm-multipart",
    ),
    pytest.param({"callback": {"url": "not a url"}}, "callback", id="callback-bad-url"),
    pytest.param({"callback": {"url": "ftp://example.com/x"}}, "callback", id="callback-bad-scheme"),
    pytest.param({"callback": {"url": "https://e.example/x", "retry": 9}}, "callback", id="callback-retry"),
    pytest.param(
        {"callback": {"method": "GET", "url": "https://e.example/x"}}, "callback", id="callback-method"
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), LOCAL_CASES)
def test_refused_locally_with_no_request(httpx_mock: Any, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(SmsWwGateError, match="nothing was sent") as info:
        run(**kwargs)
    assert expected in str(info.value)
    assert httpx_mock.get_requests() == []


def test_every_problem_is_named_at_once(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError) as info:
        run(recipients=["+393331234567", "12", "+1"], sender="1234", message="")
    assert set(info.value.problems) == {"12", "+1", "sender", "message"}
    assert httpx_mock.get_requests() == []


def test_missing_token_is_a_clear_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any
) -> None:
    set_connection(monkeypatch, host=API)
    with pytest.raises(SmsWwAuthError, match="no credentials"):
        run()
    assert httpx_mock.get_requests() == []


def test_wrong_host_is_a_transport_error_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any
) -> None:
    set_connection(
        monkeypatch, host="https://wrong-host.example.test", password=TOKEN, extra={"max_retries": 1}
    )
    httpx_mock.add_exception(httpx.ConnectError("name or service not known"), is_reusable=True)
    with pytest.raises(SmsWwTransportError, match="could not reach the API"):
        run()
    assert real_sends(httpx_mock) == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(httpx.Response(200, html="<html>login</html>"), "non-JSON", id="html-page"),
        pytest.param(httpx.Response(201, json={"ok": True}), "does not understand", id="no-envelope"),
        pytest.param(httpx.Response(201, json={"data": {"state": "NEW"}}), "does not understand", id="no-id"),
        pytest.param(httpx.Response(201, json=[1, 2]), "does not understand", id="a-list"),
    ],
)
def test_unexpected_server_answers_stop_the_gate(
    httpx_mock: Any, response: httpx.Response, expected: str
) -> None:
    httpx_mock.add_response(
        status_code=response.status_code, content=response.content, headers=dict(response.headers)
    )
    with pytest.raises(SmsWwError, match=expected) as info:
        run()
    assert isinstance(info.value, SmsWwResponseError | SmsWwGateError)
    assert real_sends(httpx_mock) == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"code": 401, "message": "Unauthorized"}, SmsWwAuthError),
        (403, {"code": 2020, "message": "The user is blocklisted."}, SmsWwAuthError),
    ],
)
def test_auth_failures_in_the_gate_stop_everything(
    httpx_mock: Any, status: int, body: dict[str, Any], expected: type[Exception]
) -> None:
    httpx_mock.add_response(status_code=status, json=body, is_reusable=True)
    with pytest.raises(expected):
        run(recipients=["+393331234567", "+393331234568"])
    assert real_sends(httpx_mock) == []


def test_no_secret_in_any_error(monkeypatch: pytest.MonkeyPatch, httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=401, json={"message": "bad token"}, is_reusable=True)
    with pytest.raises(SmsWwAuthError) as info:
        run(callback={"url": "https://e.example/x", "headers": {"Authorization": "Basic cb-secret"}})
    assert TOKEN not in str(info.value)
    assert "cb-secret" not in str(info.value)
    assert TOKEN not in repr(info.value)
