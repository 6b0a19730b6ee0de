"""Run every benchmark with its defaults and print a markdown summary for the README.

Each benchmark runs in its own interpreter (``--json``), one after another (the machine has 2 cores:
running them side by side would measure them against each other). The exit status is non-zero when
any benchmark misses a target or fails, so ``make bench`` checks the claims it prints.

    python benchmarks/run_all.py [--json] [--save FILE] [--only bulk_send,import_cost,sensor_cost]

Budget: about 3.5 minutes on 2 cores (bulk send ~2 min, sensor cost ~1 min, import cost ~0.4 min).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("import_cost", "bulk_send", "sensor_cost")


def run(name: str) -> tuple[int, dict[str, Any] | None, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), "--json"], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    report = None
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            report = json.loads(line)
            break
    if report is None:
        sys.stderr.write(proc.stderr[-4000:])
    return proc.returncode, report, elapsed


def _mark(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def table(reports: dict[str, dict[str, Any]]) -> str:
    rows = ["| benchmark | what | result | target | met |", "| --- | --- | --- | --- | --- |"]
    imp = reports.get("import_cost")
    if imp:
        sdk = imp["sdk"]
        rows.append(
            f"| import cost | added to `import airflow.sdk` ({sdk['reference_ms']:.0f} ms) by the operator, "
            f"sensor and notifier modules | {sdk['added_ms']} ms | < {imp['budget_ms']:g} ms | "
            f"{_mark(sdk['added_ms'] < imp['budget_ms'])} |"
        )
        heavy = ", ".join(imp["heavy_loaded"] + imp["clients_created"]) or "none"
        rows.append(
            f"| import cost | heavy modules / httpx clients at import | {heavy} | none | "
            f"{_mark(heavy == 'none')} |"
        )
    bulk = reports.get("bulk_send")
    if bulk:
        lat, n, c = bulk["latency"], bulk["recipients"], bulk["concurrency"]
        t = bulk["targets"]
        ms = f"{lat['latency_s'] * 1000:g} ms"
        rows += [
            f"| bulk send ({n:,}, {ms}/request) | SmsSendOperator, gate on, c={c} | "
            f"{lat['operator_msgs_per_s']} msg/s | | |",
            f"| bulk send ({ms}) | vs HttpOperator, sequential, same 2 POSTs/message "
            f"({lat['baseline_msgs_per_s']} msg/s) | {lat['operator_vs_baseline']}x | >= {t['operator_vs_baseline_min']:g}x | "
            f"{_mark(lat['operator_vs_baseline'] >= t['operator_vs_baseline_min'])} |",
            f"| bulk send ({ms}) | raw httpx ceiling, same work ({lat['ceiling_same_work_msgs_per_s']} msg/s) "
            f"/ operator | {lat['ceiling_same_work_over_operator']}x | <= {t['ceiling_over_operator_max']:g}x | "
            f"{_mark(lat['ceiling_same_work_over_operator'] <= t['ceiling_over_operator_max'])} |",
            f"| bulk send ({ms}) | raw httpx ceiling, sends only, no gate ({lat['ceiling_send_only_msgs_per_s']} "
            f"msg/s) / operator | {lat['ceiling_send_only_over_operator']}x | (cost of the gate) | |",
            f"| bulk send ({ms}) | operator msg/s by max_concurrency | "
            + ", ".join(f"{k}: {v}" for k, v in lat["sweep_msgs_per_s"].items())
            + " | | |",
        ]
        loop = bulk.get("loopback")
        if loop:
            rows += [
                f"| bulk send (0 ms, pure loopback) | operator {loop['operator_msgs_per_s']} msg/s vs HttpOperator "
                f"sequential ({loop['baseline_msgs_per_s']} msg/s) | {loop['operator_vs_baseline']}x | "
                "(none: CPU-bound) | |",
                f"| bulk send (0 ms) | raw httpx ceiling, same work ({loop['ceiling_same_work_msgs_per_s']} msg/s) "
                f"/ operator | {loop['ceiling_same_work_over_operator']}x | <= {t['ceiling_over_operator_max']:g}x | "
                f"{_mark(loop['ceiling_same_work_over_operator'] <= t['ceiling_over_operator_max'])} |",
            ]
        rows.append(
            f"| bulk send | each recipient sent exactly once (sandbox records) | "
            f"{'yes' if bulk['exactly_once'] else 'no'} | yes | {_mark(bulk['exactly_once'])} |"
        )
    sensor = reports.get("sensor_cost")
    if sensor:
        n = sensor["messages"]
        for m in sensor["modes"]:
            rows.append(
                f"| sensor ({n:,} messages, {sensor['poke_interval']:g} s interval) | {m['mode']} | "
                f"{m['requests_per_message']} GETs/message, {m['slot_seconds']} worker-slot s | | |"
            )
        r = sensor["ratios"]
        rows.append(
            f"| sensor | worker-slot seconds, poke / deferrable | {r['slot_poke_over_deferrable']}x | "
            f">= {sensor['min_slot_ratio']:g}x | {_mark(not any('slot' in x for x in sensor['misses']))} |"
        )
        rt = sensor["round_times"]
        rows.append(
            f"| sensor | one read round of {rt['ids']:,} ids at {rt['latency_s'] * 1000:g} ms/request: poke "
            f"vs trigger ({rt['trigger_concurrency']} in flight each) | {rt['poke_round_s']} s vs "
            f"{rt['trigger_round_s']} s | | |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--save", metavar="FILE", help="also write every report (JSON) to FILE")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    reports: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name in names:
        sys.stderr.write(f"running {name}...\n")
        code, report, elapsed = run(name)
        sys.stderr.write(f"  {name}: exit {code} in {elapsed:.0f} s\n")
        if report is not None:
            report["elapsed_s"] = round(elapsed, 1)
            reports[name] = report
        if code != 0 or report is None:
            failed.append(f"{name} (exit {code})")
    everything = {"cpus": os.cpu_count(), "reports": reports, "failed": failed}
    if args.save:
        Path(args.save).write_text(json.dumps(everything, indent=1))
    if args.json:
        print(json.dumps(everything))
    else:
        print(f"Benchmarks on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}:\n")
        print(table(reports))
        print()
        print("all targets met" if not failed else "MISSED OR FAILED: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
