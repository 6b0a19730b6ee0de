"""SmsDeliverySensor against pytest-httpx mocks: poke, reschedule and deferrable mode, soft_fail, inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_smsww.compat import (
    AIRFLOW_VERSION,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_smsww.delivery import normalize_message_ids
from airflow_provider_smsww.exceptions import (
    SmsWwAuthError,
    SmsWwDeliveryError,
    SmsWwError,
    SmsWwNotFoundError,
    SmsWwValidationError,
)
from airflow_provider_smsww.sensors.smsww import SmsDeliveryFailedError, SmsDeliverySensor
from airflow_provider_smsww.triggers.smsww import SmsDeliveryTrigger
from tests.fakes import CALLBACK_SECRET, IDS, RECIPIENTS, TEXT, TOKEN, FakeMessages, example_dag_module


@pytest.fixture
def fake(httpx_mock: Any) -> FakeMessages:
    gateway = FakeMessages({})
    httpx_mock.add_callback(gateway, is_reusable=True, is_optional=True)
    return gateway


class FakeTI:
    """What the sensor's reschedule mode needs from the task instance."""

    task_id = "wait"
    map_index = -1
    try_number = 1

    def __init__(self, first_reschedule: Any = None) -> None:
        self.first_reschedule = first_reschedule

    def get_first_reschedule_date(self, context: Any) -> Any:
        return self.first_reschedule


def ctx() -> Any:
    return {"ti": FakeTI(), "run_id": "manual__1"}


def sensor(message_ids: Any = IDS, **kwargs: Any) -> SmsDeliverySensor:
    kwargs.setdefault("poke_interval", 0)
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("deferrable", False)
    return SmsDeliverySensor(task_id="wait", message_ids=message_ids, **kwargs)


# -- poke ---------------------------------------------------------------------------------------------


def test_pending_is_not_done_then_delivered_returns_the_records(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["PENDING", "DELIVERED"], IDS[1]: ["NEW", "DELIVERED"], IDS[2]: ["DELIVERED"]}
    s = sensor()
    assert not s.poke(ctx())
    done = s.poke(ctx())
    assert done.is_done
    records: list[dict[str, Any]] = done.xcom_value or []
    assert [r["id"] for r in records] == IDS
    assert [r["recipient"] for r in records] == RECIPIENTS
    assert {r["state"] for r in records} == {"DELIVERED"}
    dumped = json.dumps(records)  # XCom-ready
    assert TEXT not in dumped
    assert CALLBACK_SECRET not in dumped


def test_poke_mode_does_not_read_final_messages_again(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["DELIVERED"], IDS[1]: ["PENDING", "PENDING", "DELIVERED"], IDS[2]: ["DELIVERED"]}
    result = sensor().execute(ctx())
    assert len(result) == 3
    assert fake.reads.count(IDS[0]) == 1
    assert fake.reads.count(IDS[2]) == 1
    assert fake.reads.count(IDS[1]) == 3


@pytest.mark.parametrize("state", ["UNDELIVERABLE", "EXPIRED", "REJECTED"])
def test_a_final_failure_fails_at_once_naming_id_recipient_and_state(fake: FakeMessages, state: str) -> None:
    fake.states = {IDS[0]: ["PENDING"], IDS[1]: [state], IDS[2]: ["DELIVERED"]}
    with pytest.raises(SmsDeliveryFailedError) as info:
        sensor().poke(ctx())
    text = str(info.value)
    assert IDS[1] in text
    assert RECIPIENTS[1] in text
    assert state in text
    assert IDS[0] not in text  # only the failed one is named
    # A delivery failure is final: no retries (AirflowFailException), and still a provider error.
    assert isinstance(info.value, SmsWwDeliveryError)
    assert isinstance(info.value, AirflowFailException)


def test_blocklisted_message_fails(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["DELIVERED"]}
    fake.blocklisted = {IDS[0]}
    with pytest.raises(SmsWwDeliveryError, match=rf"id={IDS[0]} recipient=\{RECIPIENTS[0]} .*blocklisted"):
        sensor(IDS[0]).poke(ctx())


def test_soft_fail_skips_on_a_delivery_failure(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["UNDELIVERABLE"]}
    with pytest.raises(AirflowSkipException, match=IDS[0]):
        sensor(IDS[0], soft_fail=True).execute(ctx())
    with pytest.raises(AirflowSkipException):
        sensor(IDS[0], never_fail=True).execute(ctx())


def test_min_delivered_succeeds_early(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["DELIVERED"], IDS[1]: ["PENDING"], IDS[2]: ["DELIVERED"]}
    result = sensor(min_delivered=2).poke(ctx())
    assert result.is_done
    assert [r["state"] for r in result.xcom_value or []] == ["DELIVERED", "PENDING", "DELIVERED"]


def test_min_delivered_tolerates_failures_it_can_afford(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["EXPIRED"], IDS[1]: ["PENDING", "DELIVERED"], IDS[2]: ["DELIVERED"]}
    s = sensor(min_delivered=2)
    assert not s.poke(ctx())
    assert s.poke(ctx()).is_done


def test_min_delivered_fails_as_soon_as_it_is_out_of_reach(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["REJECTED"], IDS[1]: ["PENDING"], IDS[2]: ["UNDELIVERABLE"]}
    with pytest.raises(SmsDeliveryFailedError, match="min_delivered=2") as info:
        sensor(min_delivered=2).poke(ctx())
    assert IDS[0] in str(info.value)
    assert IDS[2] in str(info.value)


def test_min_delivered_above_the_number_of_messages_waits_for_all(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["DELIVERED"], IDS[1]: ["DELIVERED"]}
    assert sensor(IDS[:2], min_delivered=9).poke(ctx()).is_done


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_min_delivered_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="min_delivered"):
        sensor(min_delivered=bad)


def test_unknown_id_is_a_clear_error(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["PENDING"]}
    with pytest.raises(SmsWwNotFoundError, match=r"bbbbbbbbbbbbbbbbbbbbbbb9.*not found.*smsww_default"):
        sensor([IDS[0], "bbbbbbbbbbbbbbbbbbbbbbb9"]).poke(ctx())


def test_transient_error_counts_as_not_yet(fake: FakeMessages) -> None:
    fake.states = {key: ["DELIVERED"] for key in IDS}
    fake.faults = [httpx.Response(503, text="busy")]
    s = sensor()
    assert not s.poke(ctx())
    assert fake.reads == [IDS[0]]  # the poke stopped at the first transient error
    assert s.poke(ctx()).is_done


def test_refused_credentials_fail_without_the_token(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=401, json={"code": 401, "message": "Unauthorized"})
    with pytest.raises(SmsWwAuthError) as info:
        sensor(IDS[0]).poke(ctx())
    assert TOKEN not in str(info.value)


def test_timeout_in_poke_mode(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["PENDING"]}
    with pytest.raises(AirflowSensorTimeout):
        sensor(IDS[0], timeout=0).execute(ctx())


# -- inputs -------------------------------------------------------------------------------------------


OPERATOR_XCOM = [
    {"recipient": r, "id": i, "state": "NEW", "messageCount": 1, "encoding": "GSM-7"}
    for r, i in zip(RECIPIENTS, IDS, strict=True)
]


@pytest.mark.parametrize(
    "value",
    [
        OPERATOR_XCOM,
        json.dumps(OPERATOR_XCOM),
        str(OPERATOR_XCOM),  # Jinja's rendering without render_template_as_native_obj
        IDS,
        json.dumps(IDS),
        ",".join(IDS),
        [OPERATOR_XCOM[:2], OPERATOR_XCOM[2:]],  # a mapped upstream pulled whole
        (*tuple(IDS), IDS[0]),  # duplicates are watched once
    ],
)
def test_accepted_message_id_shapes(value: Any) -> None:
    assert normalize_message_ids(value) == IDS


def test_a_single_id() -> None:
    assert normalize_message_ids(f"  {IDS[0]} ") == [IDS[0]]
    assert normalize_message_ids(OPERATOR_XCOM[0]) == [IDS[0]]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ([], "empty"),
        ("", "empty"),
        (None, "NoneType"),
        ("../etc/passwd", "not a message id"),
        ([IDS[0], 42], "int 42"),
        ([{"recipient": "+393331234567", "id": ""}], r"no message id \(recipient \+393331234567\)"),
        ({"dry_run": True, "recipients": [], "total_parts": 1}, "dry_run=True"),
        ("[not json", "does not parse"),
    ],
)
def test_bad_message_ids_are_refused_before_any_request(httpx_mock: Any, value: Any, why: str) -> None:
    with pytest.raises(SmsWwValidationError, match=why):
        sensor(value).execute(ctx())
    assert httpx_mock.get_requests() == []


def test_the_operator_xcom_shape_works_end_to_end(fake: FakeMessages) -> None:
    fake.states = {key: ["DELIVERED"] for key in IDS}
    assert [r["id"] for r in sensor(json.dumps(OPERATOR_XCOM)).execute(ctx())] == IDS


# -- reschedule ---------------------------------------------------------------------------------------


def test_reschedule_mode_needs_no_state_between_pokes(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["DELIVERED"], IDS[1]: ["PENDING", "DELIVERED"], IDS[2]: ["DELIVERED"]}
    with pytest.raises(AirflowRescheduleException):
        sensor(mode="reschedule", poke_interval=30).execute(ctx())
    # A rescheduled try is a new process: a fresh sensor, nothing remembered, every id read again.
    result = sensor(mode="reschedule", poke_interval=30).execute(ctx())
    assert [r["state"] for r in result] == ["DELIVERED"] * 3
    assert fake.reads == IDS + IDS


# -- deferrable ---------------------------------------------------------------------------------------


def test_deferrable_checks_once_then_defers_to_the_trigger(fake: FakeMessages) -> None:
    fake.states = {key: ["PENDING"] for key in IDS}
    s = sensor(
        OPERATOR_XCOM,
        deferrable=True,
        poke_interval=45,
        timeout=7200,
        min_delivered=2,
        smsww_conn_id="smsww_default",
    )
    with pytest.raises(TaskDeferred) as info:
        s.execute(ctx())
    deferred = info.value
    assert isinstance(deferred.trigger, SmsDeliveryTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=7200)
    _, kwargs = deferred.trigger.serialize()
    assert kwargs["message_ids"] == IDS
    assert kwargs["poll_interval"] == 45
    assert kwargs["min_delivered"] == 2
    assert kwargs["smsww_conn_id"] == "smsww_default"
    assert fake.reads == IDS  # the one synchronous check
    # The trigger's first look comes one poke_interval after the sensor's own.
    first = kwargs["not_before"] - datetime.now(UTC)
    assert timedelta(seconds=40) < first <= timedelta(seconds=45)


def test_deferrable_does_not_defer_when_already_done(fake: FakeMessages) -> None:
    fake.states = {key: ["DELIVERED"] for key in IDS}
    result = sensor(deferrable=True).execute(ctx())
    assert [r["id"] for r in result] == IDS


def test_deferrable_without_the_check_defers_with_no_request(httpx_mock: Any) -> None:
    with pytest.raises(TaskDeferred) as info:
        sensor(deferrable=True, check_before_defer=False).execute(ctx())
    assert httpx_mock.get_requests() == []
    assert info.value.trigger.serialize()[1]["not_before"] is None  # nobody looked yet: at once


def test_deferrable_check_fails_fast_on_a_failed_message(fake: FakeMessages) -> None:
    fake.states = {IDS[0]: ["REJECTED"]}
    with pytest.raises(SmsDeliveryFailedError):
        sensor(IDS[0], deferrable=True).execute(ctx())


def test_execute_complete_success_returns_the_records() -> None:
    event = {"status": "success", "message": "done", "messages": OPERATOR_XCOM}
    assert sensor(deferrable=True).execute_complete(ctx(), event) == OPERATOR_XCOM


def test_execute_complete_failure_and_soft_fail() -> None:
    event = {"status": "failure", "message": f"1 of 3 will not be delivered: id={IDS[1]}", "messages": []}
    with pytest.raises(SmsDeliveryFailedError, match=IDS[1]):
        sensor(deferrable=True).execute_complete(ctx(), event)
    with pytest.raises(AirflowSkipException, match=IDS[1]):
        sensor(deferrable=True, soft_fail=True).execute_complete(ctx(), event)
    # The way the task runner resumes a deferred task.
    with pytest.raises(AirflowSkipException):
        sensor(deferrable=True, soft_fail=True).resume_execution("execute_complete", {"event": event}, ctx())


def test_execute_complete_error_rebuilds_the_provider_error() -> None:
    event = {
        "status": "error",
        "message": "SMS message x was not found (404)",
        "error_type": "SmsWwNotFoundError",
    }
    with pytest.raises(SmsWwNotFoundError, match="404"):
        sensor(deferrable=True).execute_complete(ctx(), event)
    event = {"status": "error", "message": "boom", "error_type": "AirflowNotFoundException"}
    with pytest.raises(SmsWwError, match="boom"):
        sensor(deferrable=True).execute_complete(ctx(), event)
    with pytest.raises(SmsWwError, match="without an event"):
        sensor(deferrable=True).execute_complete(ctx(), None)


def test_deferral_timeout_respects_soft_fail() -> None:
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    kwargs = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(AirflowSensorTimeout):
        sensor(deferrable=True).resume_execution(TRIGGER_FAIL_REPR, kwargs, ctx())
    if AIRFLOW_VERSION < (3, 1):  # Airflow 3.0's BaseSensorOperator fails instead (core sensors too)
        return
    with pytest.raises(AirflowSkipException):
        sensor(deferrable=True, soft_fail=True).resume_execution(TRIGGER_FAIL_REPR, kwargs, ctx())


# -- DAG files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["example_smsww_report_ready", "example_smsww_bulk_campaign", "example_smsww_quiet_hours"]
)
def test_example_dags_build_with_the_sensor(name: str) -> None:
    module = example_dag_module(name)
    task = module.dag.get_task("wait_for_delivery")
    assert task.operator_name == "SmsDeliverySensor" or task.task_type == "SmsDeliverySensor"


def test_bulk_campaign_split_dedupes_across_batches() -> None:
    module = example_dag_module("example_smsww_bulk_campaign")
    split = module.split.function
    audience = module.AUDIENCE
    # A number listed again at the end (once in E.164, once the national way) would land in another batch.
    assert audience[:2] == ["333 100 0100", "+393331000101"]
    batches = split([*audience, "+393331000100", "333 100 0101"])
    assert [n for batch in batches for n in batch] == audience  # first occurrence kept, order kept
    assert [len(b) for b in batches] == [module.BATCH_SIZE, module.BATCH_SIZE, 10]
    # The budget is per mapped batch (not a campaign-wide cap): a partial argument of the send mapped
    # over the batches, so each mapped task checks its own batch against it.
    send_batch = module.dag.get_task("send_batch")
    assert send_batch.partial_kwargs["max_total_price"] == module.BATCH_BUDGET_EUR
    assert set(send_batch.expand_input.value) == {"recipients"}
