"""When the clients retry: transport errors on reads and real sends (never resent once it may have
arrived), the exponential backoff with full jitter (recorded, never slept), ``Retry-After`` as a floor,
dry runs retried like reads, and the retry log line."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww._http.client import RetryPolicy
from airflow_provider_smsww.exceptions import (
    SmsWwRateLimitError,
    SmsWwSendUncertainError,
    SmsWwServerError,
    SmsWwTransportError,
)
from tests.unit._http.helpers import (
    JITTER,
    MESSAGE_ID,
    SEED,
    Harness,
    get,
    message_json,
    send,
)

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
