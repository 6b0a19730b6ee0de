"""SmsWwNotifier against pytest-httpx mocks: templates, recipients, local refusal, async, no secrets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from airflow.sdk import DAG

from airflow_provider_smsww.exceptions import SmsWwError
from airflow_provider_smsww.notifications.smsww import SmsWwNotifier, send_smsww_notification
from tests.airflow_versions import needs_deadline_alerts
from tests.fakes import TOKEN, FakeGateway, example_dag_module

ON_CALL = ["+393331234567", "+393331234568"]
TEMPLATE = "FAILED {{ dag.dag_id }}.{{ ti.task_id }} (run {{ run_id }}). Log: {{ ti.log_url }}"


def sent_bodies(httpx_mock: Any) -> list[dict[str, Any]]:
    """Every request body, in the order the requests were made."""
    return [json.loads(r.content) for r in httpx_mock.get_requests()]


def forbidden() -> httpx.Response:
    """A refusal for forbidden content (a fresh response each time: pytest-httpx reads it once)."""
    return httpx.Response(422, json={"code": 2044, "message": "Forbidden content"})


class FakeTI:
    task_id = "load_warehouse"
    log_url = "http://airflow.example.test/dags/etl/runs/manual__1/tasks/load_warehouse"


def context(run_id: str = "manual__1", task_id: str = "load_warehouse") -> Any:
    ti = FakeTI()
    ti.task_id = task_id
    return {"dag": DAG(dag_id="etl", schedule=None), "ti": ti, "run_id": run_id}


def notifier(**kwargs: Any) -> SmsWwNotifier:
    kwargs.setdefault("recipients", ON_CALL)
    kwargs.setdefault("message", TEMPLATE)
    kwargs.setdefault("sender", "Airflow")
    return SmsWwNotifier(**kwargs)


def test_renders_the_context_and_sends_to_each_recipient(gateway: FakeGateway) -> None:
    notifier()(context())
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL
    text = gateway.bodies[0]["message"]
    assert text.startswith("FAILED etl.load_warehouse (run manual__1). Log: http://airflow.example.test/")
    assert gateway.bodies[0]["sender"] == "Airflow"
    assert gateway.bodies[0]["options"] == {"dryRun": False, "failOnMultipleMessages": True}
    assert set(gateway.paths) == {"/WW-messages"}


def test_recipients_and_sender_are_templates_too(gateway: FakeGateway) -> None:
    ctx = context()
    ctx["params"] = {"oncall": "+393331234567, +393331234568", "alias": "Ops"}
    notifier(recipients="{{ params.oncall }}", sender="{{ params.alias }}")(ctx)
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL
    assert gateway.bodies[0]["sender"] == "Ops"


def test_a_list_rendered_to_a_string_still_works(gateway: FakeGateway) -> None:
    ctx = context()
    ctx["params"] = {"oncall": ON_CALL}
    notifier(recipients="{{ params.oncall }}")(ctx)  # renders to "['+39...', '+44...']"
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL


def test_one_shared_notifier_renders_afresh_for_every_task(gateway: FakeGateway) -> None:
    shared = notifier(recipients=ON_CALL[:1])
    shared(context(task_id="extract"))
    shared(context(task_id="load", run_id="manual__2"))
    assert "etl.extract (run manual__1)" in gateway.bodies[0]["message"]
    assert "etl.load (run manual__2)" in gateway.bodies[1]["message"]


def test_bad_number_is_refused_with_no_request(httpx_mock: Any) -> None:
    with pytest.raises(SmsWwError, match="3331234567"):
        notifier(recipients=["3331234567"])(context())
    assert httpx_mock.get_requests() == []


def test_bad_sender_falls_back_to_the_default_sender(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    notifier(sender="123456")(context())  # an alert is never lost (issue 10): the default sender sends it
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL
    assert {b.get("sender") for b in gateway.bodies} == {None}
    assert "numeric" in capsys.readouterr().out


def test_a_bad_number_does_not_stop_the_alert_to_the_others(gateway: FakeGateway) -> None:
    with pytest.raises(SmsWwError, match=r"1 of 3 recipient\(s\)") as info:
        notifier(recipients=[*ON_CALL, "+1"])(context())
    assert "'+1'" in str(info.value)
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL


def test_an_api_refusal_is_reported_and_the_rest_still_sent(gateway: FakeGateway) -> None:
    # The dry run passed, then one real send is refused (a per-recipient refusal): the others still go.
    gateway.fail_sends[ON_CALL[0]] = httpx.Response(422, json={"code": 2044, "message": "Forbidden content"})
    with pytest.raises(SmsWwError, match=r"\+393331234567.*2044"):
        notifier()(context())
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL[1:]


def test_raise_on_failure_false_only_logs(httpx_mock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    notifier(recipients=["3331234567"], raise_on_failure=False)(context())
    assert "SMS alert NOT sent to 3331234567" in capsys.readouterr().out
    assert httpx_mock.get_requests() == []


def test_refused_credentials_stop_after_the_first_and_leak_no_token(
    httpx_mock: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(status_code=401, json={"code": 401, "message": "Unauthorized"}, is_reusable=True)
    with pytest.raises(SmsWwError) as info:
        notifier()(context())
    assert len(httpx_mock.get_requests()) == 1  # the account is refused: no point trying the others
    out = capsys.readouterr()
    assert "NOT sent to +393331234567" in out.out
    assert "NOT sent to +393331234568" in out.out
    for text in (str(info.value), out.out, out.err, caplog.text):
        assert TOKEN not in text


def test_long_text_is_cut_to_one_part(gateway: FakeGateway) -> None:
    notifier(recipients=ON_CALL[:1], message="x" * 300)(context())
    text = gateway.bodies[0]["message"]
    assert len(text) == 160
    assert text.endswith("...")


def test_long_text_refused_when_truncation_is_off(
    gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    notifier(message="x" * 300, truncate=False)(context())  # refused locally: the fallback text is sent
    assert "fail_on_multiple_messages" in capsys.readouterr().out
    assert {b["message"] for b in gateway.bodies} == {"Airflow ALERT: etl.load_warehouse. Run manual__1"}


def test_multi_part_allowed_when_asked(gateway: FakeGateway) -> None:
    notifier(recipients=ON_CALL[:1], message="x" * 300, fail_on_multiple_messages=False)(context())
    assert len(gateway.bodies[0]["message"]) == 300
    assert gateway.bodies[0]["options"]["failOnMultipleMessages"] is False


async def test_async_notify_sends_to_each_recipient(gateway: FakeGateway) -> None:
    n = notifier()
    ctx = context()
    n.render_template_fields(ctx)
    await n.async_notify(ctx)
    assert sorted(b["recipient"] for b in gateway.bodies) == sorted(ON_CALL)
    assert "etl.load_warehouse" in gateway.bodies[0]["message"]


@needs_deadline_alerts
async def test_awaited_like_a_deadline_alert(gateway: FakeGateway) -> None:
    # How the triggerer's CallbackTrigger runs AsyncCallback(SmsWwNotifier, kwargs=...): the class is
    # called with the kwargs plus a small context, then awaited.
    deadline_context: Any = {
        "dag_run": {"dag_id": "etl", "run_id": "scheduled__2025-01-01"},
        "deadline": {"id": "d1", "deadline_time": "2025-01-01T06:00:00+00:00"},
    }
    await SmsWwNotifier(
        recipients=ON_CALL,
        message="LATE {{ dag_run.dag_id }} {{ dag_run.run_id }}",
        context=deadline_context,
    )
    assert {b["message"] for b in gateway.bodies} == {"LATE etl scheduled__2025-01-01"}


async def test_async_notify_reports_failures(gateway: FakeGateway) -> None:
    gateway.fail_sends[ON_CALL[1]] = httpx.Response(503, text="busy")
    n = notifier()
    with pytest.raises(SmsWwError, match=r"\+393331234568"):
        await n.async_notify(context())
    assert [b["recipient"] for b in gateway.bodies] == ON_CALL[:1]


async def test_async_notify_missing_connection_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2 recipient\(s\).*nope"):
        await notifier(smsww_conn_id="nope").async_notify(context())


def test_missing_connection_is_reported() -> None:
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2 recipient\(s\).*nope"):
        notifier(smsww_conn_id="nope")(context())


def test_alias_and_template_fields() -> None:
    assert send_smsww_notification is SmsWwNotifier
    assert tuple(SmsWwNotifier.template_fields) == ("recipients", "message", "sender", "dedupe_key")


def test_region_goes_to_the_regional_endpoint(gateway: FakeGateway) -> None:
    notifier(recipients=ON_CALL[:1], region="IT")(context())
    assert gateway.paths == ["/IT-messages", "/IT-messages"]  # the dry run, then the send


# -- the dry run before any send ----------------------------------------------------------------------


def test_one_dry_run_of_the_final_text_and_sender_comes_before_the_sends(
    gateway: FakeGateway, httpx_mock: Any
) -> None:
    notifier()(context())
    bodies = sent_bodies(httpx_mock)
    assert [b["options"]["dryRun"] for b in bodies] == [True, False, False]
    dry = bodies[0]
    assert dry["recipient"] == ON_CALL[0]
    assert dry["options"] == {"dryRun": True, "failOnMultipleMessages": True}
    assert {(b["message"], b["sender"]) for b in bodies} == {(dry["message"], "Airflow")}
    assert [b["recipient"] for b in bodies[1:]] == ON_CALL


def test_the_dry_run_checks_the_truncated_text(gateway: FakeGateway, httpx_mock: Any) -> None:
    notifier(message="x" * 300)(context())
    bodies = sent_bodies(httpx_mock)
    assert bodies[0]["options"]["dryRun"] is True
    assert {len(b["message"]) for b in bodies} == {160}
    assert {b["message"] for b in bodies} == {"x" * 157 + "..."}


def test_the_dry_run_goes_to_the_first_valid_recipient(gateway: FakeGateway, httpx_mock: Any) -> None:
    with pytest.raises(SmsWwError, match=r"1 of 3 recipient\(s\)"):
        notifier(recipients=["+1", *ON_CALL])(context())
    bodies = sent_bodies(httpx_mock)
    assert [(b["recipient"], b["options"]["dryRun"]) for b in bodies] == [
        (ON_CALL[0], True),
        (ON_CALL[0], False),
        (ON_CALL[1], False),
    ]


def test_a_shared_notifier_dry_runs_each_alert_once(gateway: FakeGateway) -> None:
    shared = notifier()
    shared(context(task_id="extract"))
    shared(context(task_id="load"))
    assert len(gateway.dry_runs) == 2
    assert "etl.extract" in gateway.dry_runs[0]["message"]
    assert "etl.load" in gateway.dry_runs[1]["message"]
    assert len(gateway.bodies) == 4


def test_a_dry_run_refused_for_forbidden_content_sends_nothing(
    gateway: FakeGateway, httpx_mock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.refuse_dry_run = forbidden()
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2 recipient\(s\).*refused the dry run.*2044") as info:
        notifier()(context())
    bodies = sent_bodies(httpx_mock)
    assert len(bodies) == 2  # the dry run, the fallback text's dry run, and no send after them
    assert bodies[0]["options"]["dryRun"] is bodies[1]["options"]["dryRun"] is True
    assert gateway.bodies == []
    assert all(who in str(info.value) for who in ON_CALL)
    out = capsys.readouterr().out
    assert "dry run refused by the API, so the alert was sent to nobody" in out


def test_a_refused_dry_run_only_logs_when_raise_on_failure_is_false(
    gateway: FakeGateway, httpx_mock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.refuse_dry_run = forbidden()
    notifier(raise_on_failure=False)(context())
    assert len(httpx_mock.get_requests()) == 2  # the text's and the fallback text's dry runs
    out = capsys.readouterr().out
    for who in ON_CALL:
        assert f"SMS alert NOT sent to {who}: not sent: the API refused the dry run" in out


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(402, json={"code": 402, "message": "Insufficient credit"}), "402"),
        (httpx.Response(403, json={"code": 2020, "message": "User blocklisted"}), "2020"),
        (httpx.Response(503, text="busy"), "503"),
    ],
)
def test_a_failed_dry_run_sends_nothing_and_says_why(
    gateway: FakeGateway, httpx_mock: Any, response: httpx.Response, expected: str
) -> None:
    gateway.refuse_dry_run = response
    with pytest.raises(SmsWwError, match=rf"(?s)2 of 2 recipient\(s\).*the dry run failed.*{expected}"):
        notifier()(context())
    assert [b["options"]["dryRun"] for b in sent_bodies(httpx_mock)] == [True]
    assert gateway.bodies == []


async def test_async_notify_dry_runs_once_before_the_sends(gateway: FakeGateway, httpx_mock: Any) -> None:
    n = notifier()
    ctx = context()
    n.render_template_fields(ctx)
    await n.async_notify(ctx)
    bodies = sent_bodies(httpx_mock)
    assert [b["options"]["dryRun"] for b in bodies] == [True, False, False]
    assert bodies[0]["recipient"] == ON_CALL[0]
    assert sorted(b["recipient"] for b in bodies[1:]) == sorted(ON_CALL)
    assert len({b["message"] for b in bodies}) == 1


async def test_async_notify_refused_dry_run_sends_nothing(gateway: FakeGateway, httpx_mock: Any) -> None:
    gateway.refuse_dry_run = forbidden()
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2 recipient\(s\).*refused the dry run.*2044"):
        await notifier().async_notify(context())
    assert [b["options"]["dryRun"] for b in sent_bodies(httpx_mock)] == [True, True]  # text, fallback
    assert gateway.bodies == []


async def test_async_notify_failed_dry_run_sends_nothing(gateway: FakeGateway, httpx_mock: Any) -> None:
    gateway.refuse_dry_run = httpx.Response(401, json={"code": 401, "message": "Unauthorized"})
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2 recipient\(s\).*the dry run failed.*401"):
        await notifier().async_notify(context())
    assert len(httpx_mock.get_requests()) == 1
    assert gateway.bodies == []


def test_example_failure_alert_dag_builds() -> None:
    module = example_dag_module("example_smsww_failure_alert")
    assert isinstance(module.alert_on_call, SmsWwNotifier)
    assert module.dag.default_args["on_failure_callback"] is module.alert_on_call


@pytest.mark.integration
def test_against_the_sandbox_a_forbidden_task_id_keeps_the_account_clean(smsww_sandbox: Any) -> None:
    # The sandbox blocklists the account on a real send with a forbidden word, like the gateway.
    gateway = smsww_sandbox.sandbox
    with pytest.raises(SmsWwError, match=r"(?s)2 of 2.*refused the dry run.*2044"):
        notifier()(context(task_id="load_forbiddenword"))
    assert gateway.blocklisted is False
    assert sum(gateway.per_recipient().values()) == 0
    assert gateway.credit == 100.0  # no penalty
    notifier()(context())  # the account still works for the next alert
    assert gateway.per_recipient() == {number: 1 for number in ON_CALL}


ALICE, BOB = "+393331234567", "+393331234568"


def test_the_notifier_reads_its_dry_run_like_the_gate(
    gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for both: an alert whose dry run comes back as a real send sends nothing more."""
    from airflow_provider_smsww.notifications.smsww import SmsWwNotifier

    gateway.dry_run_echo = False
    with pytest.raises(SmsWwError, match=r"options\.dryRun false"):
        SmsWwNotifier(recipients=[ALICE, BOB], message="DAG failed").notify({"run_id": "r"})
    assert gateway.posts == [(ALICE, True)]
