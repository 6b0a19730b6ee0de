"""``POST /otp`` in both clients (pytest-httpx): the wire body, a real OTP never resent after an uncertain
outcome, a dry run retried like a read, and the API's 1020 as a validation error."""

from __future__ import annotations

import json

import pytest
from pytest_httpx import HTTPXMock

from airflow_provider_smsww.exceptions import SmsWwSendUncertainError, SmsWwValidationError
from airflow_provider_smsww.models import Message, MessageOptions, SendOtpRequest
from tests.unit._http.helpers import API, JITTER, Harness, message_json


def send_otp(h: Harness, *, dry_run: bool = False, **kwargs: object) -> Message:
    request = SendOtpRequest(
        recipient="+393331234567", length=6, cache_seconds=120, options=MessageOptions(dry_run=dry_run)
    )
    return h.run("send_otp", request, **kwargs)  # type: ignore[no-any-return]


def test_send_otp_posts_the_wire_body(harness: Harness, httpx_mock: HTTPXMock) -> None:
    answer = message_json(isOtp=True, otp="482913", otpOptions={"length": 6, "cacheSeconds": 120})
    httpx_mock.add_response(method="POST", url=f"{API}/otp", status_code=201, json={"data": answer})
    message = send_otp(harness)
    assert message.otp_code() == "482913"
    request = httpx_mock.get_request()
    assert request is not None
    assert json.loads(request.content) == {
        "recipient": "+393331234567",
        "length": 6,
        "alphanumeric": False,
        "cacheSeconds": 120,
        "options": {"dryRun": False, "failOnMultipleMessages": False},
    }


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_real_otp_is_uncertain_and_not_resent_on_5xx(
    status: int, harness: Harness, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=status, text="<html>oops</html>")
    with pytest.raises(SmsWwSendUncertainError, match="POST /otp answered"):
        send_otp(harness)
    assert len(httpx_mock.get_requests()) == 1
    assert harness.sleeps == []


def test_a_dry_run_otp_is_retried_on_5xx(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, text="busy")
    httpx_mock.add_response(status_code=201, json={"data": message_json(isOtp=True, otp="48291")})
    assert send_otp(harness, dry_run=True).otp_code() == "48291"
    assert len(httpx_mock.get_requests()) == 2
    assert harness.sleeps == pytest.approx(JITTER[:1])


def test_the_length_error_1020(harness: Harness, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        status_code=422, json={"code": 1020, "message": "Length must be between 4 and 10."}
    )
    with pytest.raises(SmsWwValidationError, match=r"\(code 1020\).*length must be 4 to 10") as info:
        send_otp(harness)
    assert info.value.code == 1020
    assert len(httpx_mock.get_requests()) == 1
