"""Bulk send: what the provider costs the operator's process, and what it buys end to end, against a
fake gateway (``fake_gateway.py``, a separate process that is never the bottleneck), in one run.

1. **Client CPU per 1,000 messages** (``time.process_time`` of this process, all threads: robust to a
   slow or busy machine, since it counts only the work done, not the waiting). ``SmsSendOperator``'s
   real ``execute()`` (local checks, dry-run gate, sends, ledger) against a raw ``httpx.AsyncClient``
   making the same requests with the same concurrency: same JSON bodies (built before the clock), each
   answer's status checked and its ``data.id`` read, nothing else. Gate on: both make a dry run and a
   send per message; gate off: both make the send only. Target: operator <= 1.3x raw, both ways. The
   runs are interleaved and repeated; the median of the per-pair ratios is kept, and printed with the
   spread of the pairs (lowest and highest ratio).
2. **End to end at ``--latency``** (default 100 ms per request, added by the server with no CPU):
   the operator (gate on, default ``max_concurrency``) in messages per second against the sequential
   baseline a user writes without this provider: the http provider's ``HttpOperator``, one
   ``execute()`` per request, the same two POSTs per message, on a sample. Target: >= 15x. Also a
   sweep of ``max_concurrency`` (what the default was chosen from) and the raw client's rate.

Every run starts from a reset server; each operator run is checked "exactly once per recipient" on
the server's counts. Exit 1 when a target is missed, 2 when a recipient was not sent exactly once.

    python benchmarks/bulk_send.py [--cpu-recipients 1000] [--repeats 5] [--latency 0.1]
        [--recipients 1000] [--baseline-sample 10] [--sweep 10,50,100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_gateway import FakeGateway
from sandbox_process import italian_mobiles, run_tasks_outside_a_worker, throwaway_airflow_home

throwaway_airflow_home()

MESSAGE = "Your report for 2026-11-25 is ready"
SENDER = "Reports"
TARGET_CPU_RATIO = 1.3
TARGET_VS_BASELINE = 15.0


class MemoryStore:
    """Stands in for Airflow 3.3's ``task_state_store`` (get/set), in memory."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


class _TI:
    map_index = -1
    try_number = 1


def context(store: Any = None) -> dict[str, Any]:
    """The task context ``execute()`` reads: a first try, with ``store`` (default: a fresh
    :class:`MemoryStore`) as its task state store."""
    return {
        "ti": _TI(),
        "run_id": "bench__bulk_send",
        "task_state_store": MemoryStore() if store is None else store,
    }


def recipients(n: int, offset: int = 0) -> list[str]:
    return italian_mobiles(n, start=1_000_000 + offset)


def default_concurrency() -> int:
    import inspect

    from airflow_provider_smsww.operators.smsww import SmsSendOperator

    return int(inspect.signature(SmsSendOperator.__init__).parameters["max_concurrency"].default)


def exactly_once(server: FakeGateway, numbers: list[str], dry_runs: int) -> bool:
    stats = server.stats()
    return (
        stats["accepted"] == len(numbers)
        and stats["recipients"] == len(numbers)
        and stats["duplicates"] == 0
        and stats["dry_runs"] == dry_runs
    )


def measure(server: FakeGateway, work: Any) -> dict[str, float]:
    """Wall and client CPU seconds of ``work()``, from a reset server."""
    server.reset()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    work()
    return {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0}


def run_operator(
    server: FakeGateway, numbers: list[str], *, gate: bool, concurrency: int | None
) -> dict[str, Any]:
    from airflow_provider_smsww.operators.smsww import SmsSendOperator

    kwargs = {} if concurrency is None else {"max_concurrency": concurrency}
    op = SmsSendOperator(
        task_id="bulk_send", recipients=numbers, message=MESSAGE, sender=SENDER, gate=gate, **kwargs
    )
    out = measure(server, lambda: op.execute(context()))
    out["ok"] = exactly_once(server, numbers, dry_runs=len(numbers) if gate else 0)
    return out


def wire_bodies(numbers: list[str], dry_run: bool) -> list[bytes]:
    """The exact JSON the operator posts (the package's own serialisation), built before timing."""
    from airflow_provider_smsww.sending.batch import check_locally

    batch = check_locally(numbers, MESSAGE, sender=SENDER)
    return [json.dumps(batch.request(r, dry_run=dry_run).wire()).encode() for r in batch.recipients]


def run_raw(server: FakeGateway, numbers: list[str], *, gate: bool, concurrency: int) -> dict[str, Any]:
    import httpx

    phases = ([wire_bodies(numbers, True)] if gate else []) + [wire_bodies(numbers, False)]
    headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, limits=limits) as client:
            semaphore = asyncio.Semaphore(concurrency)

            async def one(body: bytes) -> str:
                async with semaphore:
                    response = await client.post("/WW-messages", content=body)
                    if response.status_code != 201:
                        raise RuntimeError(f"raw: {response.status_code} {response.text[:200]}")
                    return str(response.json()["data"]["id"])

            for bodies in phases:
                await asyncio.gather(*(one(b) for b in bodies))

    out = measure(server, lambda: asyncio.run(main()))
    out["ok"] = exactly_once(server, numbers, dry_runs=len(numbers) if gate else 0)
    return out


def run_http_operator(server: FakeGateway, numbers: list[str]) -> dict[str, Any]:
    from airflow.providers.http.operators.http import HttpOperator

    headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}
    pairs = list(zip(wire_bodies(numbers, True), wire_bodies(numbers, False), strict=True))

    def work() -> None:
        for dry, real in pairs:
            for body in (dry, real):
                HttpOperator(
                    task_id="post",
                    http_conn_id="smsww_http",
                    endpoint="/WW-messages",
                    method="POST",
                    data=body.decode(),
                    headers=headers,
                ).execute({})

    out = measure(server, work)
    out["ok"] = exactly_once(server, numbers, dry_runs=len(numbers))
    return out


def connect(server: FakeGateway) -> None:
    os.environ["AIRFLOW_CONN_SMSWW_DEFAULT"] = server.conn_json
    port = int(server.url.rsplit(":", 1)[1])
    os.environ["AIRFLOW_CONN_SMSWW_HTTP"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )


def cpu_pass(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    c = default_concurrency()
    numbers = recipients(args.cpu_recipients)
    result: dict[str, Any] = {"recipients": len(numbers), "concurrency": c}
    ok = True
    with FakeGateway(latency=0.0) as server:
        connect(server)
        run_operator(server, recipients(50, offset=500_000), gate=True, concurrency=c)  # warm-up
        run_raw(server, recipients(50, offset=500_000), gate=True, concurrency=c)
        for gate in (True, False):
            ratios, ops, raws = [], [], []
            for _ in range(args.repeats):
                op = run_operator(server, numbers, gate=gate, concurrency=c)
                raw = run_raw(server, numbers, gate=gate, concurrency=c)
                ok = ok and op["ok"] and raw["ok"]
                ops.append(op["cpu"])
                raws.append(raw["cpu"])
                ratios.append(op["cpu"] / raw["cpu"])
            per_k = 1000 / len(numbers)
            key = "gate_on" if gate else "gate_off"
            result[key] = {
                "operator_cpu_s_per_1000": round(statistics.median(ops) * per_k, 3),
                "raw_httpx_cpu_s_per_1000": round(statistics.median(raws) * per_k, 3),
                "ratio": round(statistics.median(ratios), 2),
                "ratios": [round(r, 2) for r in ratios],
                # The spread of the pairs: a median near the target with a wide spread is luck.
                "ratio_min": round(min(ratios), 2),
                "ratio_max": round(max(ratios), 2),
            }
            say(
                f"  CPU per 1,000 messages, {key}: operator {result[key]['operator_cpu_s_per_1000']} s, "
                f"raw httpx {result[key]['raw_httpx_cpu_s_per_1000']} s: {result[key]['ratio']}x median, "
                f"pairs {result[key]['ratio_min']}-{result[key]['ratio_max']}x ({result[key]['ratios']})"
            )
    result["exactly_once"] = ok
    return result


def latency_pass(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    c = default_concurrency()
    numbers = recipients(args.recipients)
    sample = recipients(args.baseline_sample)
    ok = True
    with FakeGateway(latency=args.latency) as server:
        connect(server)
        run_operator(server, recipients(20, offset=500_000), gate=True, concurrency=None)  # warm-up
        run_http_operator(server, recipients(1, offset=600_000))
        base = run_http_operator(server, sample)
        base_rate = len(sample) / base["wall"]
        say(f"  HttpOperator sequential: {base_rate:.2f} msg/s")
        rates = []
        for _ in range(args.latency_repeats):
            op = run_operator(server, numbers, gate=True, concurrency=None)
            ok = ok and op["ok"] and base["ok"]
            rates.append(len(numbers) / op["wall"])
        op_rate = statistics.median(rates)
        say(f"  SmsSendOperator (c={c}, gate on): {op_rate:.1f} msg/s = {op_rate / base_rate:.1f}x")
        raw = run_raw(server, numbers, gate=True, concurrency=c)
        raw_rate = len(numbers) / raw["wall"]
        sweep: dict[str, float] = {}
        sweep_cpu: dict[str, float] = {}
        for level in args.sweep:
            run = run_operator(server, numbers, gate=True, concurrency=level)
            ok = ok and run["ok"]
            sweep[str(level)] = round(len(numbers) / run["wall"], 1)
            sweep_cpu[str(level)] = round(run["cpu"] * 1000 / len(numbers), 2)
            say(
                f"  max_concurrency={level}: {sweep[str(level)]} msg/s, "
                f"{sweep_cpu[str(level)]} CPU s per 1,000"
            )
    return {
        "latency_s": args.latency,
        "recipients": len(numbers),
        "concurrency": c,
        "baseline_sample": len(sample),
        "baseline_msgs_per_s": round(base_rate, 2),
        "operator_msgs_per_s": round(op_rate, 1),
        "raw_httpx_msgs_per_s": round(raw_rate, 1),
        "operator_vs_baseline": round(op_rate / base_rate, 1),
        "sweep_msgs_per_s": sweep,
        "sweep_cpu_s_per_1000": sweep_cpu,
        "exactly_once": ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-recipients", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each CPU pair (median kept)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--latency-repeats", type=int, default=2)
    parser.add_argument("--baseline-sample", type=int, default=10, help="recipients for HttpOperator")
    parser.add_argument("--sweep", default="10,50,100", help="max_concurrency settings to time")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="keep the operators' INFO logs")
    args = parser.parse_args()
    args.sweep = [int(x) for x in args.sweep.split(",") if x.strip()]
    run_tasks_outside_a_worker(verbose=args.verbose)
    if not args.verbose:
        logging.disable(logging.INFO)
    warnings.filterwarnings("ignore", module="airflow.providers.http")

    def say(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    say(
        f"bulk send, {os.cpu_count()} CPU(s): client CPU at 0 ms, "
        f"then end to end at {args.latency * 1000:g} ms"
    )
    cpu = cpu_pass(args, say)
    lat = latency_pass(args, say)
    misses = [
        f"{k}: operator {cpu[k]['ratio']}x raw httpx CPU (> {TARGET_CPU_RATIO}x)"
        for k in ("gate_on", "gate_off")
        if cpu[k]["ratio"] > TARGET_CPU_RATIO
    ]
    if lat["operator_vs_baseline"] < TARGET_VS_BASELINE:
        misses.append(
            f"operator {lat['operator_vs_baseline']}x the HttpOperator baseline (< {TARGET_VS_BASELINE}x)"
        )
    verified = cpu["exactly_once"] and lat["exactly_once"]
    report = {
        "benchmark": "bulk_send",
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "latency": lat,
        "targets": {"cpu_ratio_max": TARGET_CPU_RATIO, "operator_vs_baseline_min": TARGET_VS_BASELINE},
        "misses": misses,
        "exactly_once": verified,
        "ok": not misses and verified,
    }
    if args.json:
        print(json.dumps(report))
    else:
        say(f"exactly once per recipient: {'yes' if verified else 'NO'}")
        say("OK" if report["ok"] else "MISSED: " + "; ".join(misses))
    if not verified:
        return 2
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
