"""One account's rate limit, shared by every process that sends through it: N OS processes, each calling
``SmsWwHook.send_many`` with the connection's ``rate_limit`` set to the account's, against one sandbox
on 127.0.0.1 that enforces that limit (a token bucket, 429 with ``Retry-After`` beyond it).

Compared in one run, for 4 and 8 processes:

- ``per_process``: the pacing of earlier releases, the baseline (each process sends at ``rate_limit`` on
  its own, whatever the gateway answers);
- ``apart``: the adaptive rate alone, as processes on separate hosts have it (each process its own
  temporary directory, so no schedule is shared: ``airflow_provider_smsww._http.adaptive``);
- ``one_host``: processes on one host, as they run (a LocalExecutor, a Celery worker's task processes):
  they share the schedule and the adaptive rate (``airflow_provider_smsww._http.pace``).

Measured at the sandbox:

- **throughput share**: accepted messages over the seconds from the first stored to the last, as a
  share of the limit (target >= 0.9);
- **throttled share**: requests answered 429 over all send requests (target <= 0.05);
- every text stored exactly once (each process sends to its own recipients).

The processes import the hook, say they are ready, and start sending together when all are (their
start-up, an Airflow import each, is not measured). Exit 1 when ``one_host`` misses a target; ``apart``
is reported (README, Benchmarks).

    python benchmarks/shared_account.py [--processes 4,8] [--seconds 25] [--rate-limit 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_process import SandboxProcess, italian_mobiles, throwaway_airflow_home

TARGET_THROUGHPUT_SHARE = 0.9
TARGET_THROTTLED_SHARE = 0.05
SEND_ROUTE = "POST /WW-messages"


class FixedRate:
    """The per-process pacing of earlier releases, for the baseline: ``rate_limit`` whatever the gateway
    answers (the interface of ``AdaptiveRate``).

    :param rate_limit: requests per second.
    """

    def __init__(self, rate_limit: float) -> None:
        self.rate_limit = rate_limit
        self.state: Any = None  # the limiter sets it; a fixed rate keeps nothing

    def rate(self, now: float) -> float:
        return self.rate_limit

    def accepted(self, now: float) -> None:
        pass

    def throttled(self, now: float, climb_from: float) -> None:
        pass


MODES = ("per_process", "apart", "one_host")


def child(conn_json: str, recipients: list[str], mode: str) -> None:
    """One process: the hook on the connection, ready, then one ``send_many`` when told to go.

    :param conn_json: the connection (the sandbox, its token, ``rate_limit``).
    :param recipients: this process's recipients, one text each.
    :param mode: one of :data:`MODES` (the module docstring).
    """
    os.environ["AIRFLOW_CONN_SMSWW_DEFAULT"] = conn_json
    throwaway_airflow_home()
    if mode != "one_host":  # a temporary directory of its own: nothing shared, as on a host of its own
        tempfile.tempdir = tempfile.mkdtemp(prefix="smsww-bench-host-")
    if mode == "per_process":
        from airflow_provider_smsww._http import ratelimit

        ratelimit.AdaptiveRate = FixedRate  # type: ignore[misc,assignment]
    from airflow_provider_smsww.hooks.smsww import SmsWwHook

    messages = [{"recipient": r, "message": "Your order shipped"} for r in recipients]
    with SmsWwHook() as hook:
        print("ready", flush=True)
        sys.stdin.readline()
        results = hook.send_many(messages)
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, Exception)]
    print(json.dumps({"sent": len(results) - len(errors), "errors": errors[:5]}), flush=True)


def measure(processes: int, texts: int, rate_limit: float, mode: str) -> dict[str, Any]:
    """Run ``processes`` processes of ``texts`` texts each against a fresh sandbox; the figures.

    :param processes: how many OS processes send.
    :param texts: texts per process.
    :param rate_limit: the account's limit, enforced by the sandbox and set as the connection's.
    :param mode: one of :data:`MODES`.
    """
    with SandboxProcess(rate_limit=rate_limit) as box:
        extra = {"rate_limit": rate_limit}
        conn = json.dumps({"conn_type": "smsww", "host": box.url, "password": box.token, "extra": extra})
        workers = [
            _start_child(conn, italian_mobiles(texts, 1_000_000 + i * 100_000), mode)
            for i in range(processes)
        ]
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError("a sending process did not start")
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [_finish_child(worker) for worker in workers]
        wall = time.perf_counter() - started
        stats = box.call("stats")
    return _figures(stats, processes, texts, rate_limit, reports, wall)


def _start_child(conn_json: str, recipients: list[str], mode: str) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "--child", conn_json, json.dumps(recipients), mode]
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _finish_child(worker: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = worker.communicate(timeout=300)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if worker.returncode != 0 or not lines:
        raise RuntimeError(f"a sending process failed (exit {worker.returncode})")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _figures(
    stats: dict[str, Any],
    processes: int,
    texts: int,
    rate_limit: float,
    reports: list[dict[str, Any]],
    wall: float,
) -> dict[str, Any]:
    """The case's figures from the sandbox's stats and the processes' reports.

    :param stats: the sandbox's ``stats`` answer.
    :param reports: each process's ``{"sent", "errors"}``.
    :param wall: seconds from "go" to the last process's end.
    """
    sends = {k: v for k, v in stats["requests"].items() if k.startswith(SEND_ROUTE)}
    requests = sum(sends.values())
    throttled = sends.get(f"{SEND_ROUTE} 429", 0)
    stored, span = stats["accepted"], stats["stored_span"]
    return {
        "processes": processes,
        "texts": processes * texts,
        "stored": stored,
        "exactly_once": stored == processes * texts and stats["duplicates"] == 0,
        "errors": [e for r in reports for e in r["errors"]][:5],
        "requests": requests,
        "throttled": throttled,
        "throttled_share": round(throttled / requests, 4) if requests else 0.0,
        "stored_span_s": round(span, 2),
        "throughput_share": round((stored - 1) / span / rate_limit, 4) if span > 0 else 0.0,
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="4,8", help="comma-separated process counts")
    parser.add_argument("--seconds", type=float, default=25.0, help="each case's texts last this long")
    parser.add_argument("--rate-limit", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = []
    for processes in (int(p) for p in args.processes.split(",")):
        texts = round(args.seconds * args.rate_limit / processes)
        runs = {mode: measure(processes, texts, args.rate_limit, mode) for mode in MODES}
        cases.append({"processes": processes, **runs, "ok": meets_targets(runs["one_host"])})
    report = {
        "rate_limit": args.rate_limit,
        "target_throughput_share": TARGET_THROUGHPUT_SHARE,
        "target_throttled_share": TARGET_THROTTLED_SHARE,
        "cases": cases,
        "ok": all(c["ok"] for c in cases),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for c in cases:
            print(
                f"{c['processes']} processes: "
                + "; ".join(
                    f"{mode} throughput {c[mode]['throughput_share']}, throttled {c[mode]['throttled_share']}"
                    f", exactly once {c[mode]['exactly_once']}"
                    for mode in MODES
                )
            )
    return 0 if report["ok"] else 1


def meets_targets(case: dict[str, Any]) -> bool:
    """Whether one run meets the issue's targets: the throughput, the throttled share, exactly once."""
    return (
        case["throughput_share"] >= TARGET_THROUGHPUT_SHARE
        and case["throttled_share"] <= TARGET_THROTTLED_SHARE
        and case["exactly_once"]
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], json.loads(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    sys.exit(main())
