"""System tests: every example DAG end to end, the way ``make demo`` runs DAG 1.

Each runs as ``airflow dags test <dag_id>`` in a subprocess (a real Airflow: task runner, XCom,
task_state_store, the triggerer path for deferrable sensors) on a throw-away sqlite AIRFLOW_HOME whose
``smsww_default`` connection points at the sandbox on loopback. The sandbox's records are the judge.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))

from demo import airflow_home, run_example_dag

pytestmark = [pytest.mark.system, pytest.mark.integration]


@pytest.fixture(scope="module")
def env_and_sandbox() -> Iterator[tuple[dict[str, str], Any]]:
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox() as server, airflow_home(server.conn_json) as env:
        yield env, server


def run(dag_id: str, env_and_sandbox: tuple[dict[str, str], Any]) -> tuple[Any, Any, str]:
    env, server = env_and_sandbox
    server.reset()
    result = run_example_dag(dag_id, env, server.sandbox, Path(env["AIRFLOW_HOME"]))
    return result, server.sandbox, result.log_path.read_text()


def test_report_ready_sends_once_and_waits_for_delivery(env_and_sandbox: Any) -> None:
    result, sandbox, log = run("example_smsww_report_ready", env_and_sandbox)

    assert result.returncode == 0, log[-3000:]
    assert sandbox.per_recipient() == {"+393331234567": 1, "+447400123456": 1}
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}
    assert "Dry-run gate passed" in log
    assert "Pausing task as DEFERRED" in log


def test_failure_alert_texts_the_on_call_engineer(env_and_sandbox: Any) -> None:
    result, sandbox, log = run("example_smsww_failure_alert", env_and_sandbox)

    assert "warehouse refused 42 rows (simulated failure)" in log  # the DAG fails on purpose
    (alert,) = result.messages
    view = sandbox.view(alert)
    assert view["recipient"] == "+393331234567"
    assert view["sender"] == "Airflow"
    assert view["message"].startswith("FAILED example_smsww_failure_alert.load_warehouse try 1 (")
    assert "Log: http" in view["message"]


def test_bulk_campaign_previews_then_sends_each_number_once(env_and_sandbox: Any) -> None:
    result, sandbox, log = run("example_smsww_bulk_campaign", env_and_sandbox)

    assert result.returncode == 0, log[-3000:]
    counts = sandbox.per_recipient()
    assert len(counts) == 30
    assert set(counts.values()) == {1}
    assert sandbox.dry_runs >= 60  # the preview prices all 30, each mapped batch gates its 10 again
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}


def test_taskflow_hook_sends_one_notice_and_waits_for_it(env_and_sandbox: Any) -> None:
    result, sandbox, log = run("example_smsww_taskflow", env_and_sandbox)

    assert result.returncode == 0, log[-3000:]
    assert sandbox.per_recipient() == {"+393331234567": 1}
    (message,) = result.messages
    view = sandbox.view(message)
    assert view["state"] == "DELIVERED"
    assert view["sender"] == "Shop"
    assert view["message"].startswith("Order A-1042 has shipped. Ref ")
    assert sandbox.dry_runs == 1
    assert "dry run: 1 part(s), GSM-7" in log
    assert "Pausing task as DEFERRED" in log
