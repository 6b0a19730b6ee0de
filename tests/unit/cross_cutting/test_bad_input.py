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
    SmsWwInsufficientCreditError,
    SmsWwNotFoundError,
    SmsWwRateLimitError,
    SmsWwResponseError,
    SmsWwServerError,
    SmsWwTransportError,
    SmsWwValidationError,
)
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor
from tests.fakes import API, TOKEN, set_connection


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
        pytest.param(
            httpx.Response(201, json={"data": {"id": "a1", "messageCount": "two"}}),
            "does not understand",
            id="ill-typed-field",
        ),
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
    # the secrets were in use, and the error searched is the API's answer
    (request,) = httpx_mock.get_requests()
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "cb-secret" in request.content.decode()
    assert "bad token" in str(info.value)


# --- Additions: the rest of the matrix ------------------------------------------------------------

MORE_LOCAL_CASES = [
    pytest.param({"recipients": ["+39 333 123 456a"]}, "not an E.164 number", id="letter-inside"),
    pytest.param({"recipients": ["++393331234567"]}, "not an E.164 number", id="double-plus"),
    pytest.param({"recipients": ["+0393331234567"]}, "not an E.164 number", id="leading-zero-cc"),
    pytest.param({"recipients": [" "]}, "recipient is empty", id="blank-number"),
    pytest.param({"recipients": "+393331234567;+393331234568"}, "not an E.164", id="semicolon-list"),
    pytest.param({"message": "\u20ac" * 153 * 128}, "at most 255", id="oversize-gsm-extension"),
    pytest.param({"message": "\u4f60" * 67 * 256}, "at most 255", id="oversize-ucs2"),
    pytest.param({"sender": "Acme\u00e9"}, "3 to 11", id="sender-accent"),
    pytest.param({"sender": "12 34 56"}, "purely numeric", id="sender-numeric-spaces"),
    pytest.param({"region": "ww"}, "region 'ww' is unknown", id="region-lowercase"),
    pytest.param({"region": ""}, "is unknown", id="region-empty"),
    pytest.param(
        {"region": "ES", "recipients": ["+393331234567"]}, "only sends to ES", id="es-wrong-country"
    ),
    pytest.param({"region": "IT", "recipients": ["+14155550123"]}, "only sends to IT", id="it-us-number"),
    pytest.param(
        {"message": "Ciao \U0001f600 " * 12, "fail_on_multiple_messages": True},
        "fail_on_multiple_messages",
        id="emoji-multipart",
    ),
    pytest.param(
        {"message": "x" * 161, "max_parts_per_message": 1}, "max_parts_per_message is 1", id="max-parts"
    ),
    pytest.param(
        {"callback": {"url": "https://e.example/x", "retry": -1}}, "callback", id="callback-retry-neg"
    ),
    pytest.param(
        {"callback": {"url": "https://e.example/x", "retry": "three"}}, "callback", id="callback-retry-str"
    ),
    pytest.param({"callback": {"url": ""}}, "callback", id="callback-empty-url"),
    pytest.param({"callback": {"retry": 1}}, "callback", id="callback-no-url"),
    pytest.param(
        {"callback": {"url": "https://e.example/x", "headers": {"X": 1}}},
        "callback",
        id="callback-header-type",
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), MORE_LOCAL_CASES)
def test_more_bad_input_is_refused_locally(httpx_mock: Any, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(SmsWwGateError, match="nothing was sent") as info:
        run(**kwargs)
    assert expected in str(info.value)
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("code", "text"),
    [
        pytest.param(2011, "Invalid mobile phone number. Use E.164 format.", id="2011-bad-e164"),
        pytest.param(
            2013, "The recipient number does not belong to the supported country.", id="2013-country"
        ),
        pytest.param(
            2021, "Sender alias must be between 3 and 11 alphanumeric characters.", id="2021-sender"
        ),
        pytest.param(2024, "Sender alias cannot be purely numeric.", id="2024-numeric-sender"),
        pytest.param(
            2044, "The sent message does not comply with the legal requirements.", id="2044-forbidden"
        ),
        pytest.param(2040, "The message needs more than one part.", id="2040-multipart"),
    ],
)
def test_api_refusals_in_the_dry_run_send_nothing(httpx_mock: Any, code: int, text: str) -> None:
    """What only the API can refuse is refused by the free dry run: the gate names the recipient and
    the API's code, and no real send is made for anyone."""
    good, bad = "+393331234567", "+393331234568"

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["recipient"] == bad:
            return httpx.Response(422, json={"code": code, "message": text})
        return httpx.Response(
            201, json={"data": {"id": "a" * 24, "state": "NEW", "recipient": body["recipient"]}}
        )

    httpx_mock.add_callback(answer, is_reusable=True)
    with pytest.raises(SmsWwGateError, match="refused by the dry-run gate") as info:
        run(recipients=[good, bad])
    assert list(info.value.problems) == [bad]
    assert f"code {code}" in str(info.value)
    assert real_sends(httpx_mock) == []


def test_old_style_error_envelope_is_understood(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        status_code=422, json={"success": False, "message": "Wrong recipient", "error": 2011, "data": None}
    )
    with pytest.raises(SmsWwGateError, match="Wrong recipient"):
        run()
    assert real_sends(httpx_mock) == []


@pytest.mark.parametrize(
    ("status", "body", "expected", "match"),
    [
        pytest.param(
            402,
            {"code": 2030, "message": "Insufficient credit"},
            SmsWwInsufficientCreditError,
            "Top up",
            id="402",
        ),
        pytest.param(403, {"code": 403, "message": "no scope"}, SmsWwAuthError, "scope", id="403-scope"),
        pytest.param(
            404, {"code": 404, "message": "Not found"}, SmsWwNotFoundError, "404", id="404-wrong-path"
        ),
    ],
)
def test_account_errors_in_the_gate_stop_everything(
    httpx_mock: Any, status: int, body: dict[str, Any], expected: type[Exception], match: str
) -> None:
    httpx_mock.add_response(status_code=status, json=body, is_reusable=True)
    with pytest.raises(expected, match=match):
        run(recipients=["+393331234567", "+393331234568"])
    assert real_sends(httpx_mock) == []


def test_long_retry_after_in_the_gate_gives_up_at_once_and_sends_nothing(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        status_code=429, headers={"Retry-After": "3600"}, json={"code": 429, "message": "slow"}
    )
    with pytest.raises(SmsWwRateLimitError) as info:
        run()
    assert info.value.retry_after == 3600
    assert len(httpx_mock.get_requests()) == 1
    assert real_sends(httpx_mock) == []


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(502, html="<html>Bad gateway</html>"), id="html-502"),
        pytest.param(httpx.Response(503, text=""), id="empty-503"),
    ],
)
def test_persistent_server_errors_in_the_gate_send_nothing(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any, response: httpx.Response
) -> None:
    set_connection(monkeypatch, host=API, password=TOKEN, extra={"max_retries": 1})
    httpx_mock.add_response(
        status_code=response.status_code,
        content=response.content,
        headers=dict(response.headers),
        is_reusable=True,
    )
    with pytest.raises(SmsWwServerError, match=f"answered {response.status_code}"):
        run()
    assert len(httpx_mock.get_requests()) == 2  # one try, one retry: dry runs are safe to repeat
    assert real_sends(httpx_mock) == []


def test_unreadable_answer_to_a_real_send_is_looked_up_and_not_resent(httpx_mock: Any) -> None:
    """Without the gate, a 201 the provider cannot read is no proof that nothing was sent: it is looked
    up in GET /messages, and while it is not listed the recipient is not sent again; only once it has
    been absent for ``settle_time`` since the send (issue 12 item 4)."""
    httpx_mock.add_response(method="POST", status_code=201, html="<html>ok</html>", is_reusable=True)
    httpx_mock.add_response(method="GET", json={"data": []}, is_reusable=True)
    with pytest.raises(SmsWwError, match="outcome unknown") as info:
        SmsSendOperator(
            task_id="send", recipients="+393331234567", message="Hello", gate=False, settle_time=0.2
        ).execute({"run_id": "r"})
    assert "+393331234567" in str(info.value)
    sends = real_sends(httpx_mock)
    assert len(sends) == 3  # the send and at most 2 resends, each after the settle time
    gets = httpx_mock.get_requests(method="GET")
    assert {r.url.path for r in gets} == {"/messages"}
    assert len(gets) >= 3


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(httpx.ConnectTimeout("timed out"), id="connect-timeout"),
        pytest.param(httpx.ConnectError("connection refused"), id="refused"),
    ],
)
def test_unreachable_host_fails_the_gate_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any, error: Exception
) -> None:
    set_connection(monkeypatch, host="https://127.0.0.1:9", password=TOKEN, extra={"max_retries": 0})
    httpx_mock.add_exception(error, is_reusable=True)
    with pytest.raises(SmsWwTransportError, match="could not reach the API") as info:
        run()
    assert TOKEN not in str(info.value)
    assert real_sends(httpx_mock) == []


def test_login_without_api_key_is_a_clear_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any
) -> None:
    set_connection(monkeypatch, host=API, login="someone@example.test")
    with pytest.raises(SmsWwAuthError, match="api_key"):
        run()
    assert httpx_mock.get_requests() == []


def test_wrong_api_key_fails_at_minting_with_no_send(
    monkeypatch: pytest.MonkeyPatch, httpx_mock: Any
) -> None:
    api_key = "wrong-api-key-98765"
    set_connection(
        monkeypatch,
        host=API,
        login="bad-key@example.test",
        extra={"api_key": api_key, "oauth_host": "https://oauth.example.test"},
    )
    httpx_mock.add_response(
        url="https://oauth.example.test/tokens",
        status_code=401,
        json={"success": False, "message": "Unauthorized", "error": 401, "data": None},
    )
    with pytest.raises(SmsWwAuthError, match="Minting a token failed") as info:
        run()
    assert api_key not in str(info.value)
    assert [r.url.path for r in httpx_mock.get_requests()] == ["/tokens"]


@pytest.mark.parametrize(
    ("message_ids", "expected"),
    [
        pytest.param([], "empty", id="empty-list"),
        pytest.param("", "empty", id="empty-string"),
        pytest.param(["../../tokens"], "is not a message id", id="path-traversal"),
        pytest.param("abc?limit=1", "is not a message id", id="query-injection"),
        pytest.param([{"recipient": "+393331234567"}], "has no message id", id="record-without-id"),
        pytest.param({"dry_run": True, "recipients": []}, "nothing was sent", id="dry-run-estimate"),
        pytest.param([None], "is not a message id", id="none"),
        pytest.param([12345], "is not a message id", id="an-int"),
        pytest.param("[1, 2", "does not parse", id="broken-literal"),
    ],
)
def test_sensor_refuses_bad_message_ids_before_any_request(
    httpx_mock: Any, message_ids: Any, expected: str
) -> None:
    sensor = SmsDeliverySensor(task_id="wait", message_ids=message_ids, poke_interval=1, timeout=5)
    with pytest.raises(SmsWwValidationError, match="message_ids") as info:
        sensor.execute({"run_id": "r"})
    assert expected in str(info.value)
    assert httpx_mock.get_requests() == []


def test_sensor_unknown_id_is_a_clear_error(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=404, json={"code": 404, "message": "Message not found."})
    sensor = SmsDeliverySensor(task_id="wait", message_ids=["0" * 24], poke_interval=1, timeout=5)
    with pytest.raises(SmsWwNotFoundError, match="was not found"):
        sensor.poke({"run_id": "r"})


@pytest.mark.parametrize(
    "recipients", [pytest.param("3331234567", id="national"), pytest.param(["+1", "0039333"], id="several")]
)
def test_notifier_refuses_bad_numbers_with_no_request(httpx_mock: Any, recipients: Any) -> None:
    notifier = SmsWwNotifier(recipients=recipients, message="DAG failed")
    with pytest.raises(SmsWwError, match="SMS alert failed") as info:
        notifier.notify({"run_id": "r"})
    for raw in [recipients] if isinstance(recipients, str) else recipients:
        assert raw in str(info.value)
    assert httpx_mock.get_requests() == []


def test_notifier_sends_to_the_good_number_and_names_the_bad_one(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        status_code=201,
        json={"data": {"id": "b" * 24, "state": "NEW", "recipient": "+393331234567"}},
        is_reusable=True,
    )
    with pytest.raises(SmsWwError, match="1 of 2") as info:
        SmsWwNotifier(recipients=["+393331234567", "+39abc"], message="DAG failed").notify({"run_id": "r"})
    assert "+39abc" in str(info.value)
    sent = [json.loads(r.content) for r in httpx_mock.get_requests()]
    assert [(m["recipient"], m["options"]["dryRun"]) for m in sent] == [
        ("+393331234567", True),  # the alert's text is dry-run once (forbidden words), then sent
        ("+393331234567", False),
    ]
