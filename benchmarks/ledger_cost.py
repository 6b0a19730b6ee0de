"""Ledger cost: does a slow task state store slow the sends down?

In a worker, every ``task_state_store`` write is a round trip through the supervisor to the API server
(7 ms per write in ``dag.test()`` on the machine of the README's table, in-process). The operator
records every accepted id before that slot sends again; written one key per recipient, 1,000
recipients at 10 ms per write would need at least 10 s of writes, one after another, whatever the
concurrency. The ledger writes in groups instead (the records that arrive during one write go in the
next), so a slower store gets fewer, larger writes.

Measured in one run, against the fake gateway at ``--latency`` (default 100 ms) per request, gate off (the
sends are what write the ledger): the operator's rate with an instant in-memory store (the baseline) and with
a store that takes ``--store-latency`` (default 10 ms) per read and write (a sleep, as a socket wait is).
Target: the slow store keeps >= 0.8x the baseline's rate (a slot waits for its own group's write, and for the
one under way, before it sends again: about 1.5 writes per send at most). Also printed: store writes per 1,000
messages, and the floor of one write per recipient. Exit 1 when the target is missed, 2 when a recipient was
not sent exactly once.

    python benchmarks/ledger_cost.py [--recipients 1000] [--latency 0.1] [--store-latency 0.01]
        [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bulk_send import MESSAGE, SENDER, MemoryStore, connect, context, exactly_once, measure, recipients
from fake_gateway import FakeGateway
from sandbox_process import run_tasks_outside_a_worker

TARGET_RATE_RATIO = 0.8


class CountingStore(MemoryStore):
    """The task state store, in memory, taking ``delay`` seconds per read and per write."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        time.sleep(self.delay)
        return super().get(key, default)

    def set(self, key: str, value: Any) -> None:
        time.sleep(self.delay)
        self.writes += 1
        super().set(key, value)


def run(server: FakeGateway, numbers: list[str], delay: float) -> dict[str, Any]:
    from airflow_provider_smsww.operators.smsww import SmsSendOperator

    store = CountingStore(delay)
    op = SmsSendOperator(task_id="ledger", recipients=numbers, message=MESSAGE, sender=SENDER, gate=False)
    out = measure(server, lambda: op.execute(context(store)))
    return {
        "msgs_per_s": len(numbers) / out["wall"],
        "writes": store.writes,
        "ok": exactly_once(server, numbers, dry_runs=0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request at the gateway")
    parser.add_argument("--store-latency", type=float, default=0.01, help="seconds per store read/write")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run_tasks_outside_a_worker(verbose=False)
    logging.disable(logging.INFO)
    numbers = recipients(args.recipients)
    runs: dict[str, list[dict[str, Any]]] = {"instant": [], "slow": []}
    with FakeGateway(latency=args.latency) as server:
        connect(server)
        run(server, recipients(20, offset=500_000), 0.0)  # warm-up
        for _ in range(args.repeats):  # interleaved, so that a busy moment hits both
            runs["instant"].append(run(server, numbers, 0.0))
            runs["slow"].append(run(server, numbers, args.store_latency))
    per_k = 1000 / len(numbers)
    result = {
        key: {
            "msgs_per_s": round(statistics.median(r["msgs_per_s"] for r in rs), 1),
            "writes_per_1000": round(statistics.median(r["writes"] for r in rs) * per_k),
        }
        for key, rs in runs.items()
    }
    ratio = round(result["slow"]["msgs_per_s"] / result["instant"]["msgs_per_s"], 2)
    verified = all(r["ok"] for rs in runs.values() for r in rs)
    report = {
        "benchmark": "ledger_cost",
        "recipients": len(numbers),
        "latency_s": args.latency,
        "store_latency_s": args.store_latency,
        **result,
        "rate_ratio": ratio,
        "target_rate_ratio_min": TARGET_RATE_RATIO,
        "one_key_per_recipient_min_s": round(len(numbers) * args.store_latency, 1),
        "exactly_once": verified,
        "ok": ratio >= TARGET_RATE_RATIO and verified,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{len(numbers):,} sends at {args.latency * 1000:g} ms: "
            f"instant store {result['instant']['msgs_per_s']} msg/s "
            f"({result['instant']['writes_per_1000']} writes per 1,000), store at "
            f"{args.store_latency * 1000:g} ms per write {result['slow']['msgs_per_s']} msg/s "
            f"({result['slow']['writes_per_1000']} writes per 1,000): "
            f"{ratio}x (target >= {TARGET_RATE_RATIO}x)"
        )
        print(f"exactly once per recipient: {'yes' if verified else 'NO'}")
        print("OK" if report["ok"] else "MISSED")
    if not verified:
        return 2
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
