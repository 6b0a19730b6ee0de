"""SmsWwClient and AsyncSmsWwClient against pytest-httpx mocks: every status path, retries and their
timing (recorded, never slept), pagination, token minting, and no secret in any log line or error.

Most tests run against both clients through :class:`Harness`, so the two are shown to behave the same.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww import __version__
from airflow_provider_smsww._http import auth as auth_module
from airflow_provider_smsww._http.auth import TokenMinter, default_scopes, shared_minter
from airflow_provider_smsww._http.client import AsyncSmsWwClient, RetryPolicy, SmsWwClient
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
    SmsWwTransportError,
    SmsWwValidationError,
)
from airflow_provider_smsww.models import Callback, Message, MessageOptions, MessageState, SendRequest

API = "https://sms.example.test"
OAUTH = "https://oauth.example.test"
TOKENS_URL = f"{OAUTH}/tokens"
TOKEN = "static-token-SECRET-7f3a9c"
MINTED = "minted-token-SECRET-51be02"
MINTED_2 = "minted-token-SECRET-second"
EMAIL = "ops@example.test"
API_KEY = "api-key-SECRET-c0ffee"
HEADER_SECRET = "callback-header-SECRET-9d1e"
SECRETS = (TOKEN, MINTED, MINTED_2, API_KEY, HEADER_SECRET)
SEED = 1234
#: random.Random(SEED).uniform(0, 0.5 * 2**attempt) for attempts 0, 1, 2, ... (full jitter, base 0.5).
JITTER = [0.4832267678460694, 0.4407325991753527, 0.014982940117174381, 3.6439038497964966]
MESSAGE_ID = "633aabe3e4a9a0e69811ad7f"


def message_json(**overrides: Any) -> dict[str, Any]:
    """A MessageResponse with the spec's example values."""
    body: dict[str, Any] = {
        "id": MESSAGE_ID,
        "username": "ops@example.test",
        "state": "NEW",
        "sender": "MyCompany",
        "recipient": "+393331234567",
        "internationalPrefix": "39",
        "countryCode": "IT",
        "message": "Hello! This is a test message.",
        "encoding": "GSM-7",
        "charactersCount": 30,
        "messageCount": 1,
        "price": 0,
        "totalPrice": 0,
        "blocklisted": False,
        "options": {"dryRun": False, "failOnMultipleMessages": False},
        "isOtp": False,
        "createdAt": "2025-11-19T10:00:00Z",
        "updatedAt": "2025-11-19T10:00:00Z",
        "sentAt": None,
        "deliveredAt": None,
    }
    body.update(overrides)
    return body


def send_request(*, dry_run: bool = False, callback: bool = False) -> SendRequest:
    return SendRequest(
        recipient="+393331234567",
        message="Hello! This is a test message.",
        sender="MyCompany",
        options=MessageOptions(dry_run=dry_run),
        callback=Callback(
            url="https://www.mysite.com/myEndpoint",
            headers={"Authorization": HEADER_SECRET},
            custom={"my_custom_id": "123456789"},
        )
        if callback
        else None,
    )


class Harness:
    """Runs one operation on a fresh sync or async client, recording every wait instead of sleeping."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sleeps: list[float] = []

    def make(self, **kwargs: Any) -> SmsWwClient | AsyncSmsWwClient:
        kwargs.setdefault("retry", RetryPolicy(max_retries=3))
        kwargs.setdefault("rng", random.Random(SEED))
        if "minter" not in kwargs:
            kwargs.setdefault("token", TOKEN)
        if self.kind == "sync":
            return SmsWwClient(API, sleep=self.sleeps.append, **kwargs)

        async def record(seconds: float) -> None:
            self.sleeps.append(seconds)

        return AsyncSmsWwClient(API, sleep=record, **kwargs)

    def run(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``operation`` is a client method name; ``list_messages`` is drained into a list."""
        call_kwargs = kwargs.pop("call", {})
        client = self.make(**kwargs)
        if isinstance(client, SmsWwClient):
            with client:
                result = getattr(client, operation)(*args, **call_kwargs)
                return list(result) if operation == "list_messages" else result

        async def main() -> Any:
            async with client:
                if operation == "list_messages":
                    return [m async for m in client.list_messages(*args, **call_kwargs)]
                return await getattr(client, operation)(*args, **call_kwargs)

        return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(request.param)


@pytest.fixture(autouse=True)
def no_shared_minters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "_MINTERS", {})


def send(h: Harness, *, dry_run: bool = False, **kwargs: Any) -> Message:
    return h.run("send_message", send_request(dry_run=dry_run, callback=True), **kwargs)


def get(h: Harness, **kwargs: Any) -> Message:
    return h.run("get_message", MESSAGE_ID, **kwargs)


# --- success ----------------------------------------------------------------------------------------


def test_send_posts_the_wire_body_with_bearer_auth(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{API}/WW-messages", status_code=201, json={"data": message_json()}
    )
    message = send(harness)
    assert message.id == MESSAGE_ID
    assert message.state is MessageState.NEW
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == f"airflow-provider-smsww/{__version__}"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == {
        "recipient": "+393331234567",
        "message": "Hello! This is a test message.",
        "sender": "MyCompany",
        "options": {"dryRun": False, "failOnMultipleMessages": False},
        "callback": {
            "url": "https://www.mysite.com/myEndpoint",
            "method": "JSON",
            "field": "data",
            "retry": 0,
            "headers": {"Authorization": HEADER_SECRET},
            "custom": {"my_custom_id": "123456789"},
        },
    }
    assert harness.sleeps == []


@pytest.mark.parametrize("region", ["WW", "IT", "ES"])
def test_region_picks_the_endpoint(region: str, harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{API}/{region}-messages", status_code=201, json={"data": message_json()})
    harness.run("send_message", send_request(), call={"region": region})
    assert httpx_mock.get_request() is not None


def test_get_message_reads_one_message(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{API}/messages/{MESSAGE_ID}",
        json={"data": message_json(state="DELIVERED", deliveredAt="2025-11-19T10:00:05Z")},
    )
    message = get(harness)
    assert message.state is MessageState.DELIVERED
    assert message.delivered_at == datetime(2025, 11, 19, 10, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("bad_id", ["", "../tokens", "a/b", "id?x=1", "a b"])
def test_message_ids_that_would_change_the_path_are_refused(
    bad_id: str, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    with pytest.raises(SmsWwValidationError, match="is not a message id"):
        harness.run("get_message", bad_id)
    assert httpx_mock.get_requests() == []


def test_a_client_needs_credentials() -> None:
    with pytest.raises(SmsWwAuthError, match="No credentials"):
        SmsWwClient(API)
    with pytest.raises(SmsWwAuthError, match="No credentials"):
        AsyncSmsWwClient(API, token="")


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
            "message": "The recipient number does not belong to the supported country for this endpoint (IT).",
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


# --- transport errors -------------------------------------------------------------------------------

TRANSPORT = [
    pytest.param(httpx.ConnectError("Connection refused"), id="connect-error"),
    pytest.param(httpx.ConnectTimeout("connect timed out"), id="connect-timeout"),
    pytest.param(httpx.ReadTimeout("read timed out"), id="read-timeout"),
    pytest.param(httpx.RemoteProtocolError("Server disconnected without sending a response."), id="dropped"),
]


@pytest.mark.parametrize("error", TRANSPORT)
def test_transport_errors_on_reads_are_retried_then_raised(
    error: httpx.TransportError, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(error, is_reusable=True)
    with pytest.raises(SmsWwTransportError) as info:
        get(harness, retry=RetryPolicy(max_retries=2))
    assert type(error).__name__ in info.value.message
    assert "could not reach the API" in info.value.message
    assert info.value.status_code is None
    assert len(httpx_mock.get_requests()) == 3
    assert harness.sleeps == pytest.approx(JITTER[:2])


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(httpx.ReadTimeout("read timed out"), id="read-timeout"),
        pytest.param(httpx.WriteTimeout("write timed out"), id="write-timeout"),
        pytest.param(httpx.RemoteProtocolError("Server disconnected"), id="dropped"),
        pytest.param(httpx.ReadError("connection reset"), id="reset"),
    ],
)
def test_a_real_send_that_may_have_arrived_is_not_resent(
    error: httpx.TransportError, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(error)
    with pytest.raises(SmsWwSendUncertainError) as info:
        send(harness)
    assert type(error).__name__ in info.value.message
    assert len(httpx_mock.get_requests()) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(httpx.ConnectError("Connection refused"), id="connect-error"),
        pytest.param(httpx.ConnectTimeout("connect timed out"), id="connect-timeout"),
    ],
)
def test_a_real_send_that_never_reached_the_server_is_retried(
    error: httpx.TransportError, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(error)
    httpx_mock.add_exception(error)
    httpx_mock.add_response(status_code=201, json={"data": message_json()})
    assert send(harness).id == MESSAGE_ID
    assert len(httpx_mock.get_requests()) == 3
    assert harness.sleeps == pytest.approx(JITTER[:2])


def test_a_real_send_that_never_connects_ends_as_a_transport_error(
    harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"), is_reusable=True)
    with pytest.raises(SmsWwTransportError):
        send(harness, retry=RetryPolicy(max_retries=1))
    assert len(httpx_mock.get_requests()) == 2


# --- retry timing -----------------------------------------------------------------------------------


def test_reads_back_off_exponentially_with_full_jitter(harness: Harness, httpx_mock: HTTPXMock) -> None:
    for status in (500, 502, 503, 504):
        httpx_mock.add_response(status_code=status)
    httpx_mock.add_response(json={"data": message_json()})
    assert get(harness, retry=RetryPolicy(max_retries=4)).id == MESSAGE_ID
    assert harness.sleeps == pytest.approx(JITTER)
    # full jitter: each wait is somewhere in [0, base * 2**attempt]
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(harness.sleeps))


def test_backoff_is_capped_by_backoff_max(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, is_reusable=True)
    with pytest.raises(SmsWwServerError):
        get(harness, retry=RetryPolicy(max_retries=5, backoff_base=10, backoff_max=1))
    assert len(harness.sleeps) == 5
    assert all(0 <= s <= 1 for s in harness.sleeps)
    rng = random.Random(SEED)
    assert harness.sleeps == pytest.approx([rng.uniform(0, 1) for _ in range(5)])


def test_max_retries_zero_means_one_attempt(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503)
    with pytest.raises(SmsWwServerError):
        get(harness, retry=RetryPolicy(max_retries=0))
    assert len(httpx_mock.get_requests()) == 1
    assert harness.sleeps == []


def test_retry_after_seconds_is_a_floor_for_the_wait(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "7"})
    httpx_mock.add_response(status_code=503, headers={"Retry-After": "0"})
    httpx_mock.add_response(json={"data": message_json()})
    get(harness)
    # 7 beats the first jitter (0.48); "0" leaves the second jitter (0.44) as it is
    assert harness.sleeps == pytest.approx([7.0, JITTER[1]])


def test_retry_after_as_an_http_date(harness: Harness, httpx_mock: HTTPXMock) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    httpx_mock.add_response(status_code=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    httpx_mock.add_response(json={"data": message_json()})
    get(harness)
    assert len(harness.sleeps) == 1
    assert 27 <= harness.sleeps[0] <= 30


def test_retry_after_above_the_cap_stops_at_once(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "3600"}, json={"code": 429})
    with pytest.raises(SmsWwRateLimitError) as info:
        get(harness, retry=RetryPolicy(max_retries=5, max_retry_after=120))
    assert info.value.retry_after == 3600
    assert len(httpx_mock.get_requests()) == 1
    assert harness.sleeps == []


def test_dry_runs_are_retried_like_reads(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=502)
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"))
    httpx_mock.add_response(status_code=201, json={"data": message_json(id="")})
    message = send(harness, dry_run=True)
    assert message.id == ""
    bodies = [json.loads(r.content) for r in httpx_mock.get_requests()]
    assert [b["options"]["dryRun"] for b in bodies] == [True, True, True]
    assert harness.sleeps == pytest.approx(JITTER[:2])


def test_a_real_send_is_retried_after_429(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "1.5"})
    httpx_mock.add_response(status_code=429)
    httpx_mock.add_response(status_code=201, json={"data": message_json()})
    assert send(harness).id == MESSAGE_ID
    assert len(httpx_mock.get_requests()) == 3
    assert harness.sleeps == pytest.approx([1.5, JITTER[1]])


def test_a_real_send_stops_at_the_first_5xx_even_after_a_429(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=429)
    httpx_mock.add_response(status_code=503)
    with pytest.raises(SmsWwSendUncertainError):
        send(harness)
    assert len(httpx_mock.get_requests()) == 2
    assert harness.sleeps == pytest.approx(JITTER[:1])


def test_retries_are_logged_without_secrets(
    harness: Harness, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(status_code=503)
    httpx_mock.add_response(json={"data": message_json()})
    with caplog.at_level(logging.DEBUG):
        get(harness)
    warnings = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_smsww._http.retry"]
    assert warnings == [f"GET /messages/{MESSAGE_ID} answered 503; retry 1/3 in 0.48s"]


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


# --- pagination -------------------------------------------------------------------------------------


def serve_messages(total: int) -> Callable[[httpx.Request], httpx.Response]:
    ids = [f"{i:024x}" for i in range(total)]

    def handler(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"data": [message_json(id=i) for i in ids[skip : skip + limit]]})

    return handler


def pages(httpx_mock: HTTPXMock) -> list[tuple[int, int]]:
    return [(int(r.url.params["skip"]), int(r.url.params["limit"])) for r in httpx_mock.get_requests()]


def test_list_messages_walks_every_page_until_an_empty_one(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(serve_messages(250), url=re.compile(rf"^{API}/messages\?"), is_reusable=True)
    messages = harness.run("list_messages")
    assert [m.id for m in messages] == [f"{i:024x}" for i in range(250)]
    assert pages(httpx_mock) == [(0, 100), (100, 100), (200, 100), (250, 100)]


def test_list_messages_follows_a_server_that_caps_the_page_size(
    harness: Harness, httpx_mock: HTTPXMock
) -> None:
    """A gateway that returns fewer than ``limit`` per page must not end the walk early: reconciliation
    would miss older messages and send them again."""
    full = serve_messages(7)

    def capped(request: httpx.Request) -> httpx.Response:
        return full(httpx.Request("GET", request.url.copy_set_param("limit", 3)))

    httpx_mock.add_callback(capped, is_reusable=True)
    messages = harness.run("list_messages", call={"page_size": 5})
    assert [m.id for m in messages] == [f"{i:024x}" for i in range(7)]
    assert pages(httpx_mock) == [(0, 5), (3, 5), (6, 5), (7, 5)]


def test_list_messages_stops_at_max_items(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(serve_messages(1000), is_reusable=True)
    messages = harness.run("list_messages", call={"page_size": 100, "max_items": 150})
    assert [m.id for m in messages] == [f"{i:024x}" for i in range(150)]
    assert pages(httpx_mock) == [(0, 100), (100, 100)]


def test_list_messages_of_an_empty_account(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"data": []})
    assert harness.run("list_messages") == []


def test_a_page_is_retried_without_losing_the_position(harness: Harness, httpx_mock: HTTPXMock) -> None:
    handler = serve_messages(3)
    httpx_mock.add_callback(handler)
    httpx_mock.add_response(status_code=502)
    httpx_mock.add_callback(handler, is_reusable=True)
    messages = harness.run("list_messages", call={"page_size": 2})
    assert len(messages) == 3
    assert pages(httpx_mock) == [(0, 2), (2, 2), (2, 2), (3, 2)]
    assert harness.sleeps == pytest.approx(JITTER[:1])


# --- token minting ----------------------------------------------------------------------------------


def token_body(
    token: str = MINTED, *, expire_in: float | None = 3600, wrapped: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": token,
        "name": "airflow",
        "scopes": ["*:sms.example.test/*"],
        "createdAt": "2025-11-19T10:00:00Z",
        "refreshToken": "656d1e2f8b3c2a001f7e4a13",
    }
    if expire_in is not None:
        body["expireAt"] = (datetime.now(UTC) + timedelta(seconds=expire_in)).isoformat()
    return {"data": body, "success": True, "message": ""} if wrapped else body


def minter(**kwargs: Any) -> TokenMinter:
    return TokenMinter(OAUTH, EMAIL, API_KEY, ["*:sms.example.test/*"], **kwargs)


def api_tokens(httpx_mock: HTTPXMock) -> list[str]:
    """Bearer tokens the SMS API saw, in order."""
    return [
        r.headers["Authorization"].removeprefix("Bearer ")
        for r in httpx_mock.get_requests()
        if r.url.host == "sms.example.test"
    ]


def mints(httpx_mock: HTTPXMock) -> list[httpx.Request]:
    return httpx_mock.get_requests(url=TOKENS_URL)


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
    """Regression (issue 12 item 6): a token of a 30 s ttl, inside the fixed 60 s margin from the
    start, was minted anew for every request. It is now reused until a quarter of its life is left."""
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
