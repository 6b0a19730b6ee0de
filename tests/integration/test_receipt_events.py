"""Receipts end to end in one process: a real ``dag.test()`` sends through the sandbox, whose callbacks
reach the receipts endpoint over a loopback socket, which records each as an asset event in the real
Airflow database, once. Forged receipts record nothing. (tests/deployment/ runs the same with the plugin
mounted in Airflow's API server.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from smsww_receipts_dags import ON_CALL, REPORT_TO, dag

from airflow_provider_smsww.receipts import DEFAULT_ASSET, RECEIPT_HEADER
from tests.fakes import connect

pytestmark = pytest.mark.integration

SECRET = "r" * 40


@pytest.fixture
def receipts_url() -> Iterator[str]:
    """The receipts app (:func:`~airflow_provider_smsww.plugins.receipts.create_app`) on loopback."""
    import uvicorn

    from airflow_provider_smsww.plugins.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/receipts"
    server.should_exit = True
    thread.join(10)


def declare_asset() -> None:
    """The asset receipts become events of, as a DAG scheduled on it would declare it."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        if session.scalar(select(AssetModel).where(AssetModel.name == DEFAULT_ASSET)) is None:
            session.add(AssetModel(name=DEFAULT_ASSET, uri=DEFAULT_ASSET, group="asset"))
            session.add(AssetActive(name=DEFAULT_ASSET, uri=DEFAULT_ASSET))


def receipt_events() -> list[Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        events = session.scalars(query.where(AssetModel.name == DEFAULT_ASSET)).all()
        session.expunge_all()
        return list(events)


def wait_for(count: int, timeout: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(events := receipt_events()) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return events


def test_each_receipt_becomes_one_asset_event_and_a_forged_one_none(
    airflow_db: str, smsww_sandbox: Any, receipts_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare_asset()
    before = len(receipt_events())
    connect(monkeypatch, smsww_sandbox, receipts_url=receipts_url, receipts_secret=SECRET)

    run = dag.test()

    assert str(run.state) == "failed"  # load fails, by design: its alert is the notifier's message
    deadline = time.monotonic() + 10  # the alert is sent by the failed task's callback, as it ends
    while len(accepted := smsww_sandbox.sandbox.accepted()) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(m.recipient.e164 for m in accepted) == sorted([*REPORT_TO, ON_CALL])
    events = wait_for(before + 2 * len(accepted))[before:]  # PENDING, then the final state
    assert len(events) == 2 * len(accepted)
    finals = {e.extra["recipient"]: e.extra for e in events if e.extra["state"] != "PENDING"}
    assert finals["+39*******001"]["state"] == "UNDELIVERABLE"
    assert {f["state"] for k, f in finals.items() if k != "+39*******001"} == {"DELIVERED"}
    alert = finals["+39*******888"]
    assert (alert["dag_id"], alert["run_id"], alert["task_id"]) == (dag.dag_id, run.run_id, "load")
    report = finals["+39*******567"]
    assert (report["task_id"], report["map_index"], report["country"], report["parts"]) == (
        "send",
        -1,
        "IT",
        1,
    )
    assert report["price"] == pytest.approx(0.065)
    assert {(e.source_dag_id, e.source_run_id) for e in events} == {(dag.dag_id, run.run_id)}
    assert all(SECRET not in str(e.extra) and "3331234567" not in str(e.extra) for e in events)

    attempts = smsww_sandbox.sandbox.callback_attempts
    attempt = next(a for a in attempts if a.state == "DELIVERED")
    other = next(a for a in attempts if a.message_id != attempt.message_id)
    header = smsww_sandbox.sandbox.callback_secrets(attempt.message_id)["headers"][RECEIPT_HEADER]
    body, other_body = attempt.payload, other.payload  # as the sandbox posted them
    assert httpx.post(receipts_url, json=body).status_code == 401
    assert httpx.post(receipts_url, json=body, headers={RECEIPT_HEADER: "v1=" + "0" * 64}).status_code == 403
    assert httpx.post(receipts_url, json=other_body, headers={RECEIPT_HEADER: header}).status_code == 403
    repeated = httpx.post(receipts_url, json=body, headers={RECEIPT_HEADER: header})
    assert (repeated.status_code, repeated.json()) == (202, {"recorded": False})
    assert len(receipt_events()) == before + 2 * len(accepted)


@pytest.fixture
def auth_manager(airflow_db: str) -> Any:
    """The configured auth manager (Airflow's simple one here), initialised as the API server does."""
    from airflow.api_fastapi.app import create_auth_manager

    return create_auth_manager()


def test_the_messages_view_shows_the_runs_messages_to_whom_the_auth_manager_allows(
    airflow_db: str,
    smsww_sandbox: Any,
    receipts_url: str,
    auth_manager: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    declare_asset()
    connect(monkeypatch, smsww_sandbox, receipts_url=receipts_url, receipts_secret=SECRET)
    before = len(receipt_events())
    run = dag.test()
    wait_for(before + 8)
    page = receipts_url.replace("/receipts", f"/runs/{dag.dag_id}/{run.run_id}/messages")
    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username="reader", role="viewer"))

    view = httpx.get(f"{page}.json", headers={"Authorization": f"Bearer {token}"}).json()
    assert (view["messages"], view["states"]) == (4, {"DELIVERED": 3, "UNDELIVERABLE": 1})
    assert view["cost"] == pytest.approx(4 * 0.065)
    rows = {r["recipient"]: r for r in view["rows"]}
    assert rows["+39*******001"]["state"] == "UNDELIVERABLE"
    assert (rows["+39*******888"]["task"], rows["+39*******567"]["task"]) == ("load", "send")
    html_page = httpx.get(page, cookies={"_token": token})
    assert html_page.status_code == 200
    assert "UNDELIVERABLE 1" in html_page.text
    assert "3331234567" not in html_page.text
    assert "Report ready" not in html_page.text

    assert httpx.get(page).status_code == 401
    assert httpx.get(page, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    monkeypatch.setattr(type(auth_manager), "is_authorized_dag", lambda *a, **k: False)
    assert httpx.get(page, headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_without_receipts_the_view_asks_the_gateway(
    airflow_db: str, smsww_sandbox: Any, receipts_url: str, auth_manager: Any
) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    run = dag.test()  # the connection has no receipts_url: the send is as before, with no callback
    sent = [m for m in smsww_sandbox.sandbox.accepted() if m.recipient.e164 in REPORT_TO]
    assert len(sent) == len(REPORT_TO)
    assert all(m.callback is None for m in sent)
    deadline = time.monotonic() + 15  # final, so that the gateway's answer cannot change under the test
    while not all(m.state.is_final for m in sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    page = receipts_url.replace("/receipts", f"/runs/{dag.dag_id}/{run.run_id}/messages.json")
    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username="reader", role="viewer"))
    view = httpx.get(page, headers={"Authorization": f"Bearer {token}"}).json()
    assert view["messages"] == len(REPORT_TO)  # the alert left no record without receipts
    gateway = {m.id: m.state.value for m in sent}
    assert sorted(gateway.values()) == ["DELIVERED", "DELIVERED", "UNDELIVERABLE"]
    assert {r["message_id"]: r["state"] for r in view["rows"]} == gateway
    assert {r["source"] for r in view["rows"]} == {"gateway"}
