"""Failure alerts in real Airflow runs (``dag.test()`` against the sandbox), for every run type.

A task whose notifier template cannot render (``{{ ds }}`` without a logical date, an undefined name)
still sends exactly one SMS naming the DAG, from a task-level callback (task runner) and from a
DAG-level callback, in scheduled, manual (with and without a logical date), asset-triggered and
backfill runs. Eight tasks failing in one run under a cooldown send one SMS, and the first alert after
the cooldown counts the seven held back. The storm guard's state is real Airflow Variables here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from smsww_alert_dags import ON_CALL, STORM_COOLDOWN, STORM_TASKS, dag_dag_level, dag_storm, dag_task_level

from airflow_provider_smsww.notifications import storm_guard
from tests.airflow_versions import (
    DAG_TEST_CALLBACKS_GET_THE_EXCEPTION,
    make_dag_test_runs,
)

pytestmark = pytest.mark.integration

RUN_TYPES = ["scheduled", "manual", "manual-no-logical-date", "asset_triggered", "backfill"]
_DATES = iter(datetime(2025, 2, 1, tzinfo=UTC) + timedelta(days=n) for n in range(1000))


def run_as(dag: Any, run_type: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``dag.test()`` makes manual runs only: other run types through :func:`make_dag_test_runs`."""
    if run_type == "manual-no-logical-date":
        return dag.test(logical_date=None)
    if run_type != "manual":
        make_dag_test_runs(run_type, monkeypatch.setattr)
    logical_date = None if run_type == "asset_triggered" else next(_DATES)
    return dag.test(logical_date=logical_date)


@pytest.mark.parametrize("run_type", RUN_TYPES)
@pytest.mark.parametrize("level", ["task", "dag"])
def test_an_unrenderable_template_still_sends_one_sms_naming_the_dag(
    level: str, run_type: str, airflow_db: str, smsww_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = dag_task_level if level == "task" else dag_dag_level
    run = run_as(dag, run_type, monkeypatch)

    assert str(run.state) == "failed"
    assert str(run.run_type) == ("manual" if run_type.startswith("manual") else run_type)
    (sms,) = smsww_sandbox.sandbox.accepted()
    assert sms.recipient.e164 == ON_CALL
    assert dag.dag_id in sms.text
    assert f"Run {run.run_id}"[:30] in sms.text  # last, so cut first when the text needs more than a part
    if level == "task" and DAG_TEST_CALLBACKS_GET_THE_EXCEPTION:
        assert sms.text.startswith(f"Airflow FAILED: {dag.dag_id}.load_warehouse try 1: RuntimeError: ")
    elif level == "task":  # a worker's callbacks get it on every version; dag.test()'s only from 3.3
        assert sms.text.startswith(f"Airflow FAILED: {dag.dag_id}.load_warehouse try 1. Run ")
    else:
        assert sms.text.startswith(f"Airflow FAILED: DAG {dag.dag_id} (task_failure), last task transform")


def test_eight_failures_send_one_sms_then_the_next_counts_seven(
    airflow_db: str, smsww_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storm_guard, "SETTLE_SECONDS", 0.2)
    started = datetime.now(UTC)
    first = dag_storm.test(logical_date=None)
    ended = datetime.now(UTC)

    assert str(first.state) == "failed"
    assert [str(ti.state) for ti in first.get_task_instances()] == ["failed"] * STORM_TASKS
    (sms,) = smsww_sandbox.sandbox.accepted()
    assert sms.text.startswith("FAILED smsww_alert_storm.load_")

    # The cooldown is over for the next run: its first alert counts the 7 held back.
    monkeypatch.setattr(storm_guard, "now", lambda: datetime.now(UTC) + STORM_COOLDOWN + timedelta(minutes=1))
    dag_storm.test(logical_date=None)
    texts = [m.text for m in smsww_sandbox.sandbox.accepted()]
    assert len(texts) == 2
    # Since the first alert held back, in the first run (which can span the turn of a minute).
    run_seconds = range(int((ended - started).total_seconds()) + 1)
    minutes = {f"{started + timedelta(seconds=n):%H:%M}" for n in run_seconds} | {f"{ended:%H:%M}"}
    since = re.match(r"\(\+7 more failures since (\d\d:\d\d) UTC\) FAILED smsww_alert_storm", texts[1])
    assert since, texts[1]
    assert since.group(1) in minutes
    # What is left: the second run's sent record and its 7 held back (the first run's were reported).
    assert sorted(guard_records("smsww_alert_storm")) == ["alert"] * 7 + ["sent"]


def guard_records(dedupe_key: str) -> list[str]:
    """The kinds of the storm guard's records of ``dedupe_key``, from the metadata database: one Variable
    each where the Task SDK lists Variables (Airflow 3.3), else in the key's ``records.<n>`` Variables."""
    from airflow.models.variable import Variable
    from airflow.sdk import Variable as SdkVariable
    from airflow.utils.session import create_session

    prefix = storm_guard.variable_prefix(dedupe_key)
    with create_session() as session:
        stored = {v.key: v.val for v in session.query(Variable).filter(Variable.key.startswith(prefix))}
    shards = {
        name: json.loads(value) for name, value in stored.items() if name.startswith(prefix + "records.")
    }
    assert bool(shards) != hasattr(SdkVariable, "keys")
    keys = [key for records in shards.values() for key in records] if shards else list(stored)
    return [key.removeprefix(prefix).split(".")[0] for key in keys]
