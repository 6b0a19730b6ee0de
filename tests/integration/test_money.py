"""Money against the real sandbox: the credit pre-flight, the per-task token's cap, cost reporting.

These need the sandbox's OAuth side (``GET /wallet``, ``POST /tokens`` with ``limits`` enforced as 402
code 2035, ``DELETE /tokens/{token}``): they fail on a sandbox without them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_smsww.exceptions import SmsWwError, SmsWwInsufficientCreditError
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.operators.smsww import SmsSendOperator, SmsWwSpendingCapReachedError
from airflow_provider_smsww.sandbox.server import SandboxHandle, run_sandbox
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor
from tests.fakes import StatsRecorder, XComTI, connect, recorded_metrics

pytestmark = pytest.mark.integration

ITALIAN = [f"+39333{n:07d}" for n in range(1_000_100, 1_000_140)]  # 40 numbers; IT costs 0.065 per part


@pytest.fixture
def metrics() -> Iterator[StatsRecorder]:
    with recorded_metrics() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxHandle]:
    with run_sandbox(pending_after=0.05, delivered_after=0.15) as handle:
        yield handle


@pytest.fixture
def oauth_sandbox(server: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """The sandbox, reset, with ``smsww_default`` on email + API key (credit and caps enabled)."""
    server.reset()
    connect(monkeypatch, server, oauth=True)
    yield server
    server.reset()


def ctx(ti: XComTI | None = None) -> dict[str, Any]:
    return {"ti": ti or XComTI(), "run_id": "money__1"}


def revocations(handle: SandboxHandle) -> list[tuple[str, str, int]]:
    return [r for r in handle.sandbox.requests if r[0] == "DELETE" and r[1].startswith("/tokens/")]


def test_credit_2_eur_and_40_italians_send_nothing_and_name_the_credit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with run_sandbox(credit=2.0) as handle:
        connect(monkeypatch, handle, oauth=True)
        with pytest.raises(SmsWwInsufficientCreditError) as info:
            SmsSendOperator(task_id="send", recipients=ITALIAN, message="Service notice").execute(ctx())
        assert "credit 2.00 EUR" in str(info.value)
        assert "shortfall" in str(info.value)
        assert handle.sandbox.accepted() == []
        assert handle.sandbox.credit == 2.0
        assert handle.wallet()["credit"] == 2.0


def test_without_the_pre_flight_the_same_batch_stops_half_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The measured failure the pre-flight prevents: a token-only connection cannot read the credit."""
    with run_sandbox(credit=2.0, pending_after=0.0) as handle:
        connect(monkeypatch, handle)
        with pytest.raises(SmsWwError, match=r"(?i)credit"):
            SmsSendOperator(
                task_id="send", recipients=ITALIAN, message="Service notice", max_concurrency=1
            ).execute(ctx())
        assert 0 < len(handle.sandbox.accepted()) < len(ITALIAN)


def test_the_per_task_cap_stops_a_batch_whose_real_prices_exceed_the_budget(
    oauth_sandbox: SandboxHandle,
) -> None:
    # The estimate assumes 0.01 EUR per part; the sandbox charges Italy 0.065: the dry-run gate passes
    # (10 x 0.01 = 0.10 <= 0.20) and only the gateway's cap on the per-task token stops the spending.
    recipients = ITALIAN[:10]
    with pytest.raises(SmsWwSpendingCapReachedError) as info:
        SmsSendOperator(
            task_id="send",
            recipients=recipients,
            message="Service notice",
            max_total_price=0.20,
            price_per_part_if_unknown=0.01,
        ).execute(ctx())
    accepted = oauth_sandbox.sandbox.accepted()
    assert len(accepted) == 3  # 3 x 0.065 = 0.195 <= 0.20 < 4 x 0.065
    text = str(info.value)
    assert "3 of 10 message(s) accepted; 7 failed" in text
    not_sent = set(recipients) - {m.recipient.e164 for m in accepted}
    assert all(r in text for r in not_sent)
    assert "2035" in text
    oauth_sandbox.wait_for(lambda: len(oauth_sandbox.transactions()) == 3)
    assert -sum(t["amount"] for t in oauth_sandbox.transactions()) <= 0.20
    assert [status for *_, status in revocations(oauth_sandbox)] == [200]


def test_the_per_task_token_is_limited_and_revoked_after_a_success(oauth_sandbox: SandboxHandle) -> None:
    records = SmsSendOperator(
        task_id="send",
        recipients=ITALIAN[:2],
        message="Hi",
        max_total_price=1.0,
        price_per_part_if_unknown=0.07,
    ).execute(ctx())
    assert len(records) == 2
    minted = [t for t in oauth_sandbox.sandbox.tokens.values() if t.limits]
    assert minted == []  # the capped token is gone (revoked); only the connection's own token remains
    assert [status for *_, status in revocations(oauth_sandbox)] == [200]


def test_notifier_warns_below_the_threshold_and_still_sends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with run_sandbox(credit=5.0) as handle:
        connect(monkeypatch, handle, oauth=True)
        SmsWwNotifier(recipients=ITALIAN[:1], message="FAILED load")({"ti": XComTI(), "run_id": "x"})
        assert len(handle.sandbox.accepted()) == 1
        assert "LOW SMS CREDIT: 5.00 EUR" in capsys.readouterr().out


def test_closing_figures_cost_in_xcom_and_metrics(
    oauth_sandbox: SandboxHandle, metrics: StatsRecorder
) -> None:
    """One run: the operator's estimate, the sensor's actual cost and every metric, printed (-s)."""
    send_ti, wait_ti = XComTI(), XComTI()
    recipients = ITALIAN[:5]
    records = SmsSendOperator(
        task_id="send",
        recipients=recipients,
        message="Invoice ready",
        max_total_price=1.0,
        price_per_part_if_unknown=0.07,
    ).execute(ctx(send_ti))
    final = SmsDeliverySensor(task_id="wait", message_ids=records, poke_interval=0.1, timeout=30).execute(
        ctx(wait_ti)
    )
    charged = -sum(t["amount"] for t in oauth_sandbox.transactions())
    print("\noperator XCom 'cost':", json.dumps(send_ti.xcom["cost"]))
    print("sensor XCom 'cost':  ", json.dumps(wait_ti.xcom["cost"]))
    print(
        "wallet transactions total:", round(charged, 4), "EUR; credit now", oauth_sandbox.wallet()["credit"]
    )
    for name, count, tags in metrics.counts:
        print(f"metric {name} +{count} {tags}")
    assert send_ti.xcom["cost"]["estimated_total_price"] == pytest.approx(0.35)
    assert send_ti.xcom["cost"]["credit_before"] == 100.0
    assert wait_ti.xcom["cost"]["actual_total_price"] == pytest.approx(charged)
    assert wait_ti.xcom["cost"]["actual_total_price"] == pytest.approx(5 * 0.065)
    assert {m["state"] for m in final} == {"DELIVERED"}
    counted = {name: count for name, count, _ in metrics.counts}
    assert counted == {
        "smsww.sent": 5,
        "smsww.parts": 5,
        "smsww.cost_estimated_cents": 35,
        "smsww.cost_actual_cents": 33,
    }


def test_one_dag_run_carries_both_costs_in_xcom(
    oauth_sandbox: SandboxHandle, airflow_db: str, metrics: StatsRecorder
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from smsww_money_dags import dag_money

    run = dag_money.test(run_conf={"recipients": ITALIAN[:3]})
    assert str(run.state) == "success"
    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, key="cost")).all()
        costs = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    print("\nXCom 'cost' of one DAG run:", json.dumps(costs, sort_keys=True))
    print("metrics:", [(n, c, t) for n, c, t in metrics.counts])
    assert costs["send"]["estimated_total_price"] == pytest.approx(0.21)
    assert costs["wait"]["actual_total_price"] == pytest.approx(0.195)
