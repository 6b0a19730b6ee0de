"""Bulk send throughput: ``SmsSendOperator`` (dry-run gate on) against a sequential baseline and a raw
concurrent ceiling, all against the embedded sandbox on 127.0.0.1, in one run.

What is measured: messages per second end to end, for 2,000 distinct valid Italian mobiles
(+39333xxxxxxx). The operator runs its real ``execute()`` with a minimal context and an in-memory
``task_state_store``; it checks every number locally, prices every message with a dry run (the gate),
then sends each for real and records each id. So it makes **2 requests per message**.

Compared with, in the same run and against the same sandbox process:

- **baseline** (what a user writes without this provider): the http provider's ``HttpOperator``,
  one ``execute()`` per request, one after another, making the *same* 2 POSTs per message (dry run,
  then real send). To keep the run short it does a sample (``--baseline-sample`` recipients, i.e.
  twice as many requests) and is compared per message. A plain ``requests.Session`` loop (keep-alive,
  no Airflow at all) is reported too, as the strongest sequential baseline.
- **ceiling**: a raw ``httpx.AsyncClient`` loop with the same concurrency as the operator, posting
  the same JSON bodies (built before the clock starts) with no validation, no parsing, no ledger.
  Reported twice: for the **same work** (all dry runs, then all real sends: the operator's 2
  requests per message) and for **real sends only** (1 request per message: what the gate costs).

Fairness. The sandbox runs in a child process (``sandbox_process.py``), so the server does not share
the benchmark's GIL and its CPU is measured apart: the report gives client and server CPU per
request, which tells whether the client or the single-process sandbox limits a run. Every run starts
from a reset sandbox (same state), delivery transitions are immediate (``pending_after`` =
``delivered_after`` = 0, so in-flight bookkeeping stays empty and no state change lands mid-run) and
the credit is high enough for everything. The key runs are repeated, interleaved, and the median is
kept (other work on a shared 2-core machine hits every contender alike).

Latency. On loopback a request costs ~1 ms of CPU and no waiting, so a sequential loop is CPU-bound
and concurrency cannot multiply it (2 cores: at most ~2x). The operator's concurrency pays off where
a real gateway is: a network round trip away. The main pass therefore adds ``--latency`` seconds
(default 25 ms) to every request in the sandbox (its fault injector's ``latency``: an ``asyncio.sleep``
on the server, so it costs no CPU and overlaps across connections), emulating a WAN round trip plus
gateway time. A second pass with no added latency (pure loopback) is reported too, so the README can
say honestly what happens when latency is ~0. The 10x target is checked on the latency pass; the
ceiling target on both.

Targets (issue 6): operator >= 10x the sequential HttpOperator baseline (messages/s, same work), and
the same-work raw ceiling at most 1.5x the operator. Exit status 1 when a target is missed, 2 when a
recipient was not sent exactly once.

    python benchmarks/bulk_send.py [--recipients 2000] [--latency 0.025] [--concurrency 20]
        [--sweep 1,10,20,50] [--baseline-sample 100] [--repeats 3] [--loopback-repeats 1]
        [--no-loopback-pass] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_process import (
    SandboxProcess,
    italian_mobiles,
    run_tasks_outside_a_worker,
    throwaway_airflow_home,
)

throwaway_airflow_home()

MESSAGE = "Your report for 2026-11-25 is ready"
SENDER = "Reports"
TARGET_VS_BASELINE = 10.0
TARGET_VS_CEILING = 1.5


def recipients(n: int, offset: int = 0) -> list[str]:
    return italian_mobiles(n, start=1_000_000 + offset)


@dataclass
class Run:
    """One timed run: ``messages`` recipients, ``requests`` HTTP requests, wall and CPU seconds."""

    name: str
    messages: int
    requests: int
    wall: float
    client_cpu: float
    server_cpu: float
    concurrency: int = 1
    verified: bool | None = None  # exactly once per recipient, per the sandbox's records

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.wall

    @property
    def reqs_per_s(self) -> float:
        return self.requests / self.wall

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "msgs_per_s": round(self.msgs_per_s, 1),
            "reqs_per_s": round(self.reqs_per_s, 1),
            "client_cpu_ms_per_req": round(1000 * self.client_cpu / self.requests, 3),
            "server_cpu_ms_per_req": round(1000 * self.server_cpu / self.requests, 3),
            "client_busy": round(self.client_cpu / self.wall, 2),
            "server_busy": round(self.server_cpu / self.wall, 2),
        }


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


def context() -> dict[str, Any]:
    return {"ti": _TI(), "run_id": "bench__bulk_send", "task_state_store": MemoryStore()}


@contextlib.contextmanager
def timed(box: SandboxProcess) -> Iterator[dict[str, float]]:
    """Wall, client CPU (this process, all threads) and server CPU (the sandbox process) of a block."""
    box.call("reset")
    out: dict[str, float] = {}
    server0 = box.cpu()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    yield out
    out["wall"] = time.perf_counter() - wall0
    out["client_cpu"] = time.process_time() - cpu0
    out["server_cpu"] = box.cpu() - server0


def verify(box: SandboxProcess, numbers: list[str], dry_runs: int) -> bool:
    """The sandbox's judgement: each number accepted exactly once, and the expected dry runs."""
    stats = box.call("stats")
    per = box.call("per_recipient")
    return (
        stats["dry_runs"] == dry_runs
        and stats["accepted"] == len(numbers)
        and all(per.get(n) == 1 for n in numbers)
    )


def wire_bodies(numbers: list[str], dry_run: bool) -> list[dict[str, Any]]:
    """The exact JSON the operator posts (the package's own serialisation), built before timing."""
    from airflow_provider_smsww.sending.batch import check_locally

    batch = check_locally(numbers, MESSAGE, sender=SENDER)
    return [batch.request(r, dry_run=dry_run).wire() for r in batch.recipients]


# --- contenders --------------------------------------------------------------------------------------


def run_operator(box: SandboxProcess, numbers: list[str], concurrency: int) -> Run:
    from airflow_provider_smsww.operators.smsww import SmsSendOperator

    op = SmsSendOperator(
        task_id="bulk_send",
        recipients=numbers,
        message=MESSAGE,
        sender=SENDER,
        max_concurrency=concurrency,
    )
    with timed(box) as t:
        result = op.execute(context())
    ok = len(result) == len(numbers) and verify(box, numbers, dry_runs=len(numbers))
    return Run(
        f"SmsSendOperator (c={concurrency})",
        len(numbers),
        2 * len(numbers),
        **t,
        concurrency=concurrency,
        verified=ok,
    )


def run_ceiling(box: SandboxProcess, numbers: list[str], concurrency: int, *, same_work: bool) -> Run:
    import httpx

    phases = ([wire_bodies(numbers, True)] if same_work else []) + [wire_bodies(numbers, False)]
    headers = {"Authorization": f"Bearer {box.token}"}

    async def post_all(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> None:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(body: dict[str, Any]) -> None:
            async with semaphore:
                response = await client.post("/WW-messages", json=body)
                if response.status_code != 201:
                    raise RuntimeError(f"ceiling: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(one(b) for b in bodies))

    async def main() -> None:
        async with httpx.AsyncClient(base_url=box.url, headers=headers) as client:
            for bodies in phases:
                await post_all(client, bodies)

    with timed(box) as t:
        asyncio.run(main())
    ok = verify(box, numbers, dry_runs=len(numbers) if same_work else 0)
    label = "dry run + send" if same_work else "send only"
    return Run(
        f"raw httpx ceiling, {label} (c={concurrency})",
        len(numbers),
        len(numbers) * len(phases),
        **t,
        concurrency=concurrency,
        verified=ok,
    )


def run_http_operator(box: SandboxProcess, numbers: list[str]) -> Run:
    from airflow.providers.http.operators.http import HttpOperator

    headers = {"Authorization": f"Bearer {box.token}", "Content-Type": "application/json"}
    pairs = list(zip(wire_bodies(numbers, True), wire_bodies(numbers, False), strict=True))
    with timed(box) as t:
        for dry, real in pairs:
            for body in (dry, real):
                HttpOperator(
                    task_id="post",
                    http_conn_id="smsww_http",
                    endpoint="/WW-messages",
                    method="POST",
                    data=json.dumps(body),
                    headers=headers,
                ).execute({})
    ok = verify(box, numbers, dry_runs=len(numbers))
    return Run("HttpOperator, sequential (baseline)", len(numbers), 2 * len(numbers), **t, verified=ok)


def run_requests_loop(box: SandboxProcess, numbers: list[str]) -> Run:
    import requests

    headers = {"Authorization": f"Bearer {box.token}"}
    pairs = list(zip(wire_bodies(numbers, True), wire_bodies(numbers, False), strict=True))
    with timed(box) as t, requests.Session() as session:
        for dry, real in pairs:
            for body in (dry, real):
                session.post(f"{box.url}/WW-messages", json=body, headers=headers).raise_for_status()
    ok = verify(box, numbers, dry_runs=len(numbers))
    return Run("requests.Session keep-alive, sequential", len(numbers), 2 * len(numbers), **t, verified=ok)


# --- the benchmark ------------------------------------------------------------------------------------


@dataclass
class Pass:
    latency: float
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, key: str, run: Run) -> Run:
        self.runs.setdefault(key, []).append(run)
        return run

    def median(self, key: str) -> Run:
        runs = sorted(self.runs[key], key=lambda r: r.msgs_per_s)
        return runs[len(runs) // 2]

    def rate(self, key: str) -> float:
        return statistics.median(r.msgs_per_s for r in self.runs[key])


def one_pass(
    args: argparse.Namespace, latency: float, sweep: list[int], repeats: int, say: Callable[[str], None]
) -> Pass:
    numbers = recipients(args.recipients)
    sample = recipients(args.baseline_sample)
    result = Pass(latency)
    config = {"credit": "100000000", "pending_after": 0.0, "delivered_after": 0.0, "latency": latency}
    with SandboxProcess(**config) as box:
        port = int(box.url.rsplit(":", 1)[1])
        os.environ["AIRFLOW_CONN_SMSWW_DEFAULT"] = box.conn_json
        os.environ["AIRFLOW_CONN_SMSWW_HTTP"] = json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        )
        # Warm-up (imports, first connection, phonenumbers metadata): not timed.
        run_operator(box, recipients(20, offset=500_000), args.concurrency)
        run_http_operator(box, recipients(2, offset=600_000))

        def show(run: Run) -> None:
            s = run.summary()
            flag = "" if run.verified else "  NOT VERIFIED"
            say(
                f"  {run.name:<48} {s['msgs_per_s']:8.1f} msg/s {s['reqs_per_s']:8.1f} req/s  "
                f"cpu/req client {s['client_cpu_ms_per_req']:.2f} ms server {s['server_cpu_ms_per_req']:.2f} ms{flag}"
            )

        show(result.add("baseline", run_http_operator(box, sample)))
        show(result.add("requests", run_requests_loop(box, sample)))
        c = args.concurrency
        for _ in range(repeats):
            show(result.add("operator", run_operator(box, numbers, c)))
            show(result.add("ceiling_same", run_ceiling(box, numbers, c, same_work=True)))
            show(result.add("ceiling_send", run_ceiling(box, numbers, c, same_work=False)))
        for level in sweep:
            if level == c:
                continue
            # One in flight is as slow as the baseline: a sample keeps the run short.
            who = sample if level == 1 else numbers
            show(result.add(f"operator_c{level}", run_operator(box, who, level)))
    return result


def analyse(p: Pass, concurrency: int, sweep: list[int]) -> dict[str, Any]:
    op, base = p.rate("operator"), p.rate("baseline")
    same, send = p.rate("ceiling_same"), p.rate("ceiling_send")
    sweep_rates = {
        level: round(p.rate("operator" if level == concurrency else f"operator_c{level}"), 1)
        for level in sweep
        if ("operator" if level == concurrency else f"operator_c{level}") in p.runs
    }
    return {
        "latency_s": p.latency,
        "operator_msgs_per_s": round(op, 1),
        "baseline_msgs_per_s": round(base, 1),
        "requests_loop_msgs_per_s": round(p.rate("requests"), 1),
        "ceiling_same_work_msgs_per_s": round(same, 1),
        "ceiling_send_only_msgs_per_s": round(send, 1),
        "operator_vs_baseline": round(op / base, 2),
        "operator_vs_requests_loop": round(op / p.rate("requests"), 2),
        "ceiling_same_work_over_operator": round(same / op, 2),
        "ceiling_send_only_over_operator": round(send / op, 2),
        "sweep_msgs_per_s": sweep_rates,
        "verified": all(r.verified for runs in p.runs.values() for r in runs),
        "runs": {k: [r.summary() for r in v] for k, v in p.runs.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.025, help="seconds added per request (WAN)")
    parser.add_argument("--concurrency", type=int, default=20, help="operator max_concurrency (default 20)")
    parser.add_argument("--sweep", default="1,10,20,50", help="max_concurrency settings to report")
    parser.add_argument("--baseline-sample", type=int, default=100, help="recipients for the baselines")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the key runs (median kept)")
    parser.add_argument("--loopback-repeats", type=int, default=1, help="repeats in the zero-latency pass")
    parser.add_argument("--no-loopback-pass", action="store_true", help="skip the zero-latency pass")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="keep the operators' INFO logs")
    args = parser.parse_args()
    run_tasks_outside_a_worker(verbose=args.verbose)
    if not args.verbose:  # both operators log per batch or per request through the stdlib too
        logging.disable(logging.INFO)
    warnings.filterwarnings("ignore", module="airflow.providers.http")  # a deprecation notice per import

    def say(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    sweep = [int(x) for x in args.sweep.split(",") if x.strip()]
    say(
        f"bulk send, {args.recipients} recipients, {os.cpu_count()} CPU(s); latency {args.latency * 1000:g} ms"
    )
    main_pass = analyse(one_pass(args, args.latency, sweep, args.repeats, say), args.concurrency, sweep)
    loopback: dict[str, Any] | None = None
    if not args.no_loopback_pass and args.latency > 0:
        say("no added latency (pure loopback)")
        loopback = analyse(
            one_pass(args, 0.0, [], args.loopback_repeats, say), args.concurrency, [args.concurrency]
        )
    misses = []
    if main_pass["operator_vs_baseline"] < TARGET_VS_BASELINE:
        misses.append(f"operator {main_pass['operator_vs_baseline']}x the baseline (< {TARGET_VS_BASELINE}x)")
    for name, p in (("latency", main_pass), ("loopback", loopback)):
        if p is not None and p["ceiling_same_work_over_operator"] > TARGET_VS_CEILING:
            misses.append(
                f"{name}: same-work ceiling {p['ceiling_same_work_over_operator']}x the operator "
                f"(> {TARGET_VS_CEILING}x)"
            )
    verified = main_pass["verified"] and (loopback is None or loopback["verified"])
    report = {
        "benchmark": "bulk_send",
        "cpus": os.cpu_count(),
        "recipients": args.recipients,
        "concurrency": args.concurrency,
        "baseline_sample": args.baseline_sample,
        "repeats": args.repeats,
        "latency": main_pass,
        "loopback": loopback,
        "targets": {
            "operator_vs_baseline_min": TARGET_VS_BASELINE,
            "ceiling_over_operator_max": TARGET_VS_CEILING,
        },
        "misses": misses,
        "exactly_once": verified,
        "ok": not misses and verified,
    }
    if args.json:
        print(json.dumps(report))
    else:
        for name, p in (("latency", main_pass), ("loopback", loopback)):
            if p is None:
                continue
            say(
                f"[{name} {p['latency_s'] * 1000:g} ms] operator {p['operator_msgs_per_s']} msg/s = "
                f"{p['operator_vs_baseline']}x HttpOperator baseline ({p['baseline_msgs_per_s']}), "
                f"{p['operator_vs_requests_loop']}x requests loop ({p['requests_loop_msgs_per_s']}); ceiling "
                f"same work {p['ceiling_same_work_msgs_per_s']} ({p['ceiling_same_work_over_operator']}x), "
                f"send only {p['ceiling_send_only_msgs_per_s']} ({p['ceiling_send_only_over_operator']}x); "
                f"sweep {p['sweep_msgs_per_s']}"
            )
        say(f"exactly once per recipient: {'yes' if verified else 'NO'}")
        say("OK" if report["ok"] else "MISSED: " + "; ".join(misses))
    if not verified:
        return 2
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
