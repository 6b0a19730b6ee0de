"""Settle wait: worker-slot seconds while sends of unknown outcome settle, ``SmsSendOperator`` in the
worker (the default) vs ``deferrable=True``, on the real classes against the embedded sandbox on
127.0.0.1.

Set-up. ``--recipients`` (default 20) Italian numbers, one request at a time, the client's retries off
(``max_retries`` 0), and the sandbox answering ``--unknown`` (default 2) of the real sends with a 503
before storing them: each is an unknown outcome that must stay absent from ``GET /messages`` for the
settle window (from evidence: the sandbox lists at once, so the 15 s floor) before it is sent again.

- **in the worker**: ``execute()`` sends, looks the unknown outcomes up every few seconds, resends them
  once due and returns. Slot-seconds = the ``execute()`` call.
- **deferrable**: ``execute()`` sends and raises ``TaskDeferred``; the trigger's ``run()`` looks them up
  in this process as the triggerer would, until they are due; then ``execute_complete()`` looks once
  more and resends. Slot-seconds = the ``execute()`` and ``execute_complete()`` calls only; the
  trigger's wall time is reported apart.

Both use a task state store (a dict), so the ledger outlives the deferral as in a worker. Every
recipient must end with exactly one message in either mode. Target (ours): the deferrable slot time
is at most 1/``--min-ratio`` (default 1/5) of the in-worker one. Exit 1 when missed or on a duplicate.

    python benchmarks/settle_slot.py [--recipients 20] [--unknown 2] [--min-ratio 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_process import italian_mobiles, run_tasks_outside_a_worker, throwaway_airflow_home

throwaway_airflow_home()


class _Store(dict[str, Any]):
    """A task state store: what ``TaskStateLedger`` reads and writes."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


class _TI:
    map_index = -1
    try_number = 1


def _operator(recipients: list[str], deferrable: bool) -> Any:
    from airflow_provider_smsww.operators.smsww import SmsSendOperator

    return SmsSendOperator(
        task_id="send",
        recipients=recipients,
        message="Your order shipped",
        max_concurrency=1,
        deferrable=deferrable,
    )


def one_mode(handle: Any, args: argparse.Namespace, deferrable: bool) -> dict[str, Any]:
    from airflow_provider_smsww.compat import TaskDeferred

    handle.reset()
    recipients = italian_mobiles(args.recipients, start=3_000_000)
    # Dry runs first (one per recipient), then the real sends: the first real ones answer a 503.
    handle.faults.inject(
        *["none"] * args.recipients, *["503"] * args.unknown, path="/WW-messages", method="POST"
    )
    context = {"ti": _TI(), "run_id": f"bench__settle_{deferrable}", "task_state_store": _Store()}
    op = _operator(recipients, deferrable)
    slot = trigger_wall = 0.0
    rounds = 0
    start = time.perf_counter()
    try:
        op.execute(context)
    except TaskDeferred as deferred:
        slot += time.perf_counter() - start
        while True:
            rounds += 1
            t0 = time.perf_counter()
            event = asyncio.run(_first_event(deferred.trigger))
            trigger_wall += time.perf_counter() - t0
            t0 = time.perf_counter()
            try:
                getattr(op, deferred.method_name)(context, event)
            except TaskDeferred as again:
                slot += time.perf_counter() - t0
                deferred = again
                continue
            slot += time.perf_counter() - t0
            break
    else:
        slot = time.perf_counter() - start
    counts = handle.sandbox.per_recipient()
    return {
        "slot_s": round(slot, 3),
        "trigger_wall_s": round(trigger_wall, 3),
        "deferrals": rounds,
        "exactly_once": all(counts[r] == 1 for r in recipients),
    }


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise RuntimeError("the trigger ended without an event")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--unknown", type=int, default=2)
    parser.add_argument("--min-ratio", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    run_tasks_outside_a_worker(verbose=args.verbose)
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox() as handle:
        conn = json.loads(handle.conn_json)
        conn["extra"] = {**conn.get("extra", {}), "max_retries": 0}
        os.environ["AIRFLOW_CONN_SMSWW_DEFAULT"] = json.dumps(conn)
        worker = one_mode(handle, args, deferrable=False)
        deferred = one_mode(handle, args, deferrable=True)
    ratio = worker["slot_s"] / max(deferred["slot_s"], 1e-9)
    ok = ratio >= args.min_ratio and worker["exactly_once"] and deferred["exactly_once"]
    report = {
        "recipients": args.recipients,
        "unknown": args.unknown,
        "in_worker": worker,
        "deferrable": deferred,
        "slot_ratio": round(ratio, 1),
        "target_min_ratio": args.min_ratio,
        "ok": ok,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"settle wait, {args.recipients} recipients, {args.unknown} unknown outcome(s):")
        print(f"  in the worker: {worker['slot_s']} slot-s, exactly once: {worker['exactly_once']}")
        print(
            f"  deferrable:    {deferred['slot_s']} slot-s ({deferred['deferrals']} deferral(s), trigger "
            f"{deferred['trigger_wall_s']} s), exactly once: {deferred['exactly_once']}"
        )
        print(f"  slot ratio {ratio:.1f}x (target >= {args.min_ratio:g}x): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
