"""System tests: every example DAG end to end, the way ``make demo`` runs DAG 1.

Each runs in a real Airflow outside pytest (task runner, XCom, task_state_store, the triggerer path for
deferrable sensors) on a throw-away sqlite AIRFLOW_HOME whose ``smsww_default`` connection points at the
sandbox on loopback, twice: with a logical date, as ``airflow dags test`` sets one, and with none, as the
REST API, the UI and ``airflow dags trigger`` make a run (where ``{{ ds }}`` is undefined). Each way runs
its DAGs in one process (``run_dags.py``: ``dag.test()``, which is what ``airflow dags test`` calls); the
demo's DAG and the quiet-hours example also run through the ``airflow dags test`` command itself. The
sandbox's records are the judge. tests/deployment runs them again through a real scheduler, triggerer
and REST API.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_smsww.compat import AIRFLOW_VERSION

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))

from demo import BIN, DagRunResult, airflow_home, run_example_dag

from tests.airflow_versions import AIRFLOW_COMMAND, plain
from tests.system.run_dags import DAG_RUN

pytestmark = [pytest.mark.system, pytest.mark.integration]
RUN_DAGS = Path(__file__).with_name("run_dags.py")
#: How long after the test starts the quiet-hours example's New York window opens: longer than
#: ``airflow dags test`` takes to start the task on a 2-core machine busy with the other tests running
#: side by side (20 s seen under load); the test waits on the window, which leaves the cores to them.
OPENS_IN = timedelta(seconds=60)

#: The ways a DAG runs here (the ``setup`` fixture's parameter). Each way of ``run_dags.py`` is one
#: xdist_group, so that one worker runs all its DAGs in one process.
CLI = "airflow dags test"
LOGICAL_DATE = pytest.param("logical date", marks=pytest.mark.xdist_group("example_dags_logical_date"))
NO_LOGICAL_DATE = pytest.param("no logical date", marks=pytest.mark.xdist_group("example_dags_no_date"))
BOTH_DATES = [LOGICAL_DATE, NO_LOGICAL_DATE]


@dataclass
class Setup:
    """An Airflow home and a sandbox, and how DAGs run there."""

    env: dict[str, str]
    server: Any
    runner: DagRunner | None  # None: each DAG runs as its own ``airflow dags test``


class DagRunner:
    """One ``run_dags.py`` process for all the runs of one way: it runs the DAG ids written to its stdin
    in turn, each run's output ending with a ``DAG RUN`` line."""

    def __init__(self, env: dict[str, str], *, logical_date: bool) -> None:
        self.logical_date = logical_date
        self.proc = subprocess.Popen(
            [str(BIN / "python"), str(RUN_DAGS), *(["--logical-date"] if logical_date else [])],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_output, daemon=True).start()

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the process ended

    def run(self, dag_id: str, log_path: Path, timeout: float = 600) -> str:
        """Run ``dag_id``, its output kept in ``log_path``; its last line, the one that names the run."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(dag_id + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with log_path.open("w") as out:
            while (line := self.lines.get(timeout=max(deadline - time.monotonic(), 0))) is not None:
                out.write(line)
                if line.startswith(DAG_RUN):
                    return line
        pytest.fail(f"{RUN_DAGS.name} ended during {dag_id}: {log_path.read_text()[-3000:]}")

    def close(self) -> None:
        """Stop it: every run has ended and its output has been read (Airflow's exit hooks take seconds)."""
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """A sandbox and an Airflow home for one way (``request.param``: :data:`CLI` or a way of
    ``run_dags.py``); tests choose theirs with ``parametrize("setup", [...], indirect=True)``."""
    from airflow_provider_smsww.sandbox.server import run_sandbox

    # Delivered at a client's second look: the sensors find their messages in flight and defer, and the
    # trigger's first look finds them delivered, however long a task takes to start on a busy machine.
    with run_sandbox(final_at_look=2) as server, airflow_home(server.conn_json) as env:
        runner = (
            None if request.param == CLI else DagRunner(env, logical_date=request.param == "logical date")
        )
        try:
            yield Setup(env, server, runner)
        finally:
            if runner is not None:
                runner.close()


def run(dag_id: str, setup: Setup, **extra_env: str) -> tuple[Any, Any, str]:
    setup.server.reset()
    sandbox = setup.server.sandbox
    home = Path(setup.env["AIRFLOW_HOME"])
    if setup.runner is None:
        result = run_example_dag(dag_id, {**setup.env, **extra_env}, sandbox, home, AIRFLOW_COMMAND)
    else:
        assert not extra_env, "the runner's environment is set when it starts"
        log_path = home / f"{dag_id}.run_dags.log"
        last_line = setup.runner.run(dag_id, log_path)
        assert ("logical_date=None" in last_line) is not setup.runner.logical_date, last_line
        returncode = 0 if "state=success" in last_line else 1
        result = DagRunResult(dag_id, returncode, log_path, list(sandbox.messages.values()))
    return result, sandbox, plain(result.log_path.read_text())


# First: it waits OPENS_IN, and tests side by side (pytest-xdist) start in the order they are collected.
# One run shows the rounds: the example's templates use no date.
@pytest.mark.parametrize("setup", [CLI], indirect=True)
def test_quiet_hours_texts_rome_at_once_and_new_york_when_its_window_opens(setup: Setup) -> None:
    # A window opening in New York OPENS_IN from now and lasting 7 h: open in Rome already, whatever the date.
    ny_now = datetime.now(ZoneInfo("America/New_York")).replace(microsecond=0)
    window = f"{(ny_now + OPENS_IN).time()}-{(ny_now + timedelta(hours=7)).time()}"
    started = datetime.now(UTC)
    result, sandbox, log = run("example_smsww_quiet_hours", setup, SMSWW_EXAMPLE_SEND_WINDOW=window)

    assert result.returncode == 0, log[-3000:]
    assert sandbox.per_recipient() == {"+393331234567": 1, "+12125551234": 1}
    sent_at = {m.recipient.e164: m.created_at for m in result.messages}
    assert sent_at["+12125551234"] - started >= OPENS_IN - timedelta(seconds=3)
    assert sent_at["+12125551234"] - sent_at["+393331234567"] >= timedelta(seconds=5)
    assert "1 recipient(s) outside their send window" in log
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}


@pytest.mark.parametrize("setup", [CLI, NO_LOGICAL_DATE], indirect=True)  # the demo's DAG, as it runs
def test_report_ready_sends_once_and_waits_for_delivery(setup: Setup) -> None:
    result, sandbox, log = run("example_smsww_report_ready", setup)

    assert result.returncode == 0, log[-3000:]
    assert sandbox.per_recipient() == {"+393331234567": 1, "+447400123456": 1}
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}
    assert "Dry-run gate passed" in log
    assert "Pausing task as DEFERRED" in log
    (day,) = {m.text.split()[4] for m in result.messages}  # "Your daily report for <day> is ready: <url>"
    assert day != "None"
    assert all(m.text.endswith(f"/daily/{day}") for m in result.messages)


@pytest.mark.parametrize("setup", BOTH_DATES, indirect=True)
def test_failure_alert_texts_the_on_call_engineer(setup: Setup) -> None:
    result, sandbox, log = run("example_smsww_failure_alert", setup)

    assert "warehouse refused 42 rows (simulated failure)" in log  # the DAG fails on purpose
    (alert,) = result.messages
    view = sandbox.view(alert)
    assert view["recipient"] == "+393331234567"
    assert view["sender"] == "Airflow"
    assert view["message"].startswith("FAILED example_smsww_failure_alert.load_warehouse try 1 (")
    assert ("Log: http" in view["message"]) is (AIRFLOW_VERSION >= (3, 1))  # 3.0: no ti.log_url


@pytest.mark.parametrize("setup", BOTH_DATES, indirect=True)
def test_bulk_campaign_previews_then_sends_each_number_once(setup: Setup) -> None:
    result, sandbox, log = run("example_smsww_bulk_campaign", setup)

    assert result.returncode == 0, log[-3000:]
    counts = sandbox.per_recipient()
    assert len(counts) == 30  # the 2 rows of the export that are no number are left out
    assert set(counts.values()) == {1}
    assert sandbox.dry_runs >= 60  # the preview prices all 30, each mapped batch gates its 10 again
    assert "  - n/a: 'n/a' is not a phone number" in log
    assert "  - ask at the desk: 'ask at the desk' is not a phone number" in log
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}


@pytest.mark.parametrize("setup", BOTH_DATES, indirect=True)
def test_taskflow_hook_sends_one_notice_and_waits_for_it(setup: Setup) -> None:
    result, sandbox, log = run("example_smsww_taskflow", setup)

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


@pytest.mark.parametrize("setup", BOTH_DATES, indirect=True)
def test_order_confirmations_send_a_text_per_order_once(setup: Setup) -> None:
    result, sandbox, log = run("example_smsww_order_confirmations", setup)

    assert result.returncode == 0, log[-3000:]
    # Five entries: one listed twice (sent once), one number with two orders (both sent).
    assert sandbox.per_recipient() == {"+393331234567": 1, "+393331234568": 1, "+393331234569": 2}
    texts = sorted(m.text.split(":")[0] for m in result.messages)
    assert texts == [f"Order A-{n} confirmed" for n in (1042, 1043, 1044, 1045)]
    assert {sandbox.view(m)["sender"] for m in result.messages} == {"Shop"}
    assert {sandbox.view(m)["state"] for m in result.messages} == {"DELIVERED"}
    assert sandbox.dry_runs == 4
    assert "4 personalised message(s)" in log
    assert "1 duplicate message(s) dropped" in log


def test_approval_example_needs_airflow_3_1_and_says_so_on_older_releases() -> None:
    """The approval example (human-in-the-loop, Airflow 3.1+) is not run here: it waits for a person
    (tests/deployment/approval.py answers it through the REST API). On Airflow 3.0 its file fails
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
