"""SmsWwHook.send_otp / asend_otp against pytest-httpx: the body of ``POST /otp``, the code returned and
masked at once (never in a repr, summary, dump or log line), local refusals that make no request, the
API's 1020 as a clear error, the no-blind-resend rule, and codes read back from ``GET /messages``."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.compat import redact
from airflow_provider_smsww.exceptions import SmsWwSendUncertainError, SmsWwValidationError
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from airflow_provider_smsww.models import Message, OtpOptions
from tests.fakes import API

ALICE = "+393331234567"
#: Long and odd enough that no other text of a test contains it by chance.
CODE = "Q7Z4K9X2W8"
OTP_ID = "633aabe3e4a9a0e69811ad7f"


def otp_answer(code: str = CODE, **overrides: Any) -> dict[str, Any]:
    data = {
        "id": OTP_ID,
        "state": "NEW",
        "sender": "OTP MOBILE",
        "recipient": ALICE,
        "message": f"Your verification code is {code}",
        "messageCount": 1,
        "isOtp": True,
        "otp": code,
        "otpOptions": {"length": len(code), "alphanumeric": True, "cacheSeconds": 60},
        "options": {"dryRun": False, "failOnMultipleMessages": False},
        **overrides,
    }
    return {"data": data}


def assert_hidden(message: Message, caplog: pytest.LogCaptureFixture) -> None:
    """The code is nowhere but behind the accessor, and Airflow's masker knows it."""
    for shown in (repr(message), str(message), message.summary(), message.model_dump(mode="json")):
        assert CODE not in str(shown)
    assert all(CODE not in record.getMessage() for record in caplog.records)
    assert CODE not in str(redact(f"the code is {CODE}"))


def test_send_otp_posts_the_spec_body_and_returns_the_code_masked(
    httpx_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(method="POST", url=f"{API}/otp", status_code=201, json=otp_answer())
    with SmsWwHook() as hook:
        message = hook.send_otp("+39 333 123 4567", length=10, alphanumeric=True, cache_seconds=60)
        hook.log.info("sent %r, summary %s", message, message.summary())
    assert json.loads(httpx_mock.get_request().content) == {
        "recipient": ALICE,
        "length": 10,
        "alphanumeric": True,
        "cacheSeconds": 60,
        "options": {"dryRun": False, "failOnMultipleMessages": False},
    }
    assert message.otp_code() == CODE
    assert message.is_otp
    assert message.otp_options == OtpOptions(length=10, alphanumeric=True, cache_seconds=60)
    assert_hidden(message, caplog)


async def test_asend_otp_dry_run_with_a_callback(httpx_mock: Any, hook: SmsWwHook) -> None:
    httpx_mock.add_response(method="POST", url=f"{API}/otp", status_code=201, json=otp_answer())
    message = await hook.asend_otp(ALICE, dry_run=True, callback={"url": "https://h.example.test/cb"})
    body = json.loads(httpx_mock.get_request().content)
    assert body["options"]["dryRun"] is True
    assert (body["length"], body["alphanumeric"], body["cacheSeconds"]) == (5, False, 0)
    assert body["callback"]["url"] == "https://h.example.test/cb"
    assert message.otp_code() == CODE
    assert CODE not in str(redact(CODE))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"length": 3}, "length:"),
        ({"length": 11}, "length:"),
        ({"length": True}, "length:"),
        ({"cache_seconds": -1}, "cache_seconds:"),
        ({"cache_seconds": 601}, "cache_seconds:"),
        ({"recipient": "3331234567"}, "recipient:"),
        ({"recipient": "+39 333"}, "recipient:"),
        ({"alphanumeric": "yes"}, "alphanumeric:"),
        ({"callback": {"url": "https://h.example.test/cb", "header": {}}}, "callback:"),
    ],
)
async def test_parameters_outside_the_spec_are_refused_before_any_request(
    kwargs: dict[str, Any], named: str, httpx_mock: Any, hook: SmsWwHook
) -> None:
    recipient = kwargs.pop("recipient", ALICE)
    with pytest.raises(SmsWwValidationError, match="nothing was sent") as sync_info:
        hook.send_otp(recipient, **kwargs)
    with pytest.raises(SmsWwValidationError) as async_info:
        await hook.asend_otp(recipient, **kwargs)
    assert named in str(sync_info.value)
    assert str(async_info.value) == str(sync_info.value)
    assert httpx_mock.get_requests() == []


def test_every_problem_is_named_at_once(httpx_mock: Any) -> None:
    with SmsWwHook() as hook, pytest.raises(SmsWwValidationError, match=r"3 problem\(s\)") as info:
        hook.send_otp("12", length=2, cache_seconds=900)
    assert "length: must be an integer from 4 to 10, not 2" in str(info.value)
    assert "cache_seconds: must be an integer from 0 to 600, not 900" in str(info.value)
    assert httpx_mock.get_requests() == []


def test_the_api_length_error_1020_is_a_clear_validation_error(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        status_code=422, json={"code": 1020, "message": "Length must be between 4 and 10."}
    )
    with SmsWwHook() as hook, pytest.raises(SmsWwValidationError) as info:
        hook.send_otp(ALICE)
    assert info.value.code == 1020
    assert info.value.status_code == 422
    assert "POST /otp answered 422 (code 1020)" in str(info.value)
    assert "length must be 4 to 10" in str(info.value)


def test_a_real_otp_that_may_have_been_sent_is_not_resent(
    httpx_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import TOKEN, set_connection

    set_connection(monkeypatch, host=API, password=TOKEN, extra={"max_retries": 3})
    httpx_mock.add_response(status_code=502, text="<html>bad gateway</html>")
    with SmsWwHook() as hook, pytest.raises(SmsWwSendUncertainError, match="POST /otp"):
        hook.send_otp(ALICE)
    assert len(httpx_mock.get_requests()) == 1


def test_a_dry_run_otp_is_retried_like_a_read(httpx_mock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import TOKEN, set_connection

    set_connection(monkeypatch, host=API, password=TOKEN, extra={"max_retries": 2, "backoff_base": 0})
    httpx_mock.add_response(status_code=503, text="busy")
    httpx_mock.add_response(status_code=201, json=otp_answer())
    with SmsWwHook() as hook:
        assert hook.send_otp(ALICE, dry_run=True).otp_code() == CODE
    assert len(httpx_mock.get_requests()) == 2


def test_codes_read_back_by_id_and_by_listing_are_masked(
    httpx_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/messages":
            skip = int(request.url.params["skip"])
            return httpx.Response(200, json={"data": [] if skip else [otp_answer()["data"]]})
        return httpx.Response(200, json=otp_answer(state="DELIVERED"))

    httpx_mock.add_callback(answer, is_reusable=True)
    with SmsWwHook() as hook:
        read = [
            hook.get_message(OTP_ID),
            *hook.list_messages(),
            *hook.get_messages([OTP_ID]).values(),
            *hook.get_messages([OTP_ID], by_listing=True).values(),
        ]
    assert [m.otp_code() for m in read] == [CODE] * 4
    for message in read:
        assert_hidden(message, caplog)


def test_bad_input_is_refused_before_the_connection_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMSWW_DEFAULT")
    with pytest.raises(SmsWwValidationError, match="length:"):
        SmsWwHook().send_otp(ALICE, length=3)
    with pytest.raises(TypeError, match="lenght"):
        SmsWwHook().send_otp(ALICE, lenght=5)  # type: ignore[call-arg]
