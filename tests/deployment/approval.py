"""The SMS-verified approval example in a real Airflow (3.1+), answered through the REST API; run by
``test_local_executor.py`` on its stack (one Airflow started for both).

The DAG is triggered through the REST API; the approval task texts a one-time code to the approver (the
sandbox keeps it) and waits (deferred to the triggerer on 3.1 and 3.2, ``awaiting_input`` on 3.3). The
approver answers in a headless chromium, on the page the texted link opens (through the REST API on 3.1,
whose UI has no page at that path): once "Approve" with a wrong
code (not approved: the request is opened again in the same task, and the text sent again says the code
was wrong and how many tries are left), then with the code the sandbox sent (approved: ``publish``
runs). Then every file under AIRFLOW_HOME but the metadata database (task
and service logs), every task log through the REST API, every XCom row, every rendered field and the
audit log are searched for the code: it is in none of them.
"""

from __future__ import annotations

import json
from typing import Any

from harness import AirflowStack, RunWatcher, phase, wait_until

from airflow_provider_smsww.compat import AIRFLOW_VERSION

DAG_ID, TASK = "example_smsww_approval", "approve_release"
APPROVER = "+393331234567"
WAITING = {"deferred", "awaiting_input"}  # 3.1/3.2: HITLTrigger; 3.3: no trigger


def hitl_path(run_id: str) -> str:
    return f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK}/-1/hitlDetails"


def link_texts(sandbox: Any) -> list[str]:
    return [m.text for m in sandbox.sandbox.messages.values() if TASK in m.text]


def parked(stack: AirflowStack) -> int:
    """How many times the scheduler heard from the executor that the approval task's workload ended."""
    (scheduler,) = [s for s in stack.services if s.name == "scheduler"]
    lines = scheduler.log.read_text(errors="replace").splitlines()
    return sum("Received executor event with state" in ln and f"task_id='{TASK}'" in ln for ln in lines)


def waiting_for_a_response(stack: AirflowStack, run_id: str, request: int, sandbox: Any) -> bool:
    """The approval task waits for request number ``request`` (its link texted), unanswered, and the
    scheduler has heard that the workload which opened it ended. A response before that loses a race
    in Airflow 3.3 itself: the executor's late "success" for the parked workload, seen while the
    resumed task is queued, fails it ("state changed externally"); a person never answers that fast."""
    (ti,) = [t for t in stack.api.task_instances(DAG_ID, run_id) if t["task_id"] == TASK]
    assert ti["state"] not in ("failed", "success", "upstream_failed"), stack.tails()
    if ti["state"] not in WAITING or len(link_texts(sandbox)) < request or parked(stack) < request:
        return False
    return not stack.api.call("GET", hitl_path(run_id))["response_received"]


def respond(stack: AirflowStack, run_id: str, page: Any, link: str, code: str) -> None:
    """Open the texted link, type ``code`` in the form and press "Approve", as the approver does. On
    Airflow 3.1 the link opens the UI's home page (its UI has no page at that path): the same answer
    through the REST API there."""
    if AIRFLOW_VERSION < (3, 2):
        body = {"chosen_options": ["Approve"], "params_input": {"one_time_password": code}}
        stack.api.call("PATCH", hitl_path(run_id), json=body)
        return
    page.goto(link)
    # The form's label is not tied to its input: the input of the nearest block that holds the label.
    field = page.get_by_text("One-time code", exact=True).locator("xpath=ancestor::*[.//input][1]//input")
    field.fill(code)
    page.get_by_role("button", name="Approve").click()
    page.get_by_text(f"{TASK} response successful").wait_for()


def link_of(text: str) -> str:
    """The response page's link: the texted request ends with it."""
    return text.split()[-1]


def wrong_code_for(code: str) -> str:
    return "".join("B" if c == "A" else "A" for c in code[:1]) + code[1:]


def approve(stack: AirflowStack, sandbox: Any, page: Any) -> dict[str, Any]:
    """Trigger the example, answer once with a wrong code and then with the right one in ``page``, until
    the run ends; the run id, the code, the final state and the OTP message."""
    api = stack.api
    run_id = api.trigger(DAG_ID)
    with phase("approval: the code texted, the request open"):
        wait_until("the first request", lambda: waiting_for_a_response(stack, run_id, 1, sandbox), 180)
    (otp,) = [m for m in sandbox.sandbox.messages.values() if m.otp is not None]
    assert otp.recipient.e164 == APPROVER
    code = str(otp.otp)
    with phase("approval: a wrong code typed in chromium, asked again"):
        respond(stack, run_id, page, link_of(link_texts(sandbox)[0]), wrong_code_for(code))
        wait_until("the request opened again", lambda: waiting_for_a_response(stack, run_id, 2, sandbox), 180)
    with phase("approval: the right code typed in chromium, until the run ends"):
        respond(stack, run_id, page, link_of(link_texts(sandbox)[1]), code.lower())  # case: no matter
        final = RunWatcher(api).wait([(DAG_ID, run_id)], timeout=180)
    return {"run_id": run_id, "code": code, "final": final[(DAG_ID, run_id)], "otp": otp}


def check_approved_after_a_wrong_code(approved: dict[str, Any], stack: AirflowStack, sandbox: Any) -> None:
    """A wrong code asked again (the link texted twice, one code), the right one approved."""
    run_id = approved["run_id"]
    assert approved["final"] == "success", stack.tails()
    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(DAG_ID, run_id)}
    assert states == {"prepare_release": "success", TASK: "success", "publish": "success"}
    assert [m for m in sandbox.sandbox.messages.values() if m.otp is not None] == [
        approved["otp"]
    ]  # one code
    texts = link_texts(sandbox)
    assert len(texts) == 2  # the request, then the same request again after the wrong code
    link = f"{stack.url}/dags/{DAG_ID}/runs/{run_id}/tasks/{TASK}/required_actions"
    assert all(link in text and "q3-sales-partners.parquet" in text for text in texts), texts
    # The text sent again says why; the first did not.
    notice = "Wrong code: 2 tries left; the same code is valid until "
    assert notice not in texts[0], texts
    assert notice in texts[1], texts
    response = stack.api.xcom(DAG_ID, run_id, TASK)
    assert response["chosen_options"] == ["Approve"]
    assert response["params_input"] == {"one_time_password": None}
    log = stack.api.log(DAG_ID, run_id, {"task_id": TASK, "map_index": -1}, 1)
    assert "the one-time code typed (attempt 1 of 3) is wrong; asking again" in log
    assert "One-time code verified (attempt 2): approval accepted" in log


def check_the_code_is_nowhere(approved: dict[str, Any], stack: AirflowStack) -> None:
    """The code in no file but the metadata database, no task log, XCom row, rendered field or audit
    log entry."""
    api, run_id, code = stack.api, approved["run_id"], approved["code"]
    # Every task log and service log under AIRFLOW_HOME. The metadata database keeps what the approver
    # typed (Airflow stores the human-in-the-loop response): that, and only that, holds the code.
    for needle in (code, code.lower()):  # the code texted, and the code as the approver typed it
        assert [p.name for p in stack.files_containing(needle) if not p.name.startswith("airflow.db")] == []
    logs = api.all_logs(DAG_ID, run_id)
    assert [key for key, text in logs.items() if code in text or code.lower() in text] == []
    for ti in api.task_instances(DAG_ID, run_id):
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
        entries = api.call("GET", f"{path}/xcomEntries")["xcom_entries"]
        for entry in entries:
            value = api.call("GET", f"{path}/xcomEntries/{entry['key']}", params={"deserialize": True})
            assert code not in json.dumps(value).upper(), (ti["task_id"], entry["key"])
        assert code not in json.dumps(api.call("GET", path).get("rendered_fields")).upper()
    audit = api.call("GET", "/eventLogs", params={"dag_id": DAG_ID, "limit": 100})
    assert audit["event_logs"], audit
    assert code not in json.dumps(audit).upper()
