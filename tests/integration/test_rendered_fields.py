"""Templated fields checked once rendered (issue 23): a lone surrogate that only appears when a template
renders (here from a Variable) fails the task with the provider's error naming the field, before the task
runner stores the rendered fields, and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest
from smsww_render_dags import dag as dag_rendered

from tests.airflow_versions import plain

pytestmark = pytest.mark.integration


def test_a_lone_surrogate_from_a_variable_fails_naming_the_field(
    airflow_db: str, smsww_sandbox: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # JSON keeps the half emoji ASCII-safe until the template decodes it: "Report ready \ud83d".
    monkeypatch.setenv("AIRFLOW_VAR_SMS_TEXT", '"Report ready \\ud83d"')
    run = dag_rendered.test()
    output = plain("".join(capsys.readouterr()))
    (ti,) = run.get_task_instances()
    assert str(ti.state) == "failed"
    assert "SmsWwGateError" in output
    assert "message has a lone surrogate at position 13" in output
    assert "codec can't encode" not in output  # not Airflow's raw UnicodeEncodeError
    assert smsww_sandbox.sandbox.accepted() == []
    assert smsww_sandbox.sandbox.dry_runs == 0
