"""Secrets never leak: not the static token, not a token minted from email + API key, not the API key,
not a callback header value; in logs (DEBUG for httpx, httpcore, the provider and the sandbox), in the
XCom values of the operator and the sensor, in the text of failures, or in the sandbox's own logs.

Two layers:

- The provider's code run directly (``execute`` / ``poke`` / ``notify``) against the sandbox on
  loopback, with every logger at DEBUG and stdout/stderr captured. Outside a task runner Airflow does
  not mask anything, so this proves the provider never *writes* a secret, masking or not.
- One real ``airflow dags test`` run (task runner, XCom, rendered fields, Airflow's secrets masker on)
  of a DAG that sends with a static-token connection and a minting connection, waits with the sensor,
  alerts with the notifier and fails a task on a wrong token, with logging at DEBUG: the task output,
  the log files, the XComs and the rendered template fields in the metadata DB carry no secret.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_smsww.compat import AIRFLOW_VERSION
from airflow_provider_smsww.exceptions import SmsWwAuthError, SmsWwError, SmsWwGateError, SmsWwServerError
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sandbox.server import SandboxHandle, run_sandbox
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor
from tests.airflow_versions import AIRFLOW_COMMAND
from tests.fakes import connect, sandbox_connection
from tests.sandbox.helpers import Receiver, serve_receiver

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))

from demo import migrated_database

pytestmark = pytest.mark.integration

TOKEN = "tok5ecretSTATICa1b2c3d4e5"
API_KEY = "key5ecretAPIKEYf6a7b8c9d0"
EMAIL = "soak-account@example.test"
CB_SECRET = "cbh5ecretHEADERe1f2a3b4c5"
WRONG_TOKEN = "tok5ecretWRONGd6e7f8a9b0"
WRONG_KEY = "key5ecretWRONGc1d2e3f4a5"
NUMBERS = ["+393331234567", "+393331234568"]
ALERT_TO = "+393331234569"
LOGGERS = ("", "httpx", "httpcore", "airflow_provider_smsww", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A callback receiver on 127.0.0.1: it shows the callback header really reached its target."""
    with serve_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxHandle]:
    with run_sandbox(
        token=TOKEN,
        api_key=API_KEY,
        email=EMAIL,
        credit=1000,
        pending_after=0.05,
        delivered_after=0.15,
        log_level="debug",
    ) as handle:
        yield handle


@pytest.fixture
def sandbox(server: SandboxHandle, receiver: Receiver) -> Iterator[SandboxHandle]:
    server.reset()
    receiver.received.clear()
    yield server
    server.reset()


def secrets_of(handle: SandboxHandle) -> list[str]:
    """Every secret of the run: the fixed ones, the Basic credentials and each token the sandbox minted."""
    basic = base64.b64encode(f"{EMAIL}:{API_KEY}".encode()).decode()
    wrong_basic = base64.b64encode(f"{EMAIL}:{WRONG_KEY}".encode()).decode()
    return [TOKEN, API_KEY, CB_SECRET, WRONG_TOKEN, WRONG_KEY, basic, wrong_basic, *handle.sandbox.tokens]


def assert_no_secret(handle: SandboxHandle, **texts: str) -> None:
    found = {(where, s[:8] + "...") for where, text in texts.items() for s in secrets_of(handle) if s in text}
    assert not found, f"secrets leaked: {sorted(found)}"


def failure_text(exc: BaseException) -> str:
    """All a log or UI could show of a failure: str, repr, args and the formatted chain."""
    return "\n".join([str(exc), repr(exc), repr(exc.args), *traceback.format_exception(exc)])


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def ctx() -> Any:
    class TI:
        map_index = -1
        try_number = 1

    return {"ti": TI(), "run_id": "secrets__1"}


def callback(receiver: Receiver) -> dict[str, Any]:
    return {"url": receiver.url, "retry": 1, "headers": {"X-Signature": CB_SECRET}, "custom": {"k": "v"}}


@pytest.mark.parametrize("kind", ["static-token", "minted-token"])
def test_send_wait_alert_leak_nothing(
    sandbox: SandboxHandle,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    connect(monkeypatch, sandbox, oauth=kind == "minted-token")

    sent = SmsSendOperator(
        task_id="send", recipients=NUMBERS, message="Report ready", callback=callback(receiver)
    )
    records = sent.execute(ctx())
    sensor = SmsDeliverySensor(task_id="wait", message_ids=records, poke_interval=0.05, timeout=10)
    deadline = time.monotonic() + 10
    while not (poked := sensor.poke(ctx())).is_done:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    SmsWwNotifier(recipients=ALERT_TO, message="Delivered").notify(ctx())
    sandbox.wait_for(lambda: len(receiver.received) >= 4, timeout=10)  # PENDING + DELIVERED, twice

    # The secrets were really in use: the callback header reached the receiver, tokens were minted.
    assert {r.headers.get("X-Signature") for r in receiver.received} == {CB_SECRET}
    assert bool(sandbox.sandbox.tokens) is (kind == "minted-token")
    assert sandbox.sandbox.per_recipient() == {n: 1 for n in [*NUMBERS, ALERT_TO]}
    out, err = capfd.readouterr()
    assert any(r.name.startswith("httpcore") for r in debug_logs.records)  # DEBUG really was on
    assert_no_secret(
        sandbox,
        logs=debug_logs.text,
        stdout=out,
        stderr=err,
        operator_xcom=json.dumps(records),
        sensor_xcom=json.dumps(poked.xcom_value),
    )
    # The gateway itself echoes the callback's header values, as the spec does: they reach the
    # provider's parsed messages, and still none of its logs, XCom or errors above.
    assert CB_SECRET in json.dumps([sandbox.sandbox.view(r["id"]) for r in records])


@pytest.mark.parametrize(
    ("conn_kind", "kwargs", "expected"),
    [
        pytest.param("static", {"message": "contains forbiddenword"}, SmsWwGateError, id="gate-api-refusal"),
        pytest.param("static", {"recipients": ["+39abc"]}, SmsWwGateError, id="gate-local-refusal"),
        pytest.param("wrong-token", {}, SmsWwAuthError, id="wrong-token"),
        pytest.param("wrong-api-key", {}, SmsWwAuthError, id="wrong-api-key"),
        pytest.param("static", {"fault": "503"}, SmsWwServerError, id="gate-5xx"),
        pytest.param(
            "static",
            {"fault": "503", "gate": False, "settle_time": 0.05},
            SmsWwError,
            id="send-5xx-unknown-outcome",
        ),
        pytest.param(
            "minted", {"fault": "503", "gate": False, "settle_time": 0.05}, SmsWwError, id="minted-send-5xx"
        ),
    ],
)
def test_failures_leak_nothing(
    sandbox: SandboxHandle,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    conn_kind: str,
    kwargs: dict[str, Any],
    expected: type[Exception],
) -> None:
    connection: dict[str, Any] = {
        "static": {"max_retries": 1},
        "minted": {"oauth": True, "max_retries": 1},
        "wrong-token": {"token": WRONG_TOKEN},
        "wrong-api-key": {"oauth": True, "api_key": WRONG_KEY},
    }[conn_kind]
    connect(monkeypatch, sandbox, **connection)
    if fault := kwargs.pop("fault", None):
        sandbox.faults.inject(*[fault] * 20, path="/WW-messages")
    kwargs.setdefault("recipients", NUMBERS)
    kwargs.setdefault("message", "Report ready")
    with pytest.raises(expected) as info:
        SmsSendOperator(task_id="send", callback=callback(receiver), **kwargs).execute(ctx())
    assert sandbox.sandbox.accepted() == []  # and nothing was spent

    # The sensor and the notifier fail on the same connection without leaking either.
    other_failures = []
    if conn_kind.startswith("wrong"):
        with pytest.raises(SmsWwAuthError) as sensor_info:
            SmsDeliverySensor(task_id="wait", message_ids=["a" * 24], timeout=1).poke(ctx())
        with pytest.raises(SmsWwError) as notifier_info:
            SmsWwNotifier(recipients=ALERT_TO, message="x").notify(ctx())
        other_failures = [failure_text(sensor_info.value), failure_text(notifier_info.value)]
    out, err = capfd.readouterr()
    assert_no_secret(
        sandbox,
        failure=failure_text(info.value),
        others="\n".join(other_failures),
        logs=debug_logs.text,
        stdout=out,
        stderr=err,
    )


# --- One real DAG run: task runner, masking, XCom and rendered fields in the metadata DB ----------------

DAG_FILE = textwrap.dedent(
    """
    import os

    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
    from airflow_provider_smsww.operators.smsww import SmsSendOperator
    from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

    CALLBACK = {
        "url": os.environ["SMSWW_TEST_CALLBACK_URL"],
        "headers": {"X-Signature": os.environ["SMSWW_TEST_CALLBACK_SECRET"]},
    }

    with DAG("smsww_secrets", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
        static = SmsSendOperator(
            task_id="send_static",
            smsww_conn_id="smsww_static",
            recipients=["+393331234567"],
            message="Static token",
            callback=CALLBACK,
        )
        minted = SmsSendOperator(
            task_id="send_minted", recipients=["+393331234568"], message="Minted token", callback=CALLBACK
        )
        wait = SmsDeliverySensor(
            task_id="wait",
            message_ids=minted.output,
            poke_interval=0.2,
            timeout=30,
            on_success_callback=SmsWwNotifier(recipients="+393331234569", message="{{ dag.dag_id }} done"),
        )
        refused = SmsSendOperator(
            task_id="send_wrong_token",
            smsww_conn_id="smsww_wrong",
            recipients=["+393331234560"],
            message="Wrong token",
            retries=0,
        )
        static >> minted >> wait >> refused
    """
)


@dataclass
class DagRun:
    returncode: int
    output: str
    log_files: str
    xcoms: dict[str, Any]
    rendered: str


def airflow(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AIRFLOW_COMMAND, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def dag_run(server: SandboxHandle, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> DagRun:
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    (dags / "smsww_secrets.py").write_text(DAG_FILE)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW_CONN_SMSWW_DEFAULT": sandbox_connection(server, oauth=True),
        "AIRFLOW_CONN_SMSWW_STATIC": sandbox_connection(server),
        "AIRFLOW_CONN_SMSWW_WRONG": sandbox_connection(server, token=WRONG_TOKEN, max_retries=0),
        "SMSWW_TEST_CALLBACK_URL": receiver.url,
        "SMSWW_TEST_CALLBACK_SECRET": CB_SECRET,
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    migrated_database(home)
    server.reset()
    receiver.received.clear()
    run = airflow(env, "dags", "test", "smsww_secrets")
    log_files = "\n".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file())
    db = sqlite3.connect(home / "airflow.db")
    try:
        xcoms = {
            task: value
            for task, value in db.execute("SELECT task_id, value FROM xcom WHERE key='return_value'")
        }
        rendered = json.dumps(
            db.execute("SELECT task_id, rendered_fields FROM rendered_task_instance_fields").fetchall()
        )
    finally:
        db.close()
    return DagRun(run.returncode, run.stdout + run.stderr, log_files, xcoms, rendered)


def airflow_lines(output: str) -> tuple[str, str]:
    """Split the run's output: Airflow's own ``dags test`` comms debug lines that carry rendered fields
    or ``MaskSecret`` values (see the module notes below), and everything else."""
    ours: list[str] = []
    theirs: list[str] = []
    for line in output.splitlines():
        (theirs if "MaskSecret(" in line or "SetRenderedFields(" in line else ours).append(line)
    return "\n".join(ours), "\n".join(theirs)


#: The tests of one ``dag_run`` on one worker: the run is a whole ``airflow dags test``, made once.
on_one_worker = pytest.mark.xdist_group("secrets_dag_run")


@on_one_worker
def test_a_real_dag_run_leaks_nothing(dag_run: DagRun, server: SandboxHandle, receiver: Receiver) -> None:
    # It ran for real: both sends and the alert were accepted, the header reached the receiver, a token
    # was minted, and the wrong-token task failed with the auth error in its log.
    assert server.sandbox.per_recipient() == {"+393331234567": 1, "+393331234568": 1, "+393331234569": 1}
    assert server.sandbox.tokens
    assert CB_SECRET in {r.headers.get("X-Signature") for r in receiver.received}
    assert {"send_static", "send_minted", "wait"} <= set(dag_run.xcoms)
    output, _ = airflow_lines(dag_run.output)
    assert "SmsWwAuthError" in output
    assert "answered 401" in output
    assert "[debug" in output  # DEBUG really was on, for httpcore too
    assert "httpcore" in output
    xcom = json.dumps({k: str(v) for k, v in dag_run.xcoms.items()})
    assert "send_minted" in output  # the texts searched hold the run's own values
    assert "DELIVERED" in xcom
    # `airflow dags test` writes task log files on some releases only: searched where there are some,
    # since a search of nothing would prove nothing.
    files = {"log_files": dag_run.log_files} if dag_run.log_files.strip() else {}
    assert_no_secret(server, task_output=output, xcom=xcom, **files)


@on_one_worker
def test_rendered_callback_headers_are_masked_in_the_metadata_db(
    dag_run: DagRun, server: SandboxHandle
) -> None:
    """``callback`` is a template field: its rendered value goes to the metadata DB (the UI's Rendered
    Template tab) and, at DEBUG, into ``SetRenderedFields`` log lines. The header value must be masked
    by then. (In ``dags test`` every task shares one process, so only the first task shows it; on a
    real worker each task is a fresh process and every task would.)"""
    _, comms = airflow_lines(dag_run.output)
    rendered_lines = "\n".join(line for line in comms.splitlines() if "SetRenderedFields(" in line)
    searched = {"rendered_fields": dag_run.rendered}
    if AIRFLOW_VERSION >= (3, 1):  # Airflow 3.0 logs its own comms unredacted at DEBUG (docs/deployment.md)
        searched["rendered_log_lines"] = rendered_lines
    for where, text in searched.items():  # the search would find the header: it is there, masked
        assert "X-Signature" in text, f"no callback header in the {where}"
        assert "***" in text, f"nothing masked in the {where}"
    assert_no_secret(server, **searched)
