"""SmsSendOperator(messages=[...]): a text per recipient, against pytest-httpx mocks (issue 21)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import SmsWwGateError
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from tests.fakes import FakeGateway, FakeStore, XComTI, task_context

ALICE, BOB, CAROL = "+393331234567", "+393331234568", "+393331234569"
ENTRIES = [
    {"recipient": ALICE, "message": "Order A1 shipped"},
    {"recipient": BOB, "message": "Order B2 shipped", "sender": "Shop"},
    {"recipient": ALICE, "message": "Order A3 shipped"},  # the same number, another text: sent too
    {"recipient": "+39 333 123 4567", "message": "Order A1 shipped"},  # an exact duplicate: dropped
    {"recipient": CAROL, "message": "Appuntamento domani alle 10 €"},
]


def op(messages: Any = None, **kwargs: Any) -> SmsSendOperator:
    return SmsSendOperator(task_id="send", messages=ENTRIES if messages is None else messages, **kwargs)


def sent(gateway: FakeGateway) -> list[tuple[str, str, str]]:
    return sorted((m["recipient"], m["message"], m["sender"]) for m in gateway.stored)


EXPECTED = sorted(
    [
        (ALICE, "Order A1 shipped", "Openapi"),
        (BOB, "Order B2 shipped", "Shop"),
        (ALICE, "Order A3 shipped", "Openapi"),
        (CAROL, "Appuntamento domani alle 10 €", "Openapi"),
    ]
)


def test_each_entry_is_sent_once_with_its_own_text_and_sender(gateway: FakeGateway) -> None:
    ti = XComTI()
    result = op().execute(task_context(FakeStore(), ti=ti))
    assert sent(gateway) == EXPECTED
    assert len(gateway.dry_runs) == 4  # every distinct entry priced
    # One record per message, in entry order, ready for SmsDeliverySensor.
    assert [r["recipient"] for r in result] == [ALICE, BOB, ALICE, CAROL]
    assert all(r["id"] for r in result)
    json.dumps(result)
    assert ti.xcom["cost"]["messages"] == 4
    assert ti.xcom["cost"]["parts"] == 4


def test_the_operator_sender_is_the_default_of_the_entries(gateway: FakeGateway) -> None:
    op(sender="Negozio").execute(task_context())
    assert {(m["recipient"], m["sender"]) for m in gateway.stored} == {
        (ALICE, "Negozio"),
        (BOB, "Shop"),
        (CAROL, "Negozio"),
    }


def test_both_or_neither_way_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="either messages or recipients and message, not both"):
        SmsSendOperator(task_id="t", messages=ENTRIES, recipients=[ALICE], message="x")
    with pytest.raises(ValueError, match="either messages or recipients and message, not both"):
        SmsSendOperator(task_id="t", messages=ENTRIES, message="x")
    with pytest.raises(ValueError, match=r"give recipients and message .* or messages"):
        SmsSendOperator(task_id="t")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"recipient": ALICE, "message": "x"}, "messages must be a list"),
        ([{"recipient": ALICE, "message": "x"}, "+39333"], r"messages\[1\] must be a dict"),
        ([{"recipient": ALICE}], r"messages\[0\] needs message as a string"),
        ([{"recipient": 393331234567, "message": "x"}], r"messages\[0\] needs recipient as a string"),
        ([{"recipient": ALICE, "message": "x", "from": "Shop"}], r"messages\[0\] has unknown key\(s\) from"),
        ([{"recipient": ALICE, "message": "x", "sender": 5}], r"messages\[0\] sender must be a string"),
    ],
)
def test_a_literal_list_of_the_wrong_shape_is_refused_at_parse_time(bad: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        op(bad)


def test_a_rendered_value_of_the_wrong_shape_is_refused_before_any_request(httpx_mock: Any) -> None:
    task = op("{{ ti.xcom_pull('build') }}")  # a template: checked once rendered
    task.messages = [{"recipient": ALICE, "message": "x"}, {"recipient": BOB}]
    with pytest.raises(SmsWwGateError, match=r"messages\[1\] needs message as a string"):
        task.execute(task_context())
    # Rendered without render_template_as_native_obj: the string Jinja made of the list.
    task.messages = str([{"recipient": ALICE, "message": "Hello"}])
    assert httpx_mock.get_requests() == []


def test_a_list_rendered_to_a_string_is_read_back(gateway: FakeGateway) -> None:
    task = op("{{ ti.xcom_pull('build') }}")
    task.messages = str([{"recipient": ALICE, "message": "Hello"}])
    task.execute(task_context())
    assert sent(gateway) == [(ALICE, "Hello", "Openapi")]


def test_local_problems_name_each_entry_and_nothing_is_sent(httpx_mock: Any) -> None:
    entries = [
        {"recipient": ALICE, "message": "ok"},
        {"recipient": "3331234567", "message": "no plus"},
        {"recipient": BOB, "message": "  "},
        {"recipient": CAROL, "message": "bad sender", "sender": "123456"},
    ]
    with pytest.raises(SmsWwGateError) as info:
        op(entries).execute(task_context())
    assert set(info.value.problems) == {
        "messages[1] (3331234567)",
        f"messages[2] ({BOB})",
        f"messages[3] ({CAROL})",
    }
    assert "nothing was sent" in str(info.value)
    assert httpx_mock.get_requests() == []


def test_the_gate_names_the_entry_it_refused(gateway: FakeGateway) -> None:
    gateway.forbidden.add("A3")
    with pytest.raises(SmsWwGateError) as info:
        op().execute(task_context())
    assert list(info.value.problems) == [f"messages[2] ({ALICE})"]
    assert gateway.stored == []


def test_budget_counts_every_entry(gateway: FakeGateway) -> None:
    with pytest.raises(SmsWwGateError, match="exceeds max_total_price"):
        op(max_total_price=0.15).execute(task_context())  # 4 messages at 0.05
    assert gateway.stored == []
    op(max_total_price=0.2).execute(task_context())
    assert sent(gateway) == EXPECTED


def test_uncertain_sends_are_matched_by_their_own_text(gateway: FakeGateway) -> None:
    # Alice's first message comes back as a 502 after being stored, and her second is accepted:
    # reconciliation must find the first by its own text (not take the second for it), and not resend it.
    gateway.uncertain_once.add(ALICE)
    result = op(max_concurrency=1, settle_time=0).execute(task_context(FakeStore()))
    assert sent(gateway) == EXPECTED
    assert len(result) == 4


def test_a_retry_sends_only_the_entries_not_recorded(gateway: FakeGateway) -> None:
    store = FakeStore(fail_on_set=3)  # set #1 marks the start; the 2nd record write crashes the worker
    with pytest.raises(RuntimeError, match="worker crashed"):
        op(max_concurrency=1).execute(task_context(store))
    store.fail_on_set = None
    result = op(max_concurrency=1, settle_time=0.05).execute(task_context(store, try_number=2))
    assert sent(gateway) == EXPECTED  # each (recipient, text) exactly once
    assert [r["recipient"] for r in result] == [ALICE, BOB, ALICE, CAROL]


def test_dry_run_estimates_every_entry(gateway: FakeGateway) -> None:
    estimate = op(dry_run=True).execute(task_context())
    assert [e["recipient"] for e in estimate["recipients"]] == [ALICE, BOB, ALICE, CAROL]
    assert estimate["total_parts"] == 4
    assert gateway.stored == []


def test_entries_written_nationally_are_read_in_the_default_country(gateway: FakeGateway) -> None:
    national = [
        {**entry, "recipient": "333 123 4567"} if entry["recipient"] == ALICE else entry for entry in ENTRIES
    ]
    op(national, default_country="IT").execute(task_context(FakeStore()))
    assert sent(gateway) == EXPECTED  # "333 123 4567" is ALICE: the exact duplicate is still dropped
