"""SmsVerifiedApprovalOperator driven by hand against pytest-httpx: the code texted (``POST /otp``), the
human-in-the-loop request opened (Airflow's write of it recorded, not sent), and each response checked
against the code read again from the gateway (``GET /messages/{id}``): the right code, a wrong one then
the right one, attempts exhausted, expiry, "Reject", and the code in no return value, log line or
wait argument."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_smsww import compat
from airflow_provider_smsww.compat import AIRFLOW_VERSION, HITL_WAITS, AirflowFailException, redact
from tests.airflow_versions import task_log_lines

needs_hitl = pytest.mark.skipif(AIRFLOW_VERSION < (3, 1), reason="human-in-the-loop: Airflow 3.1+")

APPROVER = "+393331234567"
CODE = "Q7Z4K9X2"
OTP_ID = "633aabe3e4a9a0e69811ad7f"


class OtpGateway:
    """The OTP side of the API, which the unit tests' ``gateway`` (:class:`tests.fakes.FakeGateway`) does
    not speak: ``POST /otp`` (answers :data:`CODE`), ``GET /messages/{id}`` (the code again, unless
    ``withhold``), and the notifier's ``POST /WW-messages`` (dry run, then the real send)."""

    def __init__(self) -> None:
        self.otp_sends = 0
        self.reads = 0
        self.withhold = False
        self.texts: list[str] = []

    def message(self, **extra: Any) -> dict[str, Any]:
        return {
            "id": OTP_ID,
            "state": "DELIVERED",
            "sender": "OTP MOBILE",
            "recipient": APPROVER,
            "message": f"Your verification code is {CODE}",
            "messageCount": 1,
            "isOtp": True,
            "otp": CODE,
            "options": {"dryRun": False, "failOnMultipleMessages": False},
            **extra,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/otp":
            self.otp_sends += 1
            return httpx.Response(201, json={"data": self.message(state="NEW")})
        if request.method == "GET" and path == f"/messages/{OTP_ID}":
            self.reads += 1
            answer = self.message()
            if self.withhold:
                del answer["otp"]
            return httpx.Response(200, json={"data": answer})
        body = json.loads(request.content)
        dry = body["options"]["dryRun"]
        if not dry:
            self.texts.append(body["message"])
        data = {"id": "" if dry else f"{len(self.texts):024x}", "state": "NEW", "messageCount": 1, **body}
        return httpx.Response(201, json={"data": {**data, "options": body["options"]}})


@pytest.fixture
def otp_gateway(httpx_mock: Any) -> OtpGateway:
    """The fake OTP API of these tests (see :class:`OtpGateway`)."""
    fake = OtpGateway()
    httpx_mock.add_callback(fake, is_reusable=True, is_optional=True)
    return fake


@pytest.fixture
def requests_opened(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each human-in-the-loop request the operator writes (a worker sends it to the API server)."""
    from airflow.providers.standard.operators import hitl

    opened: list[dict[str, Any]] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kwargs: opened.append(kwargs))
    return opened


class RunningTI:
    dag_id, task_id, run_id, map_index, try_number = "release", "approve", "manual__1", -1, 1
    state = "running"

    def __init__(self) -> None:
        self.id = uuid.uuid4()


def operator(**kwargs: Any) -> Any:
    from airflow_provider_smsww.operators.approval import SmsVerifiedApprovalOperator

    kwargs.setdefault("task_id", "approve")
    kwargs.setdefault("approver", APPROVER)
    kwargs.setdefault("subject", "Release Q3 data?")
    kwargs.setdefault("code_length", 8)
    kwargs.setdefault("alphanumeric", True)
    return SmsVerifiedApprovalOperator(**kwargs)


def context_for(op: Any) -> dict[str, Any]:
    ti = RunningTI()
    return {"task": op, "ti": ti, "task_instance": ti, "run_id": ti.run_id}


def wait_of(call: Any) -> Any:
    """What ``call()`` raised to wait for the approver (a deferral, or AWAITING_INPUT on 3.3)."""
    with pytest.raises(HITL_WAITS) as info:
        call()
    return info.value


def response(code: str | None, option: str = "Approve", at: datetime | None = None) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"one_time_password": code},
        "responded_at": at or datetime.now(UTC),
        "responded_by_user": {"id": "1", "name": "ada"},
    }


@needs_hitl
def test_the_right_code_approves_and_the_response_returned_has_no_code(
    otp_gateway: OtpGateway,
    requests_opened: list[dict[str, Any]],
    capsys: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    op = operator()
    ctx = context_for(op)
    wait = wait_of(lambda: op.execute(ctx))
    assert otp_gateway.otp_sends == 1
    assert wait.method_name == "execute_complete"
    assert wait.kwargs["message_id"] == OTP_ID
    assert wait.kwargs["attempt"] == 1
    assert CODE not in json.dumps(wait.kwargs, default=str)
    assert len(requests_opened) == 1
    assert requests_opened[0]["options"] == ["Approve", "Reject"]
    assert requests_opened[0]["defaults"] is None  # no response in time never approves
    assert "one_time_password" in requests_opened[0]["params"]
    if hasattr(wait, "trigger"):  # Airflow 3.1, 3.2: the triggerer masks the typed code
        assert type(wait.trigger).__name__ == "SmsApprovalTrigger"

    result = op.execute_complete(ctx, response(" q7z4 k9x2 "), **wait.kwargs)  # spaces, case: no matter
    assert result["chosen_options"] == ["Approve"]
    assert result["params_input"] == {"one_time_password": None}
    assert otp_gateway.reads == 1
    assert CODE not in json.dumps(result, default=str)
    assert CODE not in str(redact(f"typed {CODE}"))  # masked in the task log from the first read
    lines = task_log_lines(capsys, caplog)
    assert any("One-time code verified (attempt 1)" in line for line in lines)
    assert all(CODE not in line for line in lines)
    assert CODE not in json.dumps(op.hitl_summary, default=str)


@needs_hitl
def test_a_wrong_code_asks_again_then_the_right_one_approves(
    otp_gateway: OtpGateway,
    requests_opened: list[dict[str, Any]],
    capsys: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow_provider_smsww.notifications.smsww import SmsWwNotifier

    op = operator(notifiers=[SmsWwNotifier(recipients=[APPROVER], sender="Airflow")])
    ctx = context_for(op)
    first = wait_of(lambda: op.execute(ctx))
    again = wait_of(lambda: op.execute_complete(ctx, response("WRONG123"), **first.kwargs))
    assert again.kwargs["attempt"] == 2
    assert again.kwargs["message_id"] == OTP_ID
    assert again.kwargs["expires_at"] == first.kwargs["expires_at"]  # the same code, the same expiry
    assert len(requests_opened) == 2  # the request opened again, in the same task
    assert len(otp_gateway.texts) == 2  # and the approver texted again
    # The text sent again says why, how many tries are left and until when the code holds.
    until = datetime.fromisoformat(first.kwargs["expires_at"]).astimezone(UTC)
    notice = f"Wrong code: 2 tries left; the same code is valid until {until:%H:%M} UTC."
    assert op.request_notice == notice
    assert requests_opened[1]["body"].startswith(f"**{notice}**")  # shown where Airflow refreshes it
    assert requests_opened[0]["body"] is None or notice not in requests_opened[0]["body"]
    assert notice not in otp_gateway.texts[0]
    assert otp_gateway.texts[1].startswith(f"Airflow: {notice} Release Q3 data? (Airflow UI, Required")
    lines = task_log_lines(capsys, caplog)
    assert any("attempt 1 of 3) is wrong; asking again: Wrong code: 2 tries left" in line for line in lines)
    result = op.execute_complete(ctx, response(CODE), **again.kwargs)
    assert result["chosen_options"] == ["Approve"]
    assert otp_gateway.otp_sends == 1  # one code for every attempt


@needs_hitl
def test_attempts_run_out_and_the_task_fails_for_good(
    otp_gateway: OtpGateway, requests_opened: list[dict[str, Any]]
) -> None:
    op = operator(max_attempts=2)
    ctx = context_for(op)
    wait = wait_of(lambda: op.execute(ctx))
    wait = wait_of(lambda: op.execute_complete(ctx, response("WRONG123"), **wait.kwargs))
    with pytest.raises(AirflowFailException, match=r"Not approved: 2 wrong one-time code\(s\)") as info:
        op.execute_complete(ctx, response(""), **wait.kwargs)  # an empty code is a wrong one
    assert "max_attempts=2" in str(info.value)
    assert len(requests_opened) == 2


@needs_hitl
def test_a_code_past_its_validity_does_not_approve(
    otp_gateway: OtpGateway, requests_opened: list[dict[str, Any]]
) -> None:
    op = operator(code_valid_for=timedelta(minutes=5))
    ctx = context_for(op)
    wait = wait_of(lambda: op.execute(ctx))
    assert op.response_timeout <= timedelta(minutes=5)  # the request waits only while the code is valid
    timeout = {"error": "The timeout has passed", "error_type": "timeout"}
    with pytest.raises(AirflowFailException, match="no right one-time code before it expired"):
        op.execute_complete(ctx, timeout, **wait.kwargs)
    late = datetime.now(UTC) + timedelta(minutes=6)
    with pytest.raises(AirflowFailException, match="expired"):
        op.execute_complete(ctx, response(CODE, at=late), **wait.kwargs)
    past = {**wait.kwargs, "attempt": 2, "expires_at": (datetime.now(UTC) - timedelta(1)).isoformat()}
    with pytest.raises(AirflowFailException, match="expired"):
        op._ask(ctx, message_id=OTP_ID, attempt=2, expires_at=datetime.fromisoformat(past["expires_at"]))
    assert otp_gateway.reads == 0  # nothing to compare once expired


@needs_hitl
@pytest.mark.parametrize("as_params_dict", [False, True])
def test_params_of_ones_own_keep_their_definitions(as_params_dict: bool) -> None:
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict

    params: Any = {"ticket": Param("CHG-1", type="string", title="Change ticket")}
    op = operator(params=ParamsDict(params) if as_params_dict else params)
    form = op.serialized_params
    assert set(form) == {"ticket", "one_time_password"}
    assert form["ticket"]["schema"]["title"] == "Change ticket"
    assert form["one_time_password"]["schema"]["type"] == ["null", "string"]


@needs_hitl
def test_reject_needs_no_code(otp_gateway: OtpGateway, requests_opened: list[dict[str, Any]]) -> None:
    op = operator()
    ctx = context_for(op)
    wait = wait_of(lambda: op.execute(ctx))
    result = op.execute_complete(ctx, response(None, option="Reject"), **wait.kwargs)
    assert result["chosen_options"] == ["Reject"]
    assert otp_gateway.reads == 0


@needs_hitl
def test_no_code_from_the_gateway_fails_closed(
    otp_gateway: OtpGateway, requests_opened: list[dict[str, Any]]
) -> None:
    otp_gateway.withhold = True
    op = operator()
    ctx = context_for(op)
    wait = wait_of(lambda: op.execute(ctx))
    with pytest.raises(AirflowFailException, match=r"returned no one-time code .* not approved"):
        op.execute_complete(ctx, response(CODE), **wait.kwargs)


@needs_hitl
def test_a_code_too_short_to_mask_is_refused_before_sending(
    otp_gateway: OtpGateway, requests_opened: list[dict[str, Any]]
) -> None:
    op = operator(code_length=4)
    with pytest.raises(AirflowFailException, match="min_length_masked_secret"):
        op.execute(context_for(op))
    assert otp_gateway.otp_sends == 0


@needs_hitl
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"defaults": "Approve"}, "defaults is set by the operator"),
        ({"response_timeout": timedelta(1)}, "response_timeout is set by the operator"),
        ({"code_length": 3}, "code_length"),
        ({"max_attempts": 0}, "max_attempts must be a positive integer"),
        ({"code_valid_for": 60}, "code_valid_for must be a positive timedelta"),
        ({"approver": 393331234567}, "approver must be an E.164 string"),
        ({"params": {"one_time_password": 1}}, "params may not hold 'one_time_password'"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        operator(**kwargs)


def test_before_airflow_3_1_the_dag_fails_to_parse_naming_the_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compat, "AIRFLOW_VERSION", (3, 0))
    with pytest.raises(RuntimeError, match=r"SmsVerifiedApprovalOperator needs Airflow 3\.1 or newer"):
        operator()


@needs_hitl
async def test_the_trigger_masks_the_typed_code_before_the_triggerer_logs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.providers.standard.triggers import hitl

    from airflow_provider_smsww.triggers.approval import SmsApprovalTrigger

    class Answer:
        response_received, chosen_options = True, ["Approve"]
        params_input = {"one_time_password": "typed-Z9Y8X7"}
        responded_at = datetime.now(UTC)
        responded_by_user = type("U", (), {"id": "1", "name": "ada"})()

    monkeypatch.setattr(hitl, "get_hitl_detail_content_detail", lambda ti_id: Answer())
    field = {"value": None, "description": "code", "schema": {"type": ["null", "string"]}}
    trigger = SmsApprovalTrigger(
        mask_params=["one_time_password"],
        ti_id=uuid.uuid4(),
        options=["Approve", "Reject"],
        params={"one_time_password": field},
        timeout_datetime=None,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_smsww.triggers.approval.SmsApprovalTrigger"
    assert kwargs["mask_params"] == ["one_time_password"]
    events = [event async for event in trigger.run()]
    assert events[0].payload["params_input"] == {"one_time_password": "typed-Z9Y8X7"}  # the task checks it
    assert "typed-Z9Y8X7" not in str(redact(repr(events[0])))  # the triggerer's "fired event" line


@pytest.mark.parametrize(
    ("tries_left", "days", "expected"),
    [
        (2, 0, "Wrong code: 2 tries left; the same code is valid until 14:32 UTC."),
        (1, 0, "Wrong code: 1 try left; the same code is valid until 14:32 UTC."),
        (1, 1, "Wrong code: 1 try left; the same code is valid until 2026-12-08 14:32 UTC."),
    ],
)
def test_the_wrong_code_notice_says_the_tries_left_and_until_when(
    tries_left: int, days: int, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_smsww.operators import approval

    now = datetime(2026, 12, 7, 14, 17, tzinfo=UTC)
    clock = type("Clock", (datetime,), {"now": staticmethod(lambda tz: now)})
    monkeypatch.setattr(approval, "datetime", clock)
    expires = now.replace(minute=32) + timedelta(days=days)
    assert approval.wrong_code_notice(tries_left, expires) == expected
