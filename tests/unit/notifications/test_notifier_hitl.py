"""SmsWwNotifier in ``notifiers=`` of Airflow's human-in-the-loop operators (3.1+), against the fake
gateway: the approver's text carries the subject and the link to the response page ([api] base_url),
the link is never cut, and the alert is never lost (a template that fails, no base_url)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_smsww.compat import AIRFLOW_VERSION
from airflow_provider_smsww.notifications.hitl import NO_LINK, with_link
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.segments import analyse
from tests.fakes import FakeGateway

pytestmark = pytest.mark.skipif(AIRFLOW_VERSION < (3, 1), reason="human-in-the-loop: Airflow 3.1+")

APPROVER = "+393331234567"
BASE = "http://airflow.example.test"
LINK = f"{BASE}/dags/release/runs/manual__1/tasks/approve/required_actions?map_index=-1"


class TI:
    dag_id, task_id, run_id, map_index, try_number = "release", "approve", "manual__1", -1, 1

    def __init__(self, state: str = "running") -> None:
        self.id, self.state = uuid.uuid4(), state


def hitl_context(subject: str = "Release Q3 data?", state: str = "running", **extra: Any) -> dict[str, Any]:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    ti = TI(state)
    task = ApprovalOperator(task_id="approve", subject=subject)
    return {"task": task, "ti": ti, "task_instance": ti, "run_id": ti.run_id, **extra}


@pytest.fixture
def base_url(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    return BASE


def texts(gateway: FakeGateway) -> list[str]:
    return [b["message"] for b in gateway.bodies]


def test_the_approver_gets_the_subject_and_the_link(gateway: FakeGateway, base_url: str) -> None:
    SmsWwNotifier(recipients=[APPROVER], sender="Airflow")(hitl_context())
    assert texts(gateway) == [f"Airflow release.approve: Release Q3 data? {LINK}"]
    assert gateway.bodies[0]["options"]["failOnMultipleMessages"] is True


def test_a_message_of_ones_own_gets_the_link_after_it(gateway: FakeGateway, base_url: str) -> None:
    SmsWwNotifier(recipients=[APPROVER], message="Please approve: {{ task.subject }}")(hitl_context())
    assert texts(gateway) == [f"Please approve: Release Q3 data? {LINK}"]
    assert with_link(f"Open {LINK} now", LINK) == (f"Open {LINK} now", True)  # never twice


def test_a_long_subject_is_cut_never_the_link(gateway: FakeGateway, base_url: str) -> None:
    SmsWwNotifier(recipients=[APPROVER])(hitl_context(subject="Release " + "very " * 60 + "large data?"))
    (text,) = texts(gateway)
    assert text.endswith(f"... {LINK}")
    assert analyse(text).parts == 1


def test_a_link_longer_than_one_part_is_sent_whole_in_several(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_base = "http://airflow.example.test/" + "a" * 150
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", long_base)
    SmsWwNotifier(recipients=[APPROVER])(hitl_context())
    (text,) = texts(gateway)
    assert f"{long_base}/dags/release/runs/manual__1/tasks/approve/required_actions" in text  # path kept
    assert gateway.bodies[0]["options"]["failOnMultipleMessages"] is False


def test_without_base_url_the_text_says_where_to_respond(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")
    SmsWwNotifier(recipients=[APPROVER])(hitl_context())
    place = "(Airflow UI, Required Actions: release.approve, run manual__1)"
    assert place == NO_LINK.format(task="release.approve", run_id="manual__1")
    assert texts(gateway) == [f"Airflow: Release Q3 data? {place}"]  # the DAG, task and run: once
    SmsWwNotifier(recipients=[APPROVER], message="Approve the Q3 release, please")(hitl_context())
    assert texts(gateway)[1] == f"Approve the Q3 release, please {place}"
    out = capsys.readouterr().out
    assert out.count("no link to the response page ([api] base_url is not set): set [api] base_url") == 2


def test_a_template_that_fails_still_sends_the_request_with_its_link(
    gateway: FakeGateway, base_url: str
) -> None:
    SmsWwNotifier(recipients=[APPROVER], message="{{ ds }} approve {{ nothing.here }}")(hitl_context())
    assert texts(gateway) == [f"Airflow release.approve: Release Q3 data? {LINK}"]


def test_a_failure_callback_of_the_same_task_is_an_ordinary_alert(
    gateway: FakeGateway, base_url: str
) -> None:
    context = hitl_context(state="failed", exception=RuntimeError("boom"))
    SmsWwNotifier(recipients=[APPROVER])(context)
    (text,) = texts(gateway)
    assert text.startswith("Airflow FAILED: release.approve try 1: RuntimeError: boom")
    assert LINK not in text


def test_a_long_run_id_sends_the_subject_whole_in_two_parts(gateway: FakeGateway, base_url: str) -> None:
    context = hitl_context()
    context["ti"].run_id = context["run_id"] = "manual__2026-12-04T22:20:06.121766+00:00"
    SmsWwNotifier(recipients=[APPROVER])(context)
    (text,) = texts(gateway)
    assert text.startswith("Airflow release.approve: Release Q3 data? http://airflow.example.test/dags/")
    assert text.endswith(
        "/runs/manual__2026-12-04T22:20:06.121766+00:00/tasks/approve/required_actions?map_index=-1"
    )
    assert analyse(text).parts == 2
    assert gateway.bodies[0]["options"]["failOnMultipleMessages"] is False
