"""Real Airflow runs: SmsSendOperator then SmsDeliverySensor in poke, reschedule and deferrable mode.

``dag.test()`` runs each task through the task runner with a real ``task_state_store`` and, in
deferrable mode, the trigger in process (the triggerer path), against the sandbox on loopback. The
sandbox's own records are the judge of what was sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from smsww_integration_dags import dag_deferrable, dag_poke, dag_reschedule

from tests.airflow_versions import plain

pytestmark = pytest.mark.integration

UNDELIVERABLE = "+393330000001"  # the sandbox's magic numbers
EXPIRED = "+393330000002"
GOOD = ["+393331234567", "+34612345678"]
DAGS = pytest.mark.parametrize(
    "dag", [dag_poke, dag_reschedule, dag_deferrable], ids=["poke", "reschedule", "deferrable"]
)


def task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value")
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


@DAGS
def test_every_message_delivered(dag: Any, airflow_db: str, smsww_sandbox: Any) -> None:
    run = dag.test(run_conf={"recipients": GOOD})

    assert str(run.state) == "success", task_states(run)
    assert smsww_sandbox.sandbox.per_recipient() == {r: 1 for r in GOOD}
    sent = xcom(run, "send")
    assert [r["recipient"] for r in sent] == GOOD
    final = xcom(run, "wait")
    assert {m["id"] for m in final} == {r["id"] for r in sent}
    assert {m["state"] for m in final} == {"DELIVERED"}
    assert all(smsww_sandbox.sandbox.view(m["id"])["state"] == "DELIVERED" for m in final)


@DAGS
def test_undeliverable_recipient_fails_the_sensor_with_a_clear_message(
    dag: Any, airflow_db: str, smsww_sandbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = dag.test(run_conf={"recipients": [GOOD[0], UNDELIVERABLE]})
    output = plain("".join(capsys.readouterr()))

    assert task_states(run) == {"send": "success", "wait": "failed"}
    assert str(run.state) == "failed"
    (bad,) = [m for m in smsww_sandbox.sandbox.messages.values() if m.recipient.e164 == UNDELIVERABLE]
    assert f"id={bad.id} recipient={UNDELIVERABLE} state=UNDELIVERABLE" in output
    assert "SmsDeliveryFailedError" in output
    assert smsww_sandbox.sandbox.per_recipient() == {GOOD[0]: 1, UNDELIVERABLE: 1}  # sent once, not retried


def test_expired_message_fails_the_deferred_sensor_through_the_trigger(
    airflow_db: str,
    smsww_sandbox: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Final at the second look: the sensor's own check sees PENDING however long the wait task takes
    # to start, and the trigger's first look sees EXPIRED.
    monkeypatch.setattr(smsww_sandbox.sandbox.config, "final_at_look", 2)
    run = dag_deferrable.test(run_conf={"recipients": [EXPIRED]})
    output = plain("".join(capsys.readouterr()))

    assert task_states(run) == {"send": "success", "wait": "failed"}
    assert f"recipient={EXPIRED} state=EXPIRED" in output
    # The sensor checked once (still PENDING), deferred, and the trigger ran in process as the
    # triggerer would run it, and its event decided the task.
    assert "[DAG TEST] running trigger in line" in caplog.text + output  # stdout on Airflow 3.0
    assert "[DAG TEST] Trigger completed" in caplog.text
