"""What an answer becomes: every error status mapped to its exception with the API's code, answers the
provider does not understand as response errors, and the ``Retry-After`` header read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww._http.client import RetryPolicy
from airflow_provider_smsww._http.responses import parse_retry_after
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwBlocklistedError,
    SmsWwError,
    SmsWwInsufficientCreditError,
    SmsWwNotFoundError,
    SmsWwRateLimitError,
    SmsWwResponseError,
    SmsWwSendUncertainError,
    SmsWwServerError,
    SmsWwValidationError,
)
from tests.unit._http.helpers import (
    JITTER,
    Harness,
    get,
    message_json,
    send,
)

# --- error mapping ----------------------------------------------------------------------------------

ERRORS = [
    pytest.param(401, {"code": 401, "message": "Unauthorized"}, SmsWwAuthError, 401, id="401"),
    pytest.param(403, {"code": 1003, "message": "Missing scope"}, SmsWwAuthError, 1003, id="403-scope"),
    pytest.param(
        403,
        {"code": 2020, "message": "The user is blocklisted. Please contact support for assistance."},
        SmsWwBlocklistedError,
        2020,
        id="403-blocklisted",
    ),
    pytest.param(
        402, {"code": 2030, "message": "Insufficient credit"}, SmsWwInsufficientCreditError, 2030, id="402"
    ),
    pytest.param(404, {"code": 404, "message": "Message Not Found"}, SmsWwNotFoundError, 404, id="404"),
    pytest.param(
        422,
        {"code": 2011, "message": "Invalid mobile phone number. Use E.164 format."},
        SmsWwValidationError,
        2011,
        id="422-2011",
    ),
    pytest.param(
        422,
        {
            "code": 2013,
            "message": (
                "The recipient number does not belong to the supported country for this endpoint (IT)."
            ),
        },
        SmsWwValidationError,
        2013,
        id="422-2013",
    ),
    pytest.param(
        422,
        {"code": 2021, "message": "Sender alias must be between 3 and 11 alphanumeric characters."},
        SmsWwValidationError,
        2021,
        id="422-2021",
    ),
    pytest.param(
        422,
        {"code": 2024, "message": "Sender alias cannot be purely numeric."},
        SmsWwValidationError,
        2024,
        id="422-2024",
    ),
    pytest.param(
        422,
        {"code": 2044, "message": "The sent message does not comply with the legal requirements."},
        SmsWwValidationError,
        2044,
        id="422-2044",
    ),
    pytest.param(
        422,
        {"success": False, "message": "Invalid mobile phone number.", "error": 2011, "data": None},
        SmsWwValidationError,
        2011,
        id="422-older-envelope",
    ),
    pytest.param(
        403,
        {"success": False, "message": "The user is blocklisted.", "error": 2020, "data": None},
        SmsWwBlocklistedError,
        2020,
        id="403-2020-older-envelope",
    ),
    pytest.param(400, {"message": "Bad Request"}, SmsWwValidationError, None, id="400-no-code"),
    pytest.param(418, {"code": 9, "message": "teapot"}, SmsWwError, 9, id="418-unmapped"),
]


@pytest.mark.parametrize(("status", "body", "exc_type", "code"), ERRORS)
@pytest.mark.parametrize("operation", ["send", "get"])
def test_error_status_maps_to_its_exception_with_the_api_code(
    status: int,
    body: dict[str, Any],
    exc_type: type[SmsWwError],
    code: int | None,
    operation: str,
    harness: Harness,
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(status_code=status, json=body)
    with pytest.raises(SmsWwError) as info:
        send(harness) if operation == "send" else get(harness)
    assert type(info.value) is exc_type
    assert info.value.status_code == status
    assert info.value.code == code
    assert body["message"] in info.value.message
    assert f"answered {status}" in info.value.message
    assert len(httpx_mock.get_requests()) == 1  # 4xx other than 429 is never retried
    assert harness.sleeps == []


def test_auth_errors_say_what_to_check(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=401, json={"code": 401, "message": "Unauthorized"})
    httpx_mock.add_response(status_code=403, json={"code": 7, "message": "Forbidden"})
    with pytest.raises(SmsWwAuthError, match="token or email \\+ API key"):
        get(harness)
    with pytest.raises(SmsWwAuthError, match="lacks the scope"):
        get(harness)


def test_error_messages_name_method_and_path_but_not_host_or_query(
    harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=422, json={"code": 7, "message": "bad paging"})
    with pytest.raises(SmsWwValidationError) as info:
        harness.run("list_messages")
    assert info.value.message.startswith("GET /messages answered 422 (code 7): bad paging")
    assert "example.test" not in info.value.message
    assert "skip=" not in info.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_a_read_is_a_server_error_after_retries(
    status: int, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=status, text="<html>oops</html>", is_reusable=True)
    with pytest.raises(SmsWwServerError) as info:
        get(harness, retry=RetryPolicy(max_retries=2))
    assert info.value.status_code == status
    assert info.value.code is None
    assert len(httpx_mock.get_requests()) == 3
    assert harness.sleeps == pytest.approx(JITTER[:2])


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_a_real_send_is_uncertain_and_not_retried(
    status: int, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=status, json={"code": 1, "message": "upstream"})
    with pytest.raises(SmsWwSendUncertainError, match="may or may not have been accepted") as info:
        send(harness)
    assert info.value.status_code == status
    assert len(httpx_mock.get_requests()) == 1
    assert harness.sleeps == []


def test_429_after_all_retries_is_a_rate_limit_error_with_the_hint(
    harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        status_code=429, headers={"Retry-After": "2"}, json={"code": 429, "message": "Too Many Requests"}
    )
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "2"}, json={"message": "slow down"})
    with pytest.raises(SmsWwRateLimitError) as info:
        get(harness, retry=RetryPolicy(max_retries=1))
    assert info.value.retry_after == 2.0
    assert info.value.status_code == 429
    assert "slow down" in info.value.message
    assert harness.sleeps == [2.0]


# --- answers the provider does not understand -------------------------------------------------------

BAD_ANSWERS = [
    pytest.param(
        {
            "status_code": 201,
            "text": "<html>Welcome to nginx</html>",
            "headers": {"content-type": "text/html"},
        },
        "non-JSON content (text/html)",
        id="html",
    ),
    pytest.param({"status_code": 201, "text": ""}, "non-JSON content", id="empty-body"),
    pytest.param({"status_code": 201, "json": message_json()}, "problem at: data", id="no-envelope"),
    pytest.param({"status_code": 201, "json": {"data": None}}, "problem at: data", id="data-null"),
    pytest.param(
        {"status_code": 201, "json": {"data": {"id": "a1", "price": "free"}}},
        "problem at: data.price",
        id="ill-typed",
    ),
    pytest.param(
        {"status_code": 201, "json": {"data": message_json(createdAt="yesterday")}},
        "problem at: data.createdAt",
        id="bad-timestamp",
    ),
    pytest.param({"status_code": 201, "json": [1, 2]}, "problem at", id="json-list"),
]


@pytest.mark.parametrize(("answer", "text"), BAD_ANSWERS)
def test_unexpected_answers_are_response_errors(
    answer: dict[str, Any], text: str, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(**answer)
    with pytest.raises(SmsWwResponseError) as info:
        send(harness)
    assert text in info.value.message
    assert info.value.status_code == 201


def test_a_list_that_is_not_a_list_is_a_response_error(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"data": message_json()})
    with pytest.raises(SmsWwResponseError, match="GET /messages answered 200 with JSON"):
        harness.run("list_messages")


def test_an_error_page_without_json_keeps_the_status_mapping(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=422, text="<html>Unprocessable</html>")
    with pytest.raises(SmsWwValidationError) as info:
        send(harness)
    assert info.value.code is None
    assert info.value.message.endswith(": Unprocessable Entity")  # the reason phrase, not the HTML


def test_unknown_fields_and_states_from_the_server_do_not_break_parsing(
    harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        json={"data": message_json(state="QUEUED_AT_CARRIER", carrier="Vodafone", route={"hops": 2})}
    )
    message = get(harness)
    assert message.state == "QUEUED_AT_CARRIER"
    assert not message.is_final
    assert message.model_extra == {"carrier": "Vodafone", "route": {"hops": 2}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("12", 12.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=lambda: now) == expected
