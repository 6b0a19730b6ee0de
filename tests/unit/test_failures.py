"""Issue 12 item 7: errors that no retry can cure fail the task without retries (an
``AirflowFailException``), instead of burning every try: refused credentials (401/403), a blocklisted
account, and a malformed message id in the sensor. A 404 and transient trouble stay retryable."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_smsww.compat import AirflowFailException
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwBlocklistedError,
    SmsWwNotFoundError,
    SmsWwValidationError,
)
from airflow_provider_smsww.failures import no_retry
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor
from tests.fakes import IDS, TOKEN, FakeStore, task_context

UNAUTHORIZED = {"status_code": 401, "json": {"code": 401, "message": "Unauthorized"}}
BLOCKLISTED = {"status_code": 403, "json": {"code": 2020, "message": "User blocklisted"}}


@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize(
    ("answer", "cls"), [(UNAUTHORIZED, SmsWwAuthError), (BLOCKLISTED, SmsWwBlocklistedError)]
)
def test_the_operator_fails_for_good_on_refused_credentials(
    httpx_mock: Any, gate: bool, answer: dict[str, Any], cls: type[Exception]
) -> None:
    httpx_mock.add_response(method="POST", is_reusable=True, **answer)
    op = SmsSendOperator(task_id="send", recipients=["+393331234567"], message="Hello", gate=gate)
    with pytest.raises(cls) as info:
        op.execute(task_context(FakeStore()))
    assert isinstance(info.value, AirflowFailException)
    assert TOKEN not in str(info.value)


def test_the_sensor_fails_for_good_on_refused_credentials(httpx_mock: Any) -> None:
    httpx_mock.add_response(method="GET", **UNAUTHORIZED)
    sensor = SmsDeliverySensor(task_id="wait", message_ids=IDS[0], poke_interval=0, deferrable=False)
    with pytest.raises(SmsWwAuthError) as info:
        sensor.execute({"ti": None, "run_id": "manual__1"})
    assert isinstance(info.value, AirflowFailException)


@pytest.mark.parametrize("bad", ["../messages", "not an id!", 12345])
def test_the_sensor_fails_for_good_on_a_malformed_id(httpx_mock: Any, bad: Any) -> None:
    sensor = SmsDeliverySensor(task_id="wait", message_ids=bad, poke_interval=0, deferrable=False)
    with pytest.raises(SmsWwValidationError) as info:
        sensor.execute({"ti": None, "run_id": "manual__1"})
    assert isinstance(info.value, AirflowFailException)
    assert httpx_mock.get_requests() == []


def test_an_auth_error_from_the_trigger_fails_the_deferred_sensor_for_good() -> None:
    sensor = SmsDeliverySensor(task_id="wait", message_ids=IDS[0], deferrable=True)
    event = {"status": "error", "message": "GET /messages answered 401", "error_type": "SmsWwAuthError"}
    with pytest.raises(SmsWwAuthError) as info:
        sensor.execute_complete({}, event)
    assert isinstance(info.value, AirflowFailException)


def test_a_404_stays_retryable() -> None:
    error = SmsWwNotFoundError("not found", status_code=404)
    assert no_retry(error, invalid_input=True) is error
