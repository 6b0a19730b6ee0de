"""One-time codes against the sandbox on loopback: ``SmsWwHook().send_otp(...)`` returns the code the
sandbox holds for that message, and the code is in no log line, repr or summary; in a real
``dag.test()`` run, a ``@task`` that sends a code and returns its summary leaves the code in no task
log line and no XCom row."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from smsww_otp_dags import dag_otp

from airflow_provider_smsww.compat import redact
from airflow_provider_smsww.hooks.smsww import SmsWwHook
from tests.airflow_versions import plain
from tests.integration.test_dag_runs import task_states, xcom
from tests.integration.test_secrets import LOGGERS, airflow_lines

pytestmark = pytest.mark.integration

ALICE = "+393331234567"


def held_code_of(handle: Any, message_id: str) -> str:
    """The code the sandbox holds for ``message_id``."""
    stored = handle.sandbox.messages[message_id]
    assert stored.otp is not None
    return str(stored.otp)


def test_send_otp_returns_the_code_the_sandbox_holds_and_logs_none(
    smsww_sandbox: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    with SmsWwHook() as hook:
        message = hook.send_otp(ALICE, length=10, cache_seconds=120)
        again = hook.send_otp(ALICE, length=10, cache_seconds=120)
        read = hook.get_message(message.id)
    code = held_code_of(smsww_sandbox, message.id)
    assert message.otp_code() == code
    assert again.otp_code() == code  # reused within cacheSeconds
    assert read.otp_code() == code
    assert smsww_sandbox.sandbox.view(message.id)["sender"] == "OTP MOBILE"
    shown = [repr(message), str(message), json.dumps(message.summary()), repr(read)]
    shown += [record.getMessage() for record in caplog.records]
    shown.append("".join(capsys.readouterr()))
    assert all(message.id in text for text in shown[:4])  # the texts searched do show the message
    assert all(code not in text for text in shown)
    assert code not in str(redact(f"code {code}"))
    assert str(redact(f"code {code}")) == "code ***"  # the masker knows the code, and masks it


def test_a_dag_run_keeps_the_code_out_of_logs_and_xcom(
    airflow_db: str, smsww_sandbox: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    run = dag_otp.test()
    # Airflow's own comms lines (Airflow 3.0 logs MaskSecret values at DEBUG, docs/deployment.md) aside
    output, _ = airflow_lines(
        plain("".join(capsys.readouterr())) + "\n".join(r.getMessage() for r in caplog.records)
    )

    assert task_states(run) == {"send_code": "success"}
    summary = xcom(run, "send_code")
    assert summary["recipient"] == ALICE
    code = held_code_of(smsww_sandbox, summary["id"])
    assert len(code) == 8
    assert "Sent Message(" in output  # the task did log the message
    assert code not in output
    assert code not in json.dumps(summary)
    # dag.test() runs the task in this process: the hook told this process's masker (a real worker's
    # task log is redacted by it; dag.test()'s console output is not, so the model alone kept it out).
    assert code not in str(redact(f"code {code}"))
    assert str(redact(f"code {code}")) == "code ***"  # the masker knows the code, and masks it
