"""Airflow's retries in a real run (``dag.test()``) on every supported Airflow: tries that fail part-way
text each recipient exactly once, whichever store keeps the retry ledger (``task_state_store`` on
Airflow 3.3, Variables before, deleted once the task has succeeded)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from smsww_money_dags import dag_retries

from airflow_provider_smsww.sandbox.faults import FaultConfig
from airflow_provider_smsww.sandbox.server import run_sandbox
from airflow_provider_smsww.sending import ledger_stores as ledger_module
from tests.airflow_versions import HAS_TASK_STATE_STORE
from tests.fakes import connect

pytestmark = pytest.mark.integration

RECIPIENTS = [f"+3933312{n:05d}" for n in range(60)]


def test_tries_failing_part_way_text_each_recipient_once(
    airflow_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    real_set = ledger_module.VariableStore.set

    def counted_set(self: Any, key: str, value: Any) -> None:
        writes.append(key)
        real_set(self, key, value)

    monkeypatch.setattr(ledger_module.VariableStore, "set", counted_set)
    faults = FaultConfig(rate_5xx=0.3, rate_5xx_after=0.1, seed=3)
    with run_sandbox(faults=faults, credit=1000) as handle:
        connect(monkeypatch, handle, max_retries=0)
        run = dag_retries.test(run_conf={"recipients": RECIPIENTS})

        assert str(run.state) == "success"
        sent = Counter(m.recipient.e164 for m in handle.sandbox.accepted())
        assert sent == dict.fromkeys(RECIPIENTS, 1)
        (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "send"]
        assert ti.try_number > 1  # the faults did make tries fail part-way
        store = "task_state_store" if HAS_TASK_STATE_STORE else "Variables"
        print(
            f"\nRETRIES tries={ti.try_number} sent={len(sent)} max_per_recipient={max(sent.values())}", end=""
        )
        print(f" ledger={store} variable_writes={len(writes)}")
    if HAS_TASK_STATE_STORE:
        assert writes == []
    else:  # the ledger was on Variables, and the success deleted every one of them
        from airflow.models import Variable
        from airflow.utils.session import create_session

        assert writes
        with create_session() as session:
            left = (
                session.query(Variable).filter(Variable.key.like(f"{ledger_module.VARIABLE_PREFIX}%")).all()
            )
        assert left == []
