"""Fault injection: before processing nothing is stored, after processing the message is stored but the
client never sees the 201. Over a real socket and in process."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_smsww.sandbox.faults import FaultConfig, FaultInjector, FaultSyntaxError, parse_fault
from airflow_provider_smsww.sandbox.server import InProcessSandbox, in_process_sandbox, run_sandbox

US = "+14155550123"
BODY = {"recipient": US, "message": "hello"}


def test_grammar() -> None:
    assert parse_fault("503").label == "503"
    assert parse_fault("500-after").after
    assert parse_fault("429=0.01").retry_after == 0.01
    assert parse_fault("429", default_retry_after=2).retry_after == 2
    combined = parse_fault("drop-after, latency=0.05")
    assert (combined.action, combined.after, combined.latency) == ("drop", True, 0.05)
    assert parse_fault("none").action is None
    for bad in ("404", "teapot", "latency=x", "latency=-1"):
        with pytest.raises(FaultSyntaxError):
            parse_fault(bad)


def test_random_faults_are_reproducible_and_limited_to_paths() -> None:
    config = FaultConfig(rate_5xx=0.3, rate_429=0.3, seed=42)
    runs = []
    for _ in range(2):
        injector = FaultInjector(config)
        runs.append([injector.choose("POST", "/WW-messages", None) for _ in range(50)])
    assert runs[0] == runs[1]
    kinds = {chosen[0].action for chosen in runs[0] if chosen}
    assert kinds == {None, "error", "429"}
    assert FaultInjector(config).choose("GET", "/messages", None) is None


@pytest.mark.parametrize(
    ("fault", "status", "stored"),
    [("503", 503, 0), ("500-after", 500, 1), ("429=0.5", 429, 0)],
)
def test_status_faults_in_process(
    http: httpx.Client, sandbox_app: InProcessSandbox, fault: str, status: int, stored: int
) -> None:
    response = http.post("/WW-messages", json=BODY, headers={"X-Sandbox-Fault": fault})
    assert response.status_code == status
    assert len(sandbox_app.sandbox.messages) == stored
    if status == 429:
        assert response.headers["Retry-After"] == "0.5"
    (record,) = sandbox_app.faults.log
    assert (record.path, record.fault, record.source) == ("/WW-messages", fault, "header")
    assert (record.message_id is not None) == bool(stored)
    if stored:
        assert record.message_id in sandbox_app.sandbox.messages


@pytest.mark.parametrize(("fault", "stored"), [("drop-before", 0), ("drop-after", 1)])
def test_drops_in_process_raise_remote_protocol_error(
    http: httpx.Client, sandbox_app: InProcessSandbox, fault: str, stored: int
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/WW-messages", json=BODY, headers={"X-Sandbox-Fault": fault})
    assert len(sandbox_app.sandbox.accepted()) == stored
    assert sandbox_app.sandbox.requests == [("POST", "/WW-messages", 0)]


#: A dropped connection as the client sees it: closed before the response (RemoteProtocolError), or reset
#: while it was still reading (ReadError), which a busy machine's timing sometimes makes it.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


@pytest.mark.integration
def test_drops_over_a_real_socket() -> None:
    with run_sandbox() as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers) as http:
            for fault in ("drop-before", "drop-after"):
                with pytest.raises(DROPPED):
                    http.post("/WW-messages", json=BODY, headers={"X-Sandbox-Fault": fault})
            with pytest.raises(DROPPED):
                http.get("/messages", headers={"X-Sandbox-Fault": "drop-before"})
            # The server survives and the one 'after' drop is there to be found.
            listed = http.get("/messages").json()["data"]
        assert [m["id"] for m in listed] == [server.faults.log[1].message_id]
        assert server.sandbox.per_recipient() == {US: 1}


def test_scripted_faults_match_path_and_method(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    sandbox_app.faults.inject("503", "503-after", path="/messages", method="GET")
    assert http.post("/WW-messages", json=BODY).status_code == 201  # not matched: stays queued
    assert http.get("/messages").status_code == 503
    assert http.get("/messages").status_code == 503
    assert http.get("/messages").status_code == 200
    assert [r.source for r in sandbox_app.faults.log] == ["script", "script"]


def test_latency(sandbox_app: InProcessSandbox, http: httpx.Client) -> None:
    import time

    start = time.perf_counter()
    assert http.get("/messages", headers={"X-Sandbox-Fault": "latency=0.1"}).status_code == 200
    assert time.perf_counter() - start >= 0.1
    assert sandbox_app.faults.log[0].fault == "latency=0.1"


def test_configured_rates_apply_to_send_paths_only() -> None:
    with in_process_sandbox(faults=FaultConfig(rate_5xx=1.0, status_5xx=502)) as box:
        headers = {"Authorization": f"Bearer {box.token}"}
        with httpx.Client(transport=box.transport, base_url=box.url, headers=headers) as http:
            assert http.post("/WW-messages", json=BODY).status_code == 502
            assert http.get("/messages").status_code == 200
            assert box.sandbox.messages == {}


def test_bad_fault_header_is_400(http: httpx.Client, sandbox_app: InProcessSandbox) -> None:
    response = http.post("/WW-messages", json=BODY, headers={"X-Sandbox-Fault": "explode"})
    assert response.status_code == 400
    assert sandbox_app.sandbox.messages == {}
