"""The pydantic models against the spec's (Gateway SMS v1.2.7) example payloads."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from airflow_provider_smsww.models import (
    FAILED_STATES,
    Callback,
    Envelope,
    ErrorBody,
    Message,
    MessageOptions,
    MessageState,
    OtpOptions,
    SendRequest,
    Token,
)

HEADER_SECRET = "9834r5fh589494"  # the spec's example callback header value

#: SendMessageRequest with every field, from the spec's examples.
SPEC_REQUEST: dict[str, Any] = {
    "sender": "MyCompany",
    "recipient": "+393331234567",
    "message": "Hello! This is a test message.",
    "options": {"dryRun": True, "failOnMultipleMessages": True},
    "callback": {
        "method": "POST",
        "field": "data",
        "url": "https://www.mysite.com/myEndpoint",
        "retry": 3,
        "headers": {"session_id": HEADER_SECRET},
        "custom": {"my_custom_id": "123456789"},
    },
}

#: MessageResponse with every field the spec lists (its examples where it gives one).
SPEC_MESSAGE: dict[str, Any] = {
    "id": "633aabe3e4a9a0e69811ad7f",
    "username": "ops@example.test",
    "state": "DELIVERED",
    "sender": "MyCompany",
    "recipient": "+393331234567",
    "internationalPrefix": "39",
    "countryCode": "IT",
    "message": "Hello! This is a test message.",
    "encoding": "GSM-7",
    "charactersCount": 30,
    "messageCount": 1,
    "price": 0.0756,
    "totalPrice": 0.0756,
    "blocklisted": False,
    "blocklistedReason": "",
    "options": {"dryRun": False, "failOnMultipleMessages": False},
    "callback": SPEC_REQUEST["callback"],
    "createdAt": "2025-11-19T10:00:00Z",
    "updatedAt": "2025-11-19T10:00:02.500Z",
    "sentAt": "2025-11-19T10:00:01+00:00",
    "deliveredAt": "2025-11-19T10:00:05Z",
    "isOtp": True,
    "otp": "5F8A2",
    "otpOptions": {"length": 5, "alphanumeric": False, "cacheSeconds": 300},
}


# --- requests ---------------------------------------------------------------------------------------


def test_the_spec_request_round_trips_to_the_same_wire_body() -> None:
    request = SendRequest.model_validate(SPEC_REQUEST)
    assert request.options.dry_run is True
    assert request.options.fail_on_multiple_messages is True
    assert request.callback is not None
    assert request.callback.method == "POST"
    assert request.callback.retry == 3
    assert request.wire() == SPEC_REQUEST
    json.dumps(request.wire())  # JSON-ready


def test_python_names_work_too_and_defaults_follow_the_spec() -> None:
    request = SendRequest(
        recipient="+393331234567",
        message="Hi",
        options=MessageOptions(dry_run=True),
        callback=Callback(url="https://e.example/cb"),
    )
    assert request.wire() == {
        "recipient": "+393331234567",
        "message": "Hi",
        "options": {"dryRun": True, "failOnMultipleMessages": False},
        "callback": {
            "url": "https://e.example/cb",
            "method": "JSON",
            "field": "data",
            "retry": 0,
            "headers": {},
            "custom": {},
        },
    }
    assert "sender" not in request.wire()  # None is left out: the API then uses 'Openapi'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**SPEC_REQUEST, "recipients": ["+393331234567"]}, id="typo-top-level"),
        pytest.param({**SPEC_REQUEST, "dryRun": True}, id="option-at-top-level"),
        pytest.param({"recipient": "+393331234567"}, id="no-message"),
        pytest.param({"message": "hi"}, id="no-recipient"),
        pytest.param({**SPEC_REQUEST, "callback": {"method": "JSON"}}, id="callback-without-url"),
        pytest.param({**SPEC_REQUEST, "callback": {"url": "ftp://x.example/cb"}}, id="callback-ftp"),
        pytest.param({**SPEC_REQUEST, "callback": {"url": "https://x.example", "retry": 6}}, id="retry-6"),
        pytest.param({**SPEC_REQUEST, "callback": {"url": "https://x.example", "retry": -1}}, id="retry-neg"),
        pytest.param(
            {**SPEC_REQUEST, "callback": {"url": "https://x.example", "method": "GET"}}, id="method"
        ),
    ],
)
def test_requests_refuse_unknown_fields_and_bad_values(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SendRequest.model_validate(body)


def test_callback_headers_are_secret_everywhere_but_on_the_wire(caplog: pytest.LogCaptureFixture) -> None:
    request = SendRequest.model_validate(SPEC_REQUEST)
    assert request.callback is not None
    assert isinstance(request.callback.headers["session_id"], SecretStr)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").debug("request %s / %r", request, request)
    shown = [
        repr(request),
        str(request),
        repr(request.callback),
        json.dumps(request.model_dump(mode="json")),
        str(request.model_dump()),
        request.model_dump_json(),
        caplog.text,
    ]
    for text in shown:
        assert HEADER_SECRET not in text
    assert request.model_dump(mode="json")["callback"]["headers"] == {"session_id": "***"}
    # ... and sent as is
    assert request.wire()["callback"]["headers"] == {"session_id": HEADER_SECRET}


def test_callback_headers_stay_secret_in_a_message_read_back() -> None:
    message = Message.model_validate(SPEC_MESSAGE)
    assert message.callback is not None
    assert message.callback.headers["session_id"].get_secret_value() == HEADER_SECRET
    assert HEADER_SECRET not in repr(message)
    assert HEADER_SECRET not in message.model_dump_json()
    assert HEADER_SECRET not in json.dumps(message.summary())


# --- responses --------------------------------------------------------------------------------------


def test_every_field_of_the_spec_message_parses() -> None:
    message = Envelope[Message].model_validate({"data": SPEC_MESSAGE}).data
    assert message.id == "633aabe3e4a9a0e69811ad7f"
    assert message.username == "ops@example.test"
    assert message.state is MessageState.DELIVERED
    assert message.sender == "MyCompany"
    assert message.recipient == "+393331234567"
    assert message.international_prefix == "39"
    assert message.country_code == "IT"
    assert message.message == "Hello! This is a test message."
    assert message.encoding == "GSM-7"
    assert message.characters_count == 30
    assert message.message_count == 1
    assert message.price == Decimal("0.0756")
    assert isinstance(message.total_price, Decimal)
    assert message.total_price == Decimal("0.0756")
    assert message.blocklisted is False
    assert message.blocklisted_reason == ""
    assert message.options == MessageOptions(dry_run=False, fail_on_multiple_messages=False)
    assert message.callback is not None
    assert str(message.callback.url) == "https://www.mysite.com/myEndpoint"
    assert message.callback.custom == {"my_custom_id": "123456789"}
    assert message.is_otp is True
    assert message.created_at == datetime(2025, 11, 19, 10, 0, 0, tzinfo=UTC)
    assert message.updated_at == datetime(2025, 11, 19, 10, 0, 2, 500000, tzinfo=UTC)
    assert message.sent_at == datetime(2025, 11, 19, 10, 0, 1, tzinfo=UTC)
    assert message.delivered_at == datetime(2025, 11, 19, 10, 0, 5, tzinfo=UTC)
    assert message.otp_code() == "5F8A2"
    assert message.otp_options == OtpOptions(length=5, alphanumeric=False, cache_seconds=300)
    assert message.model_extra == {}


def test_an_otp_code_shows_only_through_its_accessor() -> None:
    message = Message.model_validate(SPEC_MESSAGE)
    for shown in (
        repr(message),
        str(message),
        message.summary(),
        message.model_dump(),
        message.model_dump_json(),
        message.model_dump(mode="json"),
    ):
        assert "5F8A2" not in str(shown)
    assert message.model_dump(mode="json")["otp"] == "***"
    assert message.model_dump(mode="json", context={"reveal_secrets": True})["otp"] == "5F8A2"
    assert Message.model_validate({"id": "x"}).otp_code() is None


def test_an_otp_text_never_shows_its_code() -> None:
    sent = Message.model_validate({"isOtp": True, "otp": "83921", "message": "Your code is 83921"})
    assert sent.message == "Your code is ***"
    listed = Message.model_validate({"isOtp": True, "message": "Your code is 83921"})  # code left out
    assert listed.message == "***"
    plain = Message.model_validate({"message": "Order 83921 shipped"})
    assert plain.message == "Order 83921 shipped"


def test_a_fresh_ww_message_has_zero_prices_and_null_timestamps() -> None:
    message = Message.model_validate(
        {"id": "x", "state": "NEW", "price": 0, "totalPrice": 0, "sentAt": None, "deliveredAt": None}
    )
    assert message.price == Decimal(0)
    assert message.total_price == Decimal(0)
    assert message.sent_at is None
    assert message.delivered_at is None


def test_nothing_is_required_and_null_prices_are_zero() -> None:
    """A dry-run answer may leave the id out, and a WW price is 0 (or null) until the message is sent:
    neither may break parsing (the operator refuses to record a real send without an id)."""
    message = Message.model_validate({"state": "NEW", "price": None, "totalPrice": None})
    assert message.id == ""
    assert message.state is MessageState.NEW
    assert message.blocklisted is False
    assert message.price == 0
    assert message.total_price == 0
    with pytest.raises(ValidationError):
        Message.model_validate({"id": "x", "messageCount": "two"})


@pytest.mark.parametrize("state", list(MessageState))
def test_every_state_parses_as_the_enum(state: MessageState) -> None:
    message = Message.model_validate({**SPEC_MESSAGE, "state": state.value})
    assert message.state is state
    assert message.is_final is (state not in (MessageState.NEW, MessageState.PENDING))
    assert message.is_failure is (state in FAILED_STATES)
    assert message.state_name == state.value


def test_failed_states_are_the_three_final_failures() -> None:
    assert {MessageState.UNDELIVERABLE, MessageState.EXPIRED, MessageState.REJECTED} == FAILED_STATES
    assert MessageState.DELIVERED.is_final
    assert not MessageState.DELIVERED.is_failure


def test_an_unknown_state_or_encoding_is_kept_and_treated_as_in_flight() -> None:
    message = Message.model_validate({**SPEC_MESSAGE, "state": "SCHEDULED", "encoding": "UTF-8"})
    assert message.state == "SCHEDULED"
    assert message.state_name == "SCHEDULED"
    assert message.encoding == "UTF-8"
    assert not message.is_final
    assert not message.is_failure


def test_a_blocklisted_message_is_a_failure_whatever_its_state() -> None:
    message = Message.model_validate(
        {**SPEC_MESSAGE, "state": "NEW", "blocklisted": True, "blocklistedReason": "forbidden words"}
    )
    assert message.is_failure
    assert message.blocklisted_reason == "forbidden words"


def test_summary_is_small_json_and_without_the_text() -> None:
    summary = Message.model_validate(SPEC_MESSAGE).summary()
    assert summary == {
        "id": "633aabe3e4a9a0e69811ad7f",
        "recipient": "+393331234567",
        "state": "DELIVERED",
        "messageCount": 1,
        "encoding": "GSM-7",
        "totalPrice": 0.0756,
        "blocklisted": False,
    }
    json.dumps(summary)


def test_a_message_list_envelope() -> None:
    page = Envelope[list[Message]].model_validate({"data": [SPEC_MESSAGE, {"id": "b", "state": "PENDING"}]})
    assert [m.id for m in page.data] == ["633aabe3e4a9a0e69811ad7f", "b"]
    assert page.data[1].state is MessageState.PENDING


# --- errors and tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"code": 2020, "message": "The user is blocklisted."}, 2020, "The user is blocklisted."),
        (
            {"success": False, "message": "missing scopes array", "error": 70, "data": None},
            70,
            "missing scopes array",
        ),
        ({"message": "Unauthorized"}, None, "Unauthorized"),
        ({}, None, None),
    ],
    ids=["spec", "older-envelope", "no-code", "empty"],
)
def test_error_body_reads_both_envelopes(body: dict[str, Any], code: int | None, message: str | None) -> None:
    error = ErrorBody.model_validate(body)
    assert error.api_code == code
    assert error.message == message


@pytest.mark.parametrize(
    "payload",
    [
        {"token": "656d1e2f8b3c2a001f7e4a12", "expireAt": "2025-12-19T10:00:00Z", "scopes": ["GET:a/b"]},
        {
            "token": "656d1e2f8b3c2a001f7e4a12",
            "name": "Service X API token",
            "createdAt": "2025-11-19T10:00:00Z",
            "expireAt": "2025-12-19T10:00:00Z",
            "scopes": ["GET:a/b"],
            "refreshToken": "656d1e2f8b3c2a001f7e4a13",
        },
    ],
    ids=["minimal", "spec-token-detail"],
)
def test_token_parses_and_hides_the_secret(payload: dict[str, Any]) -> None:
    token = Token.model_validate(payload)
    assert token.token.get_secret_value() == "656d1e2f8b3c2a001f7e4a12"
    assert token.expire_at == datetime(2025, 12, 19, 10, 0, tzinfo=UTC)
    assert token.scopes == ["GET:a/b"]
    assert "656d1e2f8b3c2a001f7e4a12" not in repr(token)
