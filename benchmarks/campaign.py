"""Campaign: a whole audience through a real CeleryExecutor deployment against a rate-limited gateway.

Set-up (``tests/deployment/harness.py``, as the deployment tests run it): PostgreSQL and Redis on
loopback, the Airflow services and 2 Celery workers of 2 task slots each; the sandbox in its own process
(``sandbox_process.py``) with the gateway's rate limit ``--rate`` R requests per second, which the
connection's extra ``rate_limit`` also tells the client (the README's advice). ``smsww_campaign``
(``benchmarks/dags/``) sends to ``--recipients`` numbers in mapped batches of ``--batch-size`` (one dry
run and one send each: about 2 x recipients / R seconds), the sends sharing the ``smsww_gateway`` pool
(``--send-slots``), then waits in one deferrable ``SmsDeliverySensor`` per batch until every message is
delivered.

Measured, at the gateway (every request's arrival and answer, noted in the sandbox process): throughput,
the requests the gateway served (not 429) per second from the campaign's first send request to its last,
as a share of R (and over the whole run, the sensors' tail included); the throttled share (429s of all
requests); duplicates (extra messages to one recipient) and lost (recipients with none); sensor calls per
message per poll (``GET /messages`` pages and ``GET /messages/{id}`` over messages x poll rounds per
sensor, a round being a listing walk from ``skip=0``). In the deployment: peak memory per worker (the
proportional set size of the worker's process tree, its task processes included, sampled every second:
PSS, so pages the forks share are not counted twice), the XCom the send tasks return (bytes in the
metadata database), and ledger writes per 1,000 messages (rows PostgreSQL inserted or updated in the
task state store on Airflow 3.3, in Variables before: ``pg_stat_user_tables``, nothing in the provider
instrumented).

Target (issue 28): >= 90% of R from the first send to the last, 0 duplicates and 0 lost; exit 1 if
missed. Outside CI: ``make bench-campaign``.

    python benchmarks/campaign.py [--recipients 100000] [--rate 100] [--batch-size 5000]
        [--send-slots 3] [--poll-seconds 10] [--json]

At R = 150 this 2-core VM runs out of CPU while three batches send for real (the API server's task state
store writes, the sandbox and the task processes use both cores): the figure then measures the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(HERE / "dags"), str(REPO / "tests" / "deployment")]
from harness import Api, Postgres, Service, celery_stack, phase, session_pids  # noqa: E402
from run_all import machine  # noqa: E402
from sandbox_process import SandboxProcess, throwaway_airflow_home  # noqa: E402

throwaway_airflow_home()  # before the DAG module imports Airflow: never ~/airflow
from smsww_campaign import DAG_ID, audience  # noqa: E402

DAG_FILE = HERE / "dags" / "smsww_campaign.py"
TARGET_SHARE = 0.9
SEND_ROUTE = ("POST", "/WW-messages")
READ_ROUTES = ("/messages", "/messages/{id}")


def sandbox_settings(rate: float, delivered_after: float) -> dict[str, Any]:
    """The sandbox's configuration: credit for any audience, deliveries ``delivered_after`` seconds
    after the send (so that the sensors see messages in flight), the account's rate limit."""
    return {
        "token": f"sbx-{secrets.token_hex(16)}",
        "credit": 10_000_000,
        "delivered_after": delivered_after,
        "timeline": True,
        "rate_limit": rate,
    }


class MemoryPeaks(threading.Thread):
    """Samples each worker's process tree (its session: the worker, its pool, the task processes) once
    a second and keeps the highest sum of PSS (``/proc/<pid>/smaps_rollup``), in MB."""

    def __init__(self, workers: dict[str, Service]) -> None:
        super().__init__(name="memory-peaks", daemon=True)
        self.workers, self.peaks = workers, dict.fromkeys(workers, 0.0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            for name, worker in self.workers.items():
                self.peaks[name] = max(
                    self.peaks[name], sum(_pss_kb(p) for p in session_pids(worker.pid)) / 1024
                )

    def stop(self) -> dict[str, float]:
        self.stopped.set()
        self.join(5)
        return {name: round(mb, 1) for name, mb in self.peaks.items()}


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def query(postgres: Postgres, sql: str, *params: Any) -> tuple[Any, ...]:
    """One row from the metadata database (psycopg2, the driver the deployment uses)."""
    import psycopg2

    with (
        contextlib.closing(psycopg2.connect(postgres.url.replace("postgresql+psycopg2", "postgresql"))) as db,
        db.cursor() as cursor,
    ):
        cursor.execute(sql, params)
        return tuple(cursor.fetchone() or ())


def ledger_writes(postgres: Postgres) -> int:
    """Rows inserted or updated so far in the ledger's tables: ``task_state_store`` (Airflow 3.3) and
    ``variable`` (older Airflow). Nothing else in the campaign writes either."""
    sql = (
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables "
        "WHERE relname IN ('task_state_store', 'variable')"
    )
    return int(query(postgres, sql)[0])


def xcom_bytes(postgres: Postgres, run_id: str, task_id: str, key: str = "return_value") -> tuple[int, int]:
    """How many XCom rows ``task_id`` stored under ``key`` in the run, and their bytes as JSON text."""
    sql = (
        "SELECT count(*), coalesce(sum(octet_length(value::text)), 0) FROM xcom "
        "WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = %s"
    )
    count, size = query(postgres, sql, DAG_ID, run_id, task_id, key)
    return int(count), int(size)


def wait_for_run(api: Api, run_id: str, timeout: float) -> dict[str, Any]:
    """The run once it has ended; every 5 s, so that watching costs the API server next to nothing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.dag_run(DAG_ID, run_id)
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(5)
    raise TimeoutError(f"the campaign run did not end within {timeout:.0f} s")


def run_campaign(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, run the campaign once, and gather what the report needs before stopping."""
    env = {"SMSWW_CAMPAIGN_POLL_SECONDS": str(args.poll_seconds)}
    with (
        SandboxProcess(**sandbox_settings(args.rate, args.delivered_after)) as gateway,
        celery_stack([DAG_FILE], env) as (airflow, workers, postgres),
    ):
        extra = {"rate_limit": args.rate}
        airflow.add_connection("smsww_default", "smsww", gateway.url, gateway.token, extra=extra)
        airflow.api.call("POST", "/pools", json={"name": "smsww_gateway", "slots": args.send_slots})
        airflow.wait_for_dags([DAG_ID])
        writes_before, memory = ledger_writes(postgres), MemoryPeaks(workers)
        memory.start()
        with phase(f"campaign: {args.recipients:,} recipients until every message is delivered"):
            started = time.time()
            run_id = airflow.api.trigger(
                DAG_ID, conf={"recipients": args.recipients, "batch_size": args.batch_size}
            )
            run = wait_for_run(airflow.api, run_id, args.timeout)
            ended = time.time()
        peaks = memory.stop()
        time.sleep(11)  # PostgreSQL publishes a busy backend's counts within 1 s, an idle one's within 10 s
        tasks = Counter(ti["state"] for ti in airflow.api.task_instances(DAG_ID, run_id))
        return {
            "state": run["state"],
            "task_states": dict(tasks),
            "wall_s": round(ended - started, 1),
            "timeline": gateway.call("timeline"),
            "per_recipient": gateway.call("per_recipient"),
            "memory_peak_mb": peaks,
            "ledger_writes": ledger_writes(postgres) - writes_before,
            "xcom": {
                "send_batch": xcom_bytes(postgres, run_id, "send_batch"),
                "send_batch_cost": xcom_bytes(postgres, run_id, "send_batch", "cost"),
                "batches": xcom_bytes(postgres, run_id, "batches"),
                "wait_delivered": xcom_bytes(postgres, run_id, "wait_delivered"),
            },
        }


def throughput(timeline: list[list[Any]], rate: float) -> dict[str, Any]:
    """Requests the gateway served per second, over the sending (first ``POST /WW-messages`` to the
    last) and over the whole run, each as a share of ``rate``; and the throttled share."""
    posts = [row[0] for row in timeline if (row[1], row[2]) == SEND_ROUTE]
    first, last = min(posts), max(posts)
    served = [row[0] for row in timeline if row[4] != 429]
    in_window = sum(1 for t in served if first <= t <= last)
    send_s = max(last - first, 1e-9)
    whole_s = max(max(row[0] for row in timeline) - min(row[0] for row in timeline), 1e-9)
    throttled = sum(1 for row in timeline if row[4] == 429)
    return {
        "send_window_s": round(send_s, 1),
        "served_per_s": round(in_window / send_s, 1),
        "share_of_rate": round(in_window / send_s / rate, 3),
        "lowest_30s_share_of_rate": lowest_share(served, first, last, rate, 30),
        "whole_run_s": round(whole_s, 1),
        "whole_run_share_of_rate": round(len(served) / whole_s / rate, 3),
        "requests": len(timeline),
        "throttled": throttled,
        "throttled_share": round(throttled / max(len(timeline), 1), 4),
        "by_route": dict(Counter(f"{r[1]} {r[2]} {r[4]}" for r in timeline)),
    }


def lowest_share(served: list[float], first: float, last: float, rate: float, window: int) -> float | None:
    """The least requests served in any ``window`` seconds of [first, last], as a share of ``rate``:
    whether the rate held all along (a mean hides a slow stretch between batches); None if shorter."""
    if last - first < window:
        return None
    per_second = Counter(int(t - first) for t in served if first <= t <= last)
    starts = range(int(last - first) - window + 1)
    least = min(sum(per_second[s + i] for i in range(window)) for s in starts)
    return round(least / window / rate, 3)


def sensor_reads(timeline: list[list[Any]], messages: int, sensors: int) -> dict[str, Any]:
    """Reads of ``GET /messages`` and ``GET /messages/{id}`` per message per poll round of a sensor. The
    send tasks read none on a first try (they list ``GET /messages`` only to reconcile a retry), so on a
    run without retries these are the sensors' reads."""
    reads = [row for row in timeline if row[1] == "GET" and row[2] in READ_ROUTES]
    rounds = sum(1 for row in reads if row[3])
    per_sensor = rounds / max(sensors, 1)
    return {
        "reads": len(reads),
        "poll_rounds": rounds,
        "rounds_per_sensor": round(per_sensor, 1),
        "calls_per_message_per_poll": round(len(reads) / max(messages * max(per_sensor, 1), 1), 4),
    }


def exactly_once(per_recipient: dict[str, int], recipients: int) -> dict[str, int]:
    """The sandbox's accepted messages judged against the audience."""
    wanted = set(audience(recipients))
    return {
        "accepted": sum(per_recipient.values()),
        "duplicates": sum(n - 1 for n in per_recipient.values() if n > 1),
        "lost": len(wanted - set(per_recipient)),
        "strangers": len(set(per_recipient) - wanted),
    }


def build_report(args: argparse.Namespace, raw: dict[str, Any]) -> dict[str, Any]:
    """The figures and the verdict of one run."""
    batches = -(-args.recipients // args.batch_size)
    speed = throughput(raw["timeline"], args.rate)
    once = exactly_once(raw["per_recipient"], args.recipients)
    count, size = raw["xcom"]["send_batch"]
    report: dict[str, Any] = {
        "benchmark": "campaign",
        "machine": machine(),
        "recipients": args.recipients,
        "batch_size": args.batch_size,
        "batches": batches,
        "rate": args.rate,
        "send_slots": args.send_slots,
        "run_state": raw["state"],
        "task_states": raw["task_states"],
        "wall_s": raw["wall_s"],
        **speed,
        **once,
        "sensor": sensor_reads(raw["timeline"], args.recipients, batches),
        "memory_peak_mb": raw["memory_peak_mb"],
        "xcom_send_bytes": size,
        "xcom_send_rows": count,
        "xcom_send_bytes_per_message": round(size / max(args.recipients, 1), 1),
        "xcom_other_bytes": {k: v[1] for k, v in raw["xcom"].items() if k != "send_batch"},
        "ledger_writes": raw["ledger_writes"],
        "ledger_writes_per_1000": round(raw["ledger_writes"] * 1000 / max(args.recipients, 1), 1),
        "target_share": TARGET_SHARE,
    }
    misses = []
    if report["share_of_rate"] < TARGET_SHARE:
        misses.append(f"{report['share_of_rate']:.1%} of the rate limit (< {TARGET_SHARE:.0%})")
    if once["duplicates"] or once["lost"] or once["strangers"]:
        misses.append(f"{once['duplicates']} duplicates, {once['lost']} lost, {once['strangers']} strangers")
    if raw["state"] != "success":
        misses.append(f"the run ended {raw['state']}")
    report.update(misses=misses, ok=not misses)
    return report


def table(r: dict[str, Any]) -> str:
    """The figures as the README quotes them."""
    sensor, memory = r["sensor"], r["memory_peak_mb"]
    rows = [
        (
            "campaign",
            f"{r['recipients']:,} recipients, {r['batches']} batches of {r['batch_size']:,}, "
            f"{r['send_slots']} send slots, 2 Celery workers; run {r['run_state']} in {r['wall_s']} s",
        ),
        ("rate limit", f"{r['rate']:g} requests/s (enforced by the gateway)"),
        (
            "throughput, first send to last",
            f"{r['served_per_s']} requests/s served over {r['send_window_s']} s "
            f"= {r['share_of_rate']:.1%} of the rate limit (target >= {r['target_share']:.0%})",
        ),
        ("throughput, lowest 30 s of the sending", _share(r["lowest_30s_share_of_rate"])),
        (
            "throughput, whole run",
            f"{r['whole_run_share_of_rate']:.1%} of the rate limit over "
            f"{r['whole_run_s']} s (the sensors' tail included)",
        ),
        (
            "throttled share",
            f"{r['throttled_share']:.2%} ({r['throttled']:,} 429s of {r['requests']:,} requests)",
        ),
        ("duplicates / lost", f"{r['duplicates']} / {r['lost']} (target 0 / 0; {r['accepted']:,} accepted)"),
        (
            "peak memory per worker",
            ", ".join(f"{k} {v:g} MB" for k, v in memory.items()) + " (PSS of the tree)",
        ),
        (
            "XCom of the send tasks",
            f"{r['xcom_send_bytes']:,} bytes in {r['xcom_send_rows']} rows, "
            f"{r['xcom_send_bytes_per_message']} bytes per message",
        ),
        (
            "XCom of the other tasks",
            ", ".join(f"{k} {v:,} bytes" for k, v in r["xcom_other_bytes"].items()),
        ),
        (
            "ledger writes per 1,000 messages",
            f"{r['ledger_writes_per_1000']} ({r['ledger_writes']:,} in all)",
        ),
        (
            "sensor calls per message per poll",
            f"{sensor['calls_per_message_per_poll']} ({sensor['reads']:,} "
            f"reads, {sensor['rounds_per_sensor']} rounds per sensor)",
        ),
    ]
    lines = ["| figure | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "n/a (the sending took under 30 s)" if value is None else f"{value:.1%} of the rate limit"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0, help="the gateway's rate limit, requests/s")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--send-slots", type=int, default=3, help="slots of the smsww_gateway pool")
    parser.add_argument("--poll-seconds", type=float, default=10.0, help="the sensors' poke_interval")
    parser.add_argument("--delivered-after", type=float, default=5.0, help="sandbox: seconds to delivery")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds (default: 3x the ideal + 10 min)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.timeout is None:
        args.timeout = 3 * 2 * args.recipients / args.rate + 600
    report = build_report(args, run_campaign(args))
    if args.json:
        print(json.dumps(report))
    else:
        print(f"Campaign benchmark on {report['machine']}:\n\n{table(report)}\n")
        print("target met" if report["ok"] else "MISSED: " + "; ".join(report["misses"]))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
