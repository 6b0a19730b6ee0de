"""Run every benchmark with its defaults and print a markdown summary for the README.

Each benchmark runs in its own interpreter (``--json``), one after another (the machine has 2 cores:
running them side by side would measure them against each other). The exit status is non-zero when
any benchmark misses a target or fails, so ``make bench`` checks the claims it prints.

    python benchmarks/run_all.py [--json] [--save FILE]
        [--only bulk_send,ledger_cost,import_cost,sensor_cost,scale,settle_slot,shared_account]

Budget: about 11.5 minutes on 2 cores (bulk send ~2 min, sensor cost ~1 min, scale ~5 min: two
one-text and two personalised batches, settle slot ~0.5 min, ledger cost ~0.5 min, import cost ~0.3 min,
shared account ~3 min). Every target is a
ratio or a count measured in one run (CPU seconds, calls, MB), not an absolute time, so a slower machine
changes the figures but not the verdicts.
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
BENCHMARKS = (
    "import_cost",
    "bulk_send",
    "ledger_cost",
    "sensor_cost",
    "scale",
    "settle_slot",
    "shared_account",
)


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
        t, cpu, lat = bulk["targets"], bulk["cpu"], bulk["latency"]
        for key, label in (("gate_on", "gate on: dry run + send"), ("gate_off", "gate off: send only")):
            r = cpu[key]
            rows.append(
                f"| bulk send ({cpu['recipients']:,}, c={cpu['concurrency']}) | "
                f"client CPU per 1,000 messages, {label}: operator {r['operator_cpu_s_per_1000']} s / "
                f"raw httpx {r['raw_httpx_cpu_s_per_1000']} s "
                f"| {r['ratio']}x (pairs {r.get('ratio_min', '?')}-{r.get('ratio_max', '?')}x) "
                f"| <= {t['cpu_ratio_max']:g}x | {_mark(r['ratio'] <= t['cpu_ratio_max'])} |"
            )
        ms = f"{lat['latency_s'] * 1000:g} ms"
        rows += [
            f"| bulk send ({lat['recipients']:,}, {ms}/request) | "
            f"SmsSendOperator, gate on, c={lat['concurrency']} "
            f"({lat['operator_msgs_per_s']} msg/s) vs HttpOperator sequential, same 2 POSTs/message "
            f"({lat['baseline_msgs_per_s']} msg/s) | {lat['operator_vs_baseline']}x | "
            f">= {t['operator_vs_baseline_min']:g}x | "
            f"{_mark(lat['operator_vs_baseline'] >= t['operator_vs_baseline_min'])} |",
            f"| bulk send ({ms}) | raw httpx, same requests, same concurrency | "
            f"{lat['raw_httpx_msgs_per_s']} msg/s | | |",
            f"| bulk send ({ms}) | operator by max_concurrency: msg/s (client CPU s per 1,000) | "
            + ", ".join(
                f"{k}: {v} ({lat['sweep_cpu_s_per_1000'][k]})" for k, v in lat["sweep_msgs_per_s"].items()
            )
            + " | | |",
            f"| bulk send | each recipient sent exactly once (server's counts) | "
            f"{'yes' if bulk['exactly_once'] else 'no'} | yes | {_mark(bulk['exactly_once'])} |",
        ]
    ledger = reports.get("ledger_cost")
    if ledger:
        instant, slow = ledger["instant"], ledger["slow"]
        rows += [
            f"| ledger ({ledger['recipients']:,} sends, {ledger['latency_s'] * 1000:g} ms/request, "
            f"gate off) | store at {ledger['store_latency_s'] * 1000:g} ms per write "
            f"({slow['msgs_per_s']} msg/s, {slow['writes_per_1000']} writes per 1,000; "
            f"one write per recipient would need >= "
            f"{ledger['one_key_per_recipient_min_s']:g} s) vs instant store ({instant['msgs_per_s']} msg/s, "
            f"{instant['writes_per_1000']} writes) | {ledger['rate_ratio']}x | "
            f">= {ledger['target_rate_ratio_min']:g}x | {_mark(ledger['ok'])} |"
        ]
    scale = reports.get("scale")
    if scale:
        rows += [
            f"| scale ({scale['recipients']:,} recipients, one task, gate on) | peak RSS over the worker's "
            f"baseline ({scale['baseline_rss_mb']} MB); {scale['msgs_per_s']} msg/s at 0 ms | "
            f"{scale['peak_over_baseline_mb']} MB | < {scale['target_mb']:g} MB | "
            f"{_mark(scale['peak_over_baseline_mb'] < scale['target_mb'])} |",
            f"| scale | progress lines in the log (every 5 s), exactly once | "
            f"{scale['progress_lines']} lines, {'yes' if scale['exactly_once'] else 'no'} | >= 1, yes | "
            f"{_mark(scale['exactly_once'] and scale['progress_lines'] >= 1)} |",
        ]
        pers = scale.get("personalised")
        if pers and "peak_over_baseline_mb" in pers:
            ratio, target = scale["throughput_ratio"], scale["target_throughput_ratio"]
            rows += [
                f"| scale ({pers['recipients']:,} personalised entries, one task, gate on) | "
                f"peak RSS over the worker's baseline ({pers['baseline_rss_mb']} MB); "
                f"{pers['msgs_per_s']} msg/s at 0 ms | "
                f"{pers['peak_over_baseline_mb']} MB | < {pers['target_mb']:g} MB | "
                f"{_mark(pers['peak_over_baseline_mb'] < pers['target_mb'])} |",
                f"| scale (personalised) | msg per worker CPU s ({pers['msgs_per_cpu_s']}) over the one-text "
                f"batch's ({scale['msgs_per_cpu_s']}); progress lines, exactly once | "
                f"{ratio}x; {pers['progress_lines']} lines, {'yes' if pers['exactly_once'] else 'no'} | "
                f">= {target:g}x; >= 1, yes | "
                f"{_mark(ratio is not None and ratio >= target and pers['ok'])} |",
            ]
    sensor = reports.get("sensor_cost")
    if sensor:
        n = sensor["messages"]
        for m in sensor["modes"]:
            rows.append(
                f"| sensor ({n:,} messages, {sensor['poke_interval']:g} s interval) | {m['mode']} | "
                f"{m['requests_per_message']} calls/message in all, {m['slot_seconds']} worker-slot s | | |"
            )
        poll = sensor["one_poll"]
        target = sensor["target_calls_per_message_per_poll"]
        rows.append(
            f"| sensor | calls per message per poll ({poll['messages']:,} messages in flight: "
            f"{poll['calls']} calls) | {poll['calls_per_message_per_poll']} | <= {target:g} | "
            f"{_mark(poll['calls_per_message_per_poll'] <= target)} |"
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
    settle = reports.get("settle_slot")
    if settle:
        w, d = settle["in_worker"], settle["deferrable"]
        rows.append(
            f"| settle wait ({settle['recipients']} recipients, {settle['unknown']} unknown outcomes, 15 s "
            f"window) | worker-slot seconds, in the worker ({w['slot_s']} s) / deferrable ({d['slot_s']} s; "
            f"trigger {d['trigger_wall_s']} s), each once: {w['exactly_once'] and d['exactly_once']} | "
            f"{settle['slot_ratio']}x | >= {settle['target_min_ratio']:g}x | {_mark(settle['ok'])} |"
        )
    rows += _shared_account_rows(reports.get("shared_account"))
    return "\n".join(rows)


def _shared_account_rows(shared: dict[str, Any] | None) -> list[str]:
    """The shared account's rows, one per process count: processes of one host (the target), processes
    that share nothing (as on separate hosts) and the per-process pacing of earlier releases."""
    if not shared:
        return []
    rows = []
    thr, thr_target = shared["target_throughput_share"], shared["target_throttled_share"]
    for c in shared["cases"]:
        host, apart, old = c["one_host"], c["apart"], c["per_process"]

        def figures(run: dict[str, Any]) -> str:
            return (
                f"{run['throughput_share']} of the limit, {run['throttled_share']} throttled "
                f"({run['throttled']} of {run['requests']})"
            )

        rows.append(
            f"| shared account ({c['processes']} processes, {host['texts']} texts, "
            f"{shared['rate_limit']:g} req/s) | one host: {figures(host)}; apart (as on separate hosts): "
            f"{figures(apart)}; per-process pacing (earlier releases): {figures(old)}; exactly once: "
            f"{host['exactly_once'] and apart['exactly_once']} | {host['throughput_share']}; "
            f"{host['throttled_share']} | >= {thr:g}; <= {thr_target:g} | {_mark(c['ok'])} |"
        )
    return rows


def machine() -> str:
    """The machine the figures come from: CPU model (``/proc/cpuinfo``) and count (``nproc``)."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{count} x {model} (nproc {count}), Python {sys.version.split()[0]}"


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
    everything = {"machine": machine(), "cpus": os.cpu_count(), "reports": reports, "failed": failed}
    if args.save:
        Path(args.save).write_text(json.dumps(everything, indent=1))
    if args.json:
        print(json.dumps(everything))
    else:
        print(f"Benchmarks on {machine()}:\n")
        print(table(reports))
        print()
        print("all targets met" if not failed else "MISSED OR FAILED: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
