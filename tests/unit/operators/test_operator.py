"""SmsSendOperator against pytest-httpx mocks: the gate, the budget, the ledger, uncertain sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Any

import pytest

from airflow_provider_smsww.compat import TaskDeferred
from airflow_provider_smsww.exceptions import SmsWwError, SmsWwGateError
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sending import order
from airflow_provider_smsww.sending.budget import Spend
from airflow_provider_smsww.sending.cost import cost_summary
from airflow_provider_smsww.triggers.send_wait import SmsSendWaitTrigger
from tests.fakes import TOKEN, FakeGateway, FakeStore, task_context

GOOD = ["+393331234567", "+393331234568", "+393331234569"]


def op(**kwargs: Any) -> SmsSendOperator:
    kwargs.setdefault("recipients", GOOD)
    kwargs.setdefault("message", "Report ready")
    return SmsSendOperator(task_id="send", **kwargs)


def test_sends_to_every_recipient_after_the_gate(gateway: FakeGateway) -> None:
    result = op().execute(task_context(FakeStore()))
    assert gateway.dry_run_to() == GOOD or sorted(gateway.dry_run_to()) == sorted(GOOD)
    assert sorted(gateway.sent_to()) == sorted(GOOD)
    assert [r["recipient"] for r in result] == GOOD
    assert set(result[0]) == {"recipient", "id", "state", "messageCount", "encoding"}
    json.dumps(result)  # XCom-ready


def test_local_problems_refuse_the_batch_with_no_request_at_all(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError) as info:
        op(recipients=["+393331234567", "3331234567", "+1"], sender="123456").execute(task_context())
    assert set(info.value.problems) == {"3331234567", "+1", "sender"}
    assert "nothing was sent" in str(info.value)
    assert httpx_mock.get_requests() == []


def test_api_refusal_in_dry_run_sends_nothing(gateway: FakeGateway) -> None:
    gateway.fail["+393331234568"] = (
        422,
        {"code": 2011, "message": "Invalid mobile phone number. Use E.164 format."},
    )
    with pytest.raises(SmsWwGateError) as info:
        op().execute(task_context())
    assert list(info.value.problems) == ["+393331234568"]
    assert "2011" in str(info.value)
    assert gateway.stored == []


def test_budget_exceeded_sends_nothing(gateway: FakeGateway) -> None:
    with pytest.raises(SmsWwGateError, match="exceeds max_total_price"):
        op(max_total_price=0.10).execute(task_context())
    assert gateway.stored == []


def test_budget_with_unpriced_dry_runs_fails_closed(gateway: FakeGateway) -> None:
    gateway.price = 0.0
    with pytest.raises(SmsWwGateError, match="price_per_part_if_unknown"):
        op(max_total_price=10).execute(task_context())
    assert gateway.stored == []
    op(max_total_price=10, price_per_part_if_unknown=0.1).execute(task_context())
    assert len(gateway.stored) == 3


def test_multi_part_text_is_refused_locally(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match="fail_on_multiple_messages"):
        op(message="x" * 161, fail_on_multiple_messages=True).execute(task_context())
    with pytest.raises(SmsWwGateError, match="max_parts_per_message is 1"):
        op(message="€" * 81, max_parts_per_message=1).execute(task_context())
    assert httpx_mock.get_requests() == []


def test_api_part_count_over_the_limit_is_refused(gateway: FakeGateway) -> None:
    gateway.parts = 3
    with pytest.raises(SmsWwGateError, match="the API counts 3 parts"):
        op(max_parts_per_message=2).execute(task_context())
    assert gateway.stored == []


def test_dry_run_returns_the_estimate_and_sends_nothing(gateway: FakeGateway) -> None:
    estimate = op(dry_run=True).execute(task_context())
    assert gateway.stored == []
    assert estimate["dry_run"] is True
    assert estimate["total_parts"] == 3
    assert estimate["estimated_total_price"] == pytest.approx(0.15)


def test_retry_after_a_crash_sends_each_recipient_exactly_once(gateway: FakeGateway) -> None:
    recipients = [f"+39333123{i:04d}" for i in range(10)]
    # set #1 marks the batch start; sets #2.. record accepted ids: crash while recording the 5th.
    store = FakeStore(fail_on_set=6)
    with pytest.raises(RuntimeError, match="worker crashed"):
        op(recipients=recipients, max_concurrency=1).execute(task_context(store))
    assert len(gateway.stored) == 5  # the 5th was accepted but not recorded: the worst window
    store.fail_on_set = None
    gateway.dry_runs.clear()
    store.gets.clear()
    # A crashed round: the unrecorded ones wait settle_time before they are sent (issue 12 item 4).
    retry = op(recipients=recipients, max_concurrency=1, settle_time=0.05)
    result = retry.execute(task_context(store, try_number=2))
    # The retry reads the ledger once (for the gate and the send alike): the 4 groups the first try
    # wrote (one record each at max_concurrency=1), then the first missing one.
    assert [k for k in store.gets if ":accepted:" in k] == [f"smsww:accepted:{i}" for i in range(5)]
    assert sorted(gateway.sent_to()) == sorted(recipients)  # each exactly once
    assert [r["recipient"] for r in result] == recipients
    # The retry gates only the recipients the first try did not record (4 were recorded).
    assert gateway.dry_run_to() == recipients[4:]


def test_retry_with_every_recipient_recorded_sends_and_prices_nothing(gateway: FakeGateway) -> None:
    store = FakeStore()
    first = op().execute(task_context(store))
    gateway.dry_runs.clear()
    again = op().execute(task_context(store, try_number=2))
    assert again == first
    assert gateway.dry_runs == []
    assert sorted(gateway.sent_to()) == sorted(GOOD)


def test_uncertain_send_is_reconciled_not_resent(gateway: FakeGateway) -> None:
    gateway.uncertain_once.add("+393331234568")
    result = op().execute(task_context(FakeStore()))
    assert sorted(gateway.sent_to()) == sorted(GOOD)
    assert len(result) == 3


def test_credit_exhausted_stops_the_batch_and_names_the_rest(gateway: FakeGateway) -> None:
    gateway.fail["+393331234568"] = (402, {"code": 1, "message": "Insufficient credit"})
    with pytest.raises(SmsWwError, match="failed") as info:
        op(gate=False, max_concurrency=1).execute(task_context(FakeStore()))
    assert "+393331234568" in str(info.value)
    assert gateway.sent_to() == ["+393331234567"]


def test_duplicates_and_formatting_are_sent_once(gateway: FakeGateway) -> None:
    op(recipients="+39 333 123 4567, +393331234567,+39-333-123-4568").execute(task_context())
    assert sorted(gateway.sent_to()) == ["+393331234567", "+393331234568"]


def test_callback_carries_a_deterministic_key_and_headers_stay_secret(
    gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    callback = {"url": "https://hooks.example.test/sms", "headers": {"X-Secret": "cb-secret-value"}}
    result = op(callback=callback).execute(task_context(FakeStore()))
    keys = {m["callback"]["custom"]["smsww_key"] for m in gateway.stored}
    assert len(keys) == 3
    assert all(m["callback"]["headers"] == {"X-Secret": "cb-secret-value"} for m in gateway.stored)
    assert "cb-secret-value" not in json.dumps(result)
    assert "cb-secret-value" not in caplog.text
    assert TOKEN not in caplog.text


def test_invalid_callback_url_is_refused_before_any_request(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwGateError, match="callback"):
        op(callback={"url": "not a url"}).execute(task_context())
    assert httpx_mock.get_requests() == []


def test_a_budget_without_the_gate_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="needs gate=True"):
        SmsSendOperator(task_id="t", recipients=GOOD[0], message="Hi", gate=False, max_total_price=1.0)


def test_numbers_written_nationally_are_sent_once_with_a_default_country(gateway: FakeGateway) -> None:
    recipients = ["333 123 4567", "+39 333 1234567", "0044 7400 123456", "+393331234568"]
    result = op(recipients=recipients, default_country="IT").execute(task_context(FakeStore()))
    assert sorted(gateway.sent_to()) == ["+393331234567", "+393331234568", "+447400123456"]
    assert [r["recipient"] for r in result] == ["+393331234567", "+447400123456", "+393331234568"]


@pytest.mark.parametrize("country", ["Italy", "it", "XX", 39])
def test_a_bad_default_country_is_refused_at_parse_time(country: Any) -> None:
    with pytest.raises(ValueError, match="default_country"):
        op(default_country=country)
    with pytest.raises(ValueError, match="default_country"):
        SmsSendOperator.partial(task_id="mapped", message="Hi", default_country=country)


def test_a_window_and_a_settle_due_at_the_same_moment_defer_once_naming_both(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both waits end at the same moment: the one deferral says both reasons, and counts as a settle
    round (an int the trigger hands back)."""
    moment = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    lookup = {"messages": [{"recipient": GOOD[1]}]}
    cost = cost_summary([], [], price_per_part_if_unknown=None, credit=None, spend=Spend(None), limit="none")

    async def both_waits(*_: Any, **__: Any) -> order.SendOutcome:
        outcome = order.SendOutcome([], {}, 0, cost, None, waiting=1, waiting_until=moment)
        outcome.settle_at, outcome.lookup = moment, lookup
        return outcome

    monkeypatch.setattr(order, "send", both_waits)
    with pytest.raises(TaskDeferred) as info:
        op(send_window=(time(8), time(20)), deferrable=True).execute(task_context(FakeStore()))
    trigger = info.value.trigger
    assert isinstance(trigger, SmsSendWaitTrigger)
    assert trigger.moment == moment
    assert trigger.reason == (
        "1 recipient(s) outside their send window; 1 send(s) of unknown outcome to settle"
    )
    assert trigger.lookup == lookup
    assert trigger.rounds == 1
    assert type(trigger.rounds) is int
