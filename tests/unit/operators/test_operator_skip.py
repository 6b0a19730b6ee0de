"""``on_invalid="skip"`` (issue 28): rows refused locally or, for their number, by the dry run are left
out and reported (XCom ``refused``, a warning, the ``smsww.refused`` counter); the rest is sent with
every guarantee; a share above ``max_refused_fraction`` sends nothing. Against pytest-httpx mocks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import SmsWwGateError
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sending.refusals import Refused, check_share
from tests.airflow_versions import task_log_lines
from tests.fakes import FakeGateway, FakeStore, StatsRecorder, XComTI, recorded_metrics, task_context

GOOD = [f"+39333123{n:04d}" for n in range(18)]
NOT_A_NUMBER = "call me"
GATEWAY_REFUSED = "+393331239999"  # a valid number the gateway refuses (422 2011)


@pytest.fixture
def metrics() -> Iterator[StatsRecorder]:
    with recorded_metrics() as recorder:
        yield recorder


def op(recipients: list[str] | None = None, **kwargs: Any) -> SmsSendOperator:
    kwargs.setdefault("message", "Spring sale")
    kwargs.setdefault("on_invalid", "skip")
    return SmsSendOperator(task_id="send", recipients=GOOD if recipients is None else recipients, **kwargs)


def refuse_number(gateway: FakeGateway, number: str) -> None:
    gateway.fail[number] = (422, {"code": 2011, "message": "Invalid mobile phone number. Use E.164 format."})


def real_sends(gateway: FakeGateway) -> list[str]:
    return sorted(m["recipient"] for m in gateway.stored)


def test_rows_refused_locally_and_by_the_gateway_are_left_out_and_reported(
    gateway: FakeGateway, metrics: StatsRecorder, capsys: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refuse_number(gateway, GATEWAY_REFUSED)
    ti = XComTI()
    rows = [*GOOD, NOT_A_NUMBER, "+39 333 123 9999"]
    caplog.set_level(logging.INFO)
    records = op(rows).execute(task_context(FakeStore(), ti=ti))

    assert real_sends(gateway) == sorted(GOOD)
    assert [r["recipient"] for r in records] == GOOD
    (local, by_gateway) = ti.xcom["refused"]
    assert local["recipient"] == NOT_A_NUMBER
    assert "'call me' is not an E.164 number" in local["reason"]
    assert by_gateway["recipient"] == "+39 333 123 9999"  # as given, not as sent
    assert "422 (code 2011)" in by_gateway["reason"]
    assert ("smsww.refused", 2, {"dag_id": "adhoc_airflow", "task_id": "send"}) in metrics.counts
    logged = "\n".join(task_log_lines(capsys, caplog))
    assert "Rows left out, not sent (on_invalid='skip'): 2 problem(s)" in logged
    assert "; 1 refused row(s) left out" in logged  # the local one: the gateway refused the other later
    assert ti.xcom["cost"]["messages"] == len(GOOD)  # the budget and the cost count the sent ones only


def test_a_share_above_the_limit_sends_nothing_and_names_the_share(gateway: FakeGateway) -> None:
    rows = [*GOOD[:8], "n/a", "no", "333 123 0001"]  # 3 of 11 unreadable without default_country: 27%
    with pytest.raises(
        SmsWwGateError, match=r"3 of 11 row\(s\) \(27\.3%\) refused, above max_refused_fraction"
    ):
        op(rows).execute(task_context(FakeStore()))
    assert gateway.posts == []  # not even a dry run


def test_gateway_refusals_count_in_the_share_before_any_real_send(gateway: FakeGateway) -> None:
    for number in GOOD[:3]:
        refuse_number(gateway, number)
    with pytest.raises(SmsWwGateError, match=r"3 of 18 row\(s\) \(16\.7%\) refused") as info:
        op().execute(task_context(FakeStore()))
    assert gateway.stored == []
    assert all(dry for _, dry in gateway.posts)  # dry runs only
    assert info.value.problems["refused_share"] == "3 of 18 row(s) (16.7%) refused"


def test_content_refused_for_everyone_still_fails_the_batch(gateway: FakeGateway) -> None:
    gateway.forbidden.add("sale")
    with pytest.raises(SmsWwGateError, match="refused by the dry-run gate"):
        op().execute(task_context(FakeStore()))
    assert gateway.stored == []


def test_by_default_one_bad_row_refuses_the_batch(gateway: FakeGateway) -> None:
    with pytest.raises(SmsWwGateError, match="call me"):
        op([*GOOD, NOT_A_NUMBER], on_invalid="fail").execute(task_context())
    assert gateway.posts == []


def test_a_personalised_entry_refused_is_named_by_its_place(gateway: FakeGateway) -> None:
    entries = [{"recipient": n, "message": f"Hello {i}"} for i, n in enumerate(GOOD)]
    entries[4] = {**entries[4], "sender": "x"}  # a sender of 1 character: this entry only
    ti = XComTI()
    SmsSendOperator(task_id="send", messages=entries, on_invalid="skip").execute(task_context(ti=ti))
    (row,) = ti.xcom["refused"]
    assert (row["index"], row["recipient"]) == (4, GOOD[4])
    assert "sender" in row["reason"]
    assert len(gateway.stored) == len(GOOD) - 1


def test_a_retry_sends_only_the_rows_not_accepted_and_reports_the_same_refusals(gateway: FakeGateway) -> None:
    store = FakeStore(fail_on_set=4)  # the worker dies while recording the third message
    rows = [*GOOD[:6], NOT_A_NUMBER]  # 1 of 7 rows (14%): within max_refused_fraction=0.2 below
    with pytest.raises(RuntimeError, match="worker crashed"):
        op(rows, max_concurrency=1, max_refused_fraction=0.2).execute(task_context(store))
    store.fail_on_set = None
    ti = XComTI(try_number=2)
    op(rows, max_concurrency=1, max_refused_fraction=0.2, settle_time=0.05).execute(
        task_context(store, ti=ti)
    )
    assert real_sends(gateway) == sorted(GOOD[:6])  # each once
    assert [r["recipient"] for r in ti.xcom["refused"]] == [NOT_A_NUMBER]


def test_a_dry_run_names_the_rows_it_would_leave_out(gateway: FakeGateway) -> None:
    estimate = op([*GOOD, NOT_A_NUMBER], dry_run=True).execute(task_context())
    assert [r["recipient"] for r in estimate["refused"]] == [NOT_A_NUMBER]
    assert len(estimate["recipients"]) == len(GOOD)
    assert gateway.stored == []


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"on_invalid": "ignore"}, "on_invalid must be 'fail' or 'skip'"),
        ({"max_refused_fraction": 1.5}, "max_refused_fraction must be a share"),
        ({"max_refused_fraction": "0.1"}, "max_refused_fraction must be a share"),
        ({"max_refused_fraction": float("nan")}, "max_refused_fraction must be a share"),
    ],
)
def test_bad_settings_fail_when_the_dag_is_parsed_mapped_or_not(kwargs: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        op(**kwargs)
    with pytest.raises(ValueError, match=why):
        SmsSendOperator.partial(task_id="mapped", message="m", **kwargs)


@pytest.mark.parametrize(
    ("refused", "rows", "fraction", "fails"),
    [(2, 31, 0.1, False), (3, 30, 0.1, False), (4, 31, 0.1, True), (1, 10, 0.0, True), (5, 5, 1.0, True)],
)
def test_the_share_rule(refused: int, rows: int, fraction: float, fails: bool) -> None:
    """At most the fraction passes; all rows refused fails whatever the fraction (nothing to send)."""
    rows_refused = [Refused(f"row {n}", "bad") for n in range(refused)]
    if fails:
        with pytest.raises(SmsWwGateError, match="nothing was sent"):
            check_share(rows_refused, rows, fraction)
    else:
        check_share(rows_refused, rows, fraction)
