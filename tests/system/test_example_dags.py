"""System tests: every example DAG end to end, the way ``make demo`` runs DAG 1.

Each runs twice in a subprocess (a real Airflow: task runner, XCom, task_state_store, the triggerer path
for deferrable sensors) on a throw-away sqlite AIRFLOW_HOME whose ``smsww_default`` connection points at
the sandbox on loopback: as ``airflow dags test <dag_id>`` (which always sets a logical date), and as the
REST API, the UI and ``airflow dags trigger`` run it, with no logical date (``run_without_logical_date.py``),
where ``{{ ds }}`` is undefined. The sandbox's records are the judge. tests/deployment runs them again
through a real scheduler, triggerer and REST API.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_smsww.compat import AIRFLOW_VERSION

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))

from demo import BIN, DagRunResult, airflow_home, run_example_dag

from tests.airflow_versions import plain

pytestmark = [pytest.mark.system, pytest.mark.integration]
NO_LOGICAL_DATE = Path(__file__).with_name("run_without_logical_date.py")


@pytest.fixture(scope="module", params=["dags test", "no logical date"])
def env_and_sandbox(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], Any]]:
    from airflow_provider_smsww.sandbox.server import run_sandbox

    # Delivered 10 s after the send: the sensors find their messages in flight and defer, on every
    # Airflow (a task starts later on 3.0, after a 1 s delivery the sensor would never defer; 5 s was
    # not always enough for Airflow 3.2's task start on a busy 2-core machine).
    with run_sandbox(delivered_after=10) as server, airflow_home(server.conn_json) as env:
        yield {**env, "RUN_MODE": request.param}, server


def run(dag_id: str, env_and_sandbox: tuple[dict[str, str], Any]) -> tuple[Any, Any, str]:
    env, server = env_and_sandbox
    server.reset()
    if env["RUN_MODE"] == "dags test":
        result = run_example_dag(dag_id, env, server.sandbox, Path(env["AIRFLOW_HOME"]))
    else:
        result = run_without_logical_date(dag_id, env, server.sandbox)
    return result, server.sandbox, plain(result.log_path.read_text())


def run_without_logical_date(dag_id: str, env: dict[str, str], sandbox: Any) -> DagRunResult:
    log_path = Path(env["AIRFLOW_HOME"]) / f"{dag_id}.no-logical-date.log"
    with log_path.open("w") as out:
        proc = subprocess.run(
            [str(BIN / "python"), str(NO_LOGICAL_DATE), dag_id],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    log = log_path.read_text()
    assert "logical_date=None" in log.splitlines()[-1], log[-2000:]
    return DagRunResult(dag_id, proc.returncode, log_path, list(sandbox.messages.values()))


def test_report_ready_sends_once_and_waits_for_delivery(env_and_sandbox: Any) -> None:
    result, sandbox, log = run("example_smsww_report_ready", env_and_sandbox)

    assert result.returncode == 0, log[-3000:]
    assert sandbox.per_recipient() == {"+393331234567": 1, "+447400123456": 1}
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}
    assert "Dry-run gate passed" in log
    assert "Pausing task as DEFERRED" in log
    (day,) = {m.text.split()[4] for m in result.messages}  # "Your daily report for <day> is ready: <url>"
    assert day != "None"
    assert all(m.text.endswith(f"/daily/{day}") for m in result.messages)


def test_failure_alert_texts_the_on_call_engineer(env_and_sandbox: Any) -> None:
    result, sandbox, log = run("example_smsww_failure_alert", env_and_sandbox)

    assert "warehouse refused 42 rows (simulated failure)" in log  # the DAG fails on purpose
    (alert,) = result.messages
    view = sandbox.view(alert)
    assert view["recipient"] == "+393331234567"
    assert view["sender"] == "Airflow"
    assert view["message"].startswith("FAILED example_smsww_failure_alert.load_warehouse try 1 (")
    assert ("Log: http" in view["message"]) is (AIRFLOW_VERSION >= (3, 1))  # 3.0: no ti.log_url


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


def test_approval_example_needs_airflow_3_1_and_says_so_on_older_releases() -> None:
    """The approval example (human-in-the-loop, Airflow 3.1+) is not run here: it waits for a person
    (tests/deployment/test_approval.py answers it through the REST API). On Airflow 3.0 its file fails
    to import, as a DAG processor reports it, naming the release it needs; on 3.1+ it builds."""
    from tests.fakes import example_dag_module

    if AIRFLOW_VERSION < (3, 1):
        with pytest.raises(RuntimeError, match=r"SmsVerifiedApprovalOperator needs Airflow 3\.1 or newer"):
            example_dag_module("example_smsww_approval")
        return
    from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
    from airflow_provider_smsww.operators.approval import SmsVerifiedApprovalOperator

    dag = example_dag_module("example_smsww_approval").dag
    approve = dag.get_task("approve_release")
    assert isinstance(approve, SmsVerifiedApprovalOperator)
    assert [type(n) for n in approve.notifiers] == [SmsWwNotifier]
    assert approve.retries == 0
    assert dag.get_task("publish").upstream_task_ids == {"approve_release", "prepare_release"}
