"""Scale-out on CeleryExecutor: two workers, one SIGKILLed mid-send, Airflow's retry finishes the job.

Redis (broker) and PostgreSQL (metadata database and Celery results) come from Debian's packages and
run on 127.0.0.1 for this test only. ``smsww_scale_out`` sends to 2,000 recipients in 8 mapped batches
of 250 through an ``smsww_gateway`` pool of 4 slots; the sandbox answers every request 50 ms late, so
a batch takes seconds. When a batch is part-sent, the worker running it is killed with everything it
forked (a machine dying); the scheduler finds the task without heartbeat, fails that try, and the retry
runs on the other worker. The sandbox's records judge: each recipient exactly once, and the ids in XCom
are the sandbox's ids.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import FIGURES, AirflowStack, RunWatcher, Service, celery_stack, phase, wait_until

pytestmark = pytest.mark.deployment
DAG_ID = "smsww_scale_out"
DAG_FILE = Path(__file__).parent / "dags" / "smsww_scale_out.py"
sys.path.insert(0, str(DAG_FILE.parent))
from smsww_scale_out import BATCH_SIZE, RECIPIENTS  # noqa: E402

BATCHES = len(RECIPIENTS) // BATCH_SIZE


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from airflow_provider_smsww.sandbox.faults import FaultConfig
    from airflow_provider_smsww.sandbox.server import run_sandbox

    token = f"sbx-{secrets.token_hex(16)}"
    with run_sandbox(token=token, credit=10_000, faults=FaultConfig(latency=0.05)) as server:
        yield server


@pytest.fixture(scope="module")
def stack(sandbox: Any) -> Iterator[tuple[AirflowStack, dict[str, Service]]]:
    env = {
        # A task whose worker died has no heartbeat: fail that try after 20 s (default 5 min).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # A task the dead worker had taken from the queue but not started: queue it again after 40 s.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "40",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    }
    with celery_stack([DAG_FILE], env) as (airflow, workers, _postgres):
        airflow.add_connection("smsww_default", "smsww", sandbox.url, sandbox.token)
        airflow.api.call("POST", "/pools", json={"name": "smsww_gateway", "slots": 4})
        airflow.wait_for_dags([DAG_ID])
        yield airflow, workers


def worker_of(pid: int | None, workers: dict[str, Service]) -> str | None:
    """Which worker's session a task process belongs to (None when it is gone)."""
    try:
        sid = os.getsid(pid) if pid else None
    except OSError:
        return None
    return next((name for name, w in workers.items() if w.pid == sid), None)


def test_killed_worker_mid_send_each_recipient_exactly_once(stack: Any, sandbox: Any) -> None:
    airflow, workers = stack
    api, gateway = airflow.api, sandbox.sandbox
    ran_on: dict[tuple[int, int], str] = {}  # (map_index, try) -> worker

    def observe() -> list[dict[str, Any]]:
        tis = [ti for ti in api.task_instances(DAG_ID, run_id) if ti["task_id"] == "send_batch"]
        for ti in tis:
            if ti["state"] == "running" and (name := worker_of(ti["pid"], workers)):
                ran_on[(ti["map_index"], ti["try_number"])] = name
        return tis

    def sent_in(batch: int) -> int:
        batch_numbers = set(RECIPIENTS[batch * BATCH_SIZE : (batch + 1) * BATCH_SIZE])
        return sum(1 for m in gateway.accepted() if m.recipient.e164 in batch_numbers)

    def part_sent_batch() -> tuple[str, int, int] | None:
        for ti in observe():
            name = worker_of(ti["pid"], workers) if ti["state"] == "running" else None
            if name and 20 <= (sent := sent_in(ti["map_index"])) < BATCH_SIZE - 50:
                return name, ti["map_index"], sent
        return None

    with phase("CeleryExecutor: 2,000 recipients until a worker is killed mid-send"):
        run_id = api.trigger(DAG_ID)
        victim, batch, sent_before_kill = wait_until("a batch half sent", part_sent_batch, 240, interval=0.2)
        killed = workers[victim].kill()
    survivor = next(name for name in workers if name != victim)
    with phase("CeleryExecutor: until Airflow's retries finish the run"):
        watcher = RunWatcher(api)

        def finished() -> str | None:
            observe()
            state = watcher.poll([(DAG_ID, run_id)])[(DAG_ID, run_id)]
            return state if state in ("success", "failed") else None

        final = wait_until("the run to finish after the kill", finished, 420, interval=0.5)

    tis = {ti["map_index"]: ti for ti in observe()}
    counts = gateway.per_recipient()
    xcom_ids = [r["id"] for i in range(BATCHES) for r in api.xcom(DAG_ID, run_id, "send_batch", i)]
    accepted_ids = [m.id for m in gateway.accepted()]
    retried = {i: ti["try_number"] for i, ti in tis.items() if ti["try_number"] > 1}
    summary = (
        f"CeleryExecutor: {len(RECIPIENTS)} recipients in {BATCHES} mapped batches over 2 workers "
        f"(tries per worker: {sorted(ran_on.items())})\n"
        f"CeleryExecutor: SIGKILLed {victim} ({killed} processes) while batch {batch} had {sent_before_kill}"
        f"/{BATCH_SIZE} sent; retried batches {retried}; run {final}\n"
        f"CeleryExecutor: sandbox accepted {len(accepted_ids)} messages for {len(counts)} recipients, "
        f"max per recipient {max(counts.values())}; XCom ids {len(xcom_ids)} "
        f"({len(set(xcom_ids))} distinct), equal to the sandbox's: {sorted(xcom_ids) == sorted(accepted_ids)}"
    )
    print(summary, flush=True)
    FIGURES.extend(summary.splitlines())
    assert final == "success", airflow.tails()
    assert {ti["state"] for ti in tis.values()} == {"success"}
    assert set(ran_on.values()) == {"worker1", "worker2"}  # the batches really were spread
    assert retried.get(batch, 1) >= 2, "the killed batch was not retried"
    assert ran_on[(batch, retried[batch])] == survivor
    assert sorted(counts) == sorted(RECIPIENTS)
    assert set(counts.values()) == {1}  # each recipient exactly once
    assert sorted(xcom_ids) == sorted(accepted_ids)
    assert [key for key, text in api.all_logs(DAG_ID, run_id).items() if sandbox.token in text] == []
