"""Quiet hours in a real ``dag.test()`` run: with a window open now in Rome and closed in New York, the
Italian number is texted at once, the task defers (no worker slot held) and resumes when New York's
window opens, and the New York number is texted then, once."""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from smsww_window_dags import NEW_YORK, OPENS_IN, ROME

from tests.airflow_versions import plain
from tests.fakes import connect
from tests.integration.test_dag_runs import task_states, xcom

pytestmark = pytest.mark.integration


def test_rome_is_texted_at_once_and_new_york_when_its_window_opens(
    airflow_db: str, smsww_sandbox: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    dags = importlib.reload(importlib.import_module("smsww_window_dags"))  # the window starts from now
    started = datetime.now(UTC)
    run = dags.dag_window.test()
    output = plain("".join(capsys.readouterr())) + "\n".join(r.getMessage() for r in caplog.records)

    assert task_states(run) == {"send": "success", "wait": "success"}
    assert "Deferring until" in output
    assert "1 recipient(s) outside their send window" in output
    assert smsww_sandbox.sandbox.per_recipient() == {ROME: 1, NEW_YORK: 1}
    sent_at = {m.recipient.e164: m.created_at for m in smsww_sandbox.sandbox.accepted()}
    assert sent_at[ROME] - started < OPENS_IN  # at once
    assert sent_at[NEW_YORK] >= started + OPENS_IN - timedelta(seconds=3)  # not before its window
    assert [r["recipient"] for r in xcom(run, "send")] == [ROME, NEW_YORK]


def test_a_deferrable_send_settles_an_unknown_outcome_in_the_triggerer_and_sends_it_once(
    airflow_db: str,
    smsww_sandbox: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    connect(monkeypatch, smsww_sandbox, max_retries=0)  # a 503 is an unknown outcome at once
    smsww_sandbox.faults.inject("none", "503", path="/WW-messages", method="POST")  # the second send
    dags = importlib.import_module("smsww_window_dags")
    run = dags.dag_settle.test()
    output = plain("".join(capsys.readouterr())) + "\n".join(r.getMessage() for r in caplog.records)

    assert task_states(run) == {"send": "success"}
    assert "1 send(s) of unknown outcome to settle" in output
    assert "Deferring until" in output
    counts = smsww_sandbox.sandbox.per_recipient()
    assert counts == {"+393331234567": 1, "+393331234568": 1, "+393331234569": 1}
    assert len(xcom(run, "send")) == 3
