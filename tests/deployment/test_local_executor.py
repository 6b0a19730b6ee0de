"""The example DAGs in a real Airflow with LocalExecutor and PostgreSQL, triggered through the REST API.

A new user's path: the DAGs are put in the dags folder, start paused, are unpaused and triggered with
``POST /api/v2/dags/{id}/dagRuns`` with no logical date (what the UI and most scripts send), the report
DAG once more with one. The scheduler runs the tasks, the triggerer completes the deferred sensors, and
the sandbox's records judge what was sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import approval
import browser
import messages_view
import pytest
import receipts
from harness import FIGURES, REPO, AirflowStack, Postgres, RunWatcher, phase, wait_until

from airflow_provider_smsww.compat import AIRFLOW_VERSION
from airflow_provider_smsww.receipts import RECEIPT_HEADER

pytestmark = pytest.mark.deployment
#: The SMS-verified approval example: human-in-the-loop needs Airflow 3.1 (on 3.0 its file fails to import).
HITL = AIRFLOW_VERSION >= (3, 1)
needs_hitl = pytest.mark.skipif(not HITL, reason="human-in-the-loop operators: Airflow 3.1+")

REPORT, ALERT, BULK = (
    "example_smsww_report_ready",
    "example_smsww_failure_alert",
    "example_smsww_bulk_campaign",
)
READERS = ["+393331234567", "+447400123456"]
AUDIENCE = {f"+39333{n:07d}" for n in range(1_000_100, 1_000_130)}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from airflow_provider_smsww.sandbox.server import run_sandbox

    # Deliveries take long enough that every sensor finds its messages still in flight and defers.
    with run_sandbox(token=f"sbx-{secrets.token_hex(16)}", delivered_after=15) as server:
        yield server


@pytest.fixture(scope="module")
def stack(sandbox: Any) -> Iterator[AirflowStack]:
    dags = sorted(p for p in (REPO / "example_dags").glob("example_*.py") if HITL or "approval" not in p.name)
    # PostgreSQL, as in production: on SQLite, the services' and 8 workers' concurrent writes wait on
    # its lock; a task's start (PATCH /run) that waited out the 5 s busy timeout failed the task unstarted.
    with phase("LocalExecutor: PostgreSQL up"):
        postgres = Postgres().__enter__()
    try:
        env = messages_view.stack_env()  # an auth manager that can refuse a DAG
        with AirflowStack(dags=dags, sql_alchemy_conn=postgres.url, extra_env=env, log_in=True) as stack:
            # Receipts on, so that every message of this stack reports back to the API server's plugin.
            extra = receipts.connection_extra(stack.url)
            stack.add_connection("smsww_default", "smsww", sandbox.url, sandbox.token, extra)
            dags = [REPORT, ALERT, BULK, receipts.DAG_ID, receipts.FALLBACK_DAG_ID]
            stack.wait_for_dags(dags + ([approval.DAG_ID] if HITL else []))
            yield stack
    finally:
        postgres.__exit__(None, None, None)


@pytest.fixture(scope="module")
def runs(stack: AirflowStack) -> dict[str, Any]:
    api = stack.api
    with phase("LocalExecutor: 5 runs triggered through the REST API, until they end"):
        api.call("PATCH", f"/dags/{receipts.FALLBACK_DAG_ID}", json={"is_paused": False})
        runs = {
            "receipts": (
                receipts.DAG_ID,
                api.trigger(receipts.DAG_ID, conf={"recipients": receipts.READERS}),
            ),
            "report": (REPORT, api.trigger(REPORT)),
            "report_dated": (REPORT, api.trigger(REPORT, logical_date="2025-06-01T00:00:00Z")),
            "alert": (ALERT, api.trigger(ALERT)),
            "bulk": (BULK, api.trigger(BULK)),
        }
        watcher = RunWatcher(api)
        final = watcher.wait(list(runs.values()), timeout=420)
    tis = {
        name: {(t["task_id"], t["map_index"]): t for t in api.task_instances(*run)}
        for name, run in runs.items()
    }
    ended = {
        name: seconds_between(*(api.dag_run(*run)[k] for k in ("start_date", "end_date")))
        for name, run in runs.items()
    }
    FIGURES.append(
        "LocalExecutor: "
        + ", ".join(f"{name} {final[run]} after {ended[name]:.1f} s" for name, run in runs.items())
    )
    return {"runs": runs, "final": final, "tis": tis, "watcher": watcher}


def seconds_between(start: str, end: str | None) -> float:
    """Seconds between two of the REST API's ISO times (NaN when the end is missing)."""
    if end is None:
        return float("nan")
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def states(runs: dict[str, Any], name: str) -> dict[tuple[str, int], str]:
    return {key: ti["state"] for key, ti in runs["tis"][name].items()}


def explain(runs: dict[str, Any], stack: AirflowStack) -> str:
    """What went wrong, most telling first: every task's state, then the logs of the tries that did not
    succeed (their last lines), then the services' tails."""
    lines = []
    for name, run in runs["runs"].items():
        lines.append(f"{name} {run}: {runs['final'][run]}")
        lines += [
            f"  {task}[{index}]: {ti['state']} "
            f"(try {ti['try_number']}, {ti['start_date']} - {ti['end_date']})"
            for (task, index), ti in runs["tis"][name].items()
        ]
    for name, run in runs["runs"].items():
        for (task, index), ti in runs["tis"][name].items():
            if ti["state"] not in ("success", "deferred") and not (
                name == "alert" and task == "load_warehouse"
            ):
                for n in range(1, int(ti["try_number"]) + 1):
                    lines.append(f"--- log of {name}:{task}[{index}]#{n} ---")
                    lines.append(stack.api.log(*run, ti, n)[-6000:])
    return "\n".join([*lines, stack.tails()])


def test_every_run_and_task_ends_as_expected(runs: dict[str, Any], stack: AirflowStack) -> None:
    final = {name: runs["final"][run] for name, run in runs["runs"].items()}
    expected = {"report": "success", "report_dated": "success", "alert": "failed", "bulk": "success"}
    assert final == {**expected, "receipts": "success"}, explain(runs, stack)
    for name in ("report", "report_dated"):
        assert states(runs, name) == {
            ("build_report", -1): "success",
            ("notify_readers", -1): "success",
            ("wait_for_delivery", -1): "success",
        }
    assert states(runs, "alert") == {("extract", -1): "success", ("load_warehouse", -1): "failed"}
    bulk = states(runs, "bulk")
    assert bulk.pop(("preview_cost", -1)) == bulk.pop(("split", -1)) == "success"
    assert bulk == {(task, i): "success" for task in ("send_batch", "wait_for_delivery") for i in range(3)}


def test_runs_without_a_logical_date_work(runs: dict[str, Any], stack: AirflowStack) -> None:
    api = stack.api
    for name in ("report", "alert", "bulk"):
        assert api.dag_run(*runs["runs"][name])["logical_date"] is None
    day = api.dag_run(*runs["runs"]["report"])["run_after"][:10]
    assert api.xcom(*runs["runs"]["report"], "build_report") == f"https://reports.example.com/daily/{day}"
    dated = api.xcom(*runs["runs"]["report_dated"], "build_report")
    assert dated == "https://reports.example.com/daily/2025-06-01"


def test_sensors_deferred_and_the_triggerer_completed_them(runs: dict[str, Any]) -> None:
    watcher = runs["watcher"]
    final = {(*runs["runs"][name], *key) for name, tis in runs["tis"].items() for key in tis}
    sensors = [key for key in watcher.seen if key[2] == "wait_for_delivery" and key in final]  # not unmapped
    assert len(sensors) == 5  # 2 report runs + 3 mapped bulk batches
    for key in sensors:
        assert "deferred" in watcher.seen[key], (key, watcher.seen[key])
        assert any(job.startswith("TriggererJob") for job in watcher.triggerer_jobs.get(key, ())), key


def test_xcom_matches_what_the_sandbox_sent(runs: dict[str, Any], stack: AirflowStack, sandbox: Any) -> None:
    api, gateway = stack.api, sandbox.sandbox
    for name, day in (("report", None), ("report_dated", "2025-06-01")):
        sent = api.xcom(*runs["runs"][name], "notify_readers")
        assert sorted(r["recipient"] for r in sent) == sorted(READERS)
        for record in sent:
            view = gateway.view(record["id"])
            assert view["recipient"] == record["recipient"]
            assert view["state"] == "DELIVERED"
            assert day is None or f"report for {day} is ready" in view["message"]
        delivered = api.xcom(*runs["runs"][name], "wait_for_delivery")
        assert sorted(m["id"] for m in delivered) == sorted(r["id"] for r in sent)
        assert {m["state"] for m in delivered} == {"DELIVERED"}

    alert_run = runs["runs"]["alert"][1]
    (alert,) = [m for m in gateway.messages.values() if m.text.startswith("FAILED ")]
    assert alert.recipient.e164 == "+393331234567"
    assert f"({alert_run})" in alert.text

    bulk_ids = [r["id"] for i in range(3) for r in api.xcom(*runs["runs"]["bulk"], "send_batch", i)]
    bulk_sent = [m for m in gateway.accepted() if m.recipient.e164 in AUDIENCE]
    assert sorted(bulk_ids) == sorted(m.id for m in bulk_sent)
    assert sorted(m.recipient.e164 for m in bulk_sent) == sorted(AUDIENCE)  # each number exactly once
    preview = api.xcom(*runs["runs"]["bulk"], "preview_cost")
    assert len(preview["recipients"] if isinstance(preview, dict) else preview) == 30


def test_no_task_log_holds_the_token(runs: dict[str, Any], stack: AirflowStack, sandbox: Any) -> None:
    logs = {}
    for name, run in runs["runs"].items():
        logs.update({f"{name}:{key}": text for key, text in stack.api.all_logs(*run).items()})
    assert len(logs) >= 16
    assert "Dry-run gate passed" in logs["report:notify_readers[-1]#1"]
    assert [key for key, text in logs.items() if sandbox.token in text] == []
    assert stack.files_containing(sandbox.token) == []  # nor any log file of any service
    assert [key for key, text in logs.items() if receipts.SECRET in text] == []
    assert stack.files_containing(receipts.SECRET) == []


def test_receipts_become_asset_events_once_and_a_forged_one_nothing(
    runs: dict[str, Any], stack: AirflowStack, sandbox: Any
) -> None:
    run = runs["runs"]["receipts"]
    sent = stack.api.xcom(*run, "notify_readers")
    assert sorted(r["recipient"] for r in sent) == sorted(receipts.READERS)
    events = receipts.wait_for_events(stack, run[1], 2 * len(sent))  # PENDING, then the final state
    ids = {r["id"] for r in sent}
    attempts = [a for a in sandbox.sandbox.callback_attempts if a.message_id in ids]
    assert len(events) == len(attempts) == 40
    assert all(a.ok for a in attempts)
    slowest = max(a.seconds for a in attempts)
    assert slowest < receipts.RECORDED_WITHIN
    undelivered = next(r["id"] for r in sent if r["recipient"] == "+393330000001")
    finals = {
        e["extra"]["message_id"]: e["extra"]["state"] for e in events if e["extra"]["state"] != "PENDING"
    }
    assert finals == {**dict.fromkeys(ids, "DELIVERED"), undelivered: "UNDELIVERABLE"}
    extra = next(e["extra"] for e in events if e["extra"]["message_id"] == undelivered)
    assert (extra["recipient"], extra["country"], extra["task_id"]) == (
        "+39*******001",
        "IT",
        "notify_readers",
    )
    wait_until("the fallback DAG's run", lambda: receipts.fallback_runs_for(stack, undelivered), 120)

    attempt = next(a for a in attempts if a.state == "DELIVERED")
    header = sandbox.sandbox.callback_secrets(attempt.message_id)["headers"][RECEIPT_HEADER]
    other = next(a for a in attempts if a.message_id != attempt.message_id)
    assert receipts.forge(stack, attempt.payload, None).status_code == 401
    assert receipts.forge(stack, attempt.payload, "v1=" + "0" * 64).status_code == 403
    assert receipts.forge(stack, other.payload, header).status_code == 403
    repeated = receipts.forge(stack, attempt.payload, header)
    assert (repeated.status_code, repeated.json()) == (202, {"recorded": False})
    assert len(receipts.events_of(stack, run[1])) == 40
    FIGURES.append(
        f"Receipts: 40 of 20 messages recorded, the slowest {slowest:.2f} s after the sandbox posted it"
    )


def test_the_messages_view_shows_a_runs_sms_to_whom_the_auth_manager_allows(
    runs: dict[str, Any], stack: AirflowStack, page: Any
) -> None:
    run = runs["runs"]["receipts"]
    view = messages_view.settled(stack, *run, count=20)
    assert view["states"] == {"DELIVERED": 19, "UNDELIVERABLE": 1}
    assert view["cost"] == pytest.approx(20 * 0.065)
    assert {r["recipient"] for r in view["rows"]} >= {"+39*******001"}
    alert = messages_view.settled(stack, *runs["runs"]["alert"], count=1)  # the failed run's alert
    assert [(r["task"], r["state"]) for r in alert["rows"]] == [("load_warehouse", "DELIVERED")]

    shown = messages_view.open_in_browser(page, stack, *run)
    assert shown.locator("#count").inner_text() == "20"
    assert shown.locator("#cost").inner_text() == f"{view['cost']:.4f}"
    assert shown.get_by_text("UNDELIVERABLE 1").count() == 1
    assert shown.locator("tbody tr").count() == 20
    assert messages_view.refusals(stack, *run) == (401, 403)


# -- the SMS-verified approval (tests/deployment/approval.py), on this stack ---------------------------
# `make test-approval-3.1` (-3.2) runs only these: `-k approval`.


@pytest.fixture(scope="module")
def approved(stack: AirflowStack, sandbox: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    with browser.open_page(request) as page:
        browser.log_in(page, stack)
        return approval.approve(stack, sandbox, page)


@needs_hitl
def test_approval_a_wrong_code_asks_again_and_the_right_one_approves(
    approved: dict[str, Any], stack: AirflowStack, sandbox: Any
) -> None:
    approval.check_approved_after_a_wrong_code(approved, stack, sandbox)


@needs_hitl
def test_approval_code_is_in_no_log_xcom_rendered_field_or_audit_log(
    approved: dict[str, Any], stack: AirflowStack
) -> None:
    approval.check_the_code_is_nowhere(approved, stack)


# -- the connection form in chromium (tests/deployment/browser.py), on this stack, last ------------------


@pytest.fixture
def page(request: pytest.FixtureRequest, stack: AirflowStack) -> Iterator[Any]:
    with browser.open_page(request) as page:
        browser.log_in(page, stack)
        yield page


def test_a_connection_made_in_the_form_passes_the_test_button(
    page: Any, stack: AirflowStack, sandbox: Any
) -> None:
    browser.check_a_connection_made_in_the_form_passes_the_test_button(page, stack, sandbox)
