"""The README's main command (``make demo``): example DAG 1 end to end against the embedded sandbox.

It starts the sandbox on loopback, makes a throw-away ``AIRFLOW_HOME`` (sqlite) whose ``smsww_default``
connection points at it, runs ``airflow dags test example_smsww_report_ready`` in a subprocess (a real
Airflow run: scheduler loop, task runner, triggerer for the deferrable sensor), and prints what the
sandbox saw: each message's final state and cost. No account, no cost, no traffic off this machine.

Also used by the system tests to run every example DAG the same way (:func:`run_example_dag`).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
BIN = Path(sys.executable).parent
MAIN_DAG = "example_smsww_report_ready"


@dataclass
class DagRunResult:
    dag_id: str
    returncode: int
    log_path: Path
    messages: list[Any]


@contextmanager
def airflow_home(conn_json: str) -> Iterator[dict[str, str]]:
    """Environment for a throw-away Airflow: sqlite in a temp dir, the example DAGs, the connection."""
    with tempfile.TemporaryDirectory(prefix="smsww-demo-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_SMSWW_DEFAULT": conn_json,
            "SMSWW_EXAMPLE_POLL_SECONDS": "1",
        }
        migrated_database(Path(home))
        yield env


def migrated_database(home: Path) -> Path:
    """Put a migrated sqlite metadata database at ``home/airflow.db``: a copy of one migrated once per
    venv and Airflow release (``airflow db migrate`` takes 8-25 s; a copy, milliseconds). Processes
    running side by side (pytest-xdist workers) share the one migration under a file lock.

    :param home: the ``AIRFLOW_HOME`` whose default sqlite database this is.
    """
    cache = Path(sys.prefix) / "smsww-migrated-db"
    cache.mkdir(exist_ok=True)
    template = cache / f"airflow-{version('apache-airflow')}.db"
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            _migrate_into(template)
    target = home / "airflow.db"
    shutil.copyfile(template, target)
    return target


def _migrate_into(template: Path) -> None:
    """``airflow db migrate`` on a scratch home, its database then moved to ``template`` in one step."""
    with tempfile.TemporaryDirectory(prefix="smsww-migrate-") as scratch:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AIRFLOW__DATABASE__") and key != "AIRFLOW_HOME"
        }
        env.update(AIRFLOW_HOME=scratch, AIRFLOW__CORE__LOAD_EXAMPLES="False")
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        partial = template.with_suffix(".partial")
        shutil.copyfile(Path(scratch) / "airflow.db", partial)
        partial.replace(template)


def run_example_dag(
    dag_id: str, env: dict[str, str], sandbox: Any, log_dir: Path, airflow: Sequence[str] = ()
) -> DagRunResult:
    """``airflow dags test <dag_id>``, its output kept in a log file; the sandbox's messages after it.

    :param airflow: the command that runs ``airflow``: the venv's by default (the tests pass theirs).
    """
    log_path = log_dir / f"{dag_id}.log"
    before = {m.id for m in sandbox.messages.values()} if hasattr(sandbox.messages, "values") else set()
    with log_path.open("w") as out:
        proc = subprocess.run(
            [*(airflow or [str(BIN / "airflow")]), "dags", "test", dag_id],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    messages = [m for m in _all_messages(sandbox) if m.id not in before]
    return DagRunResult(dag_id, proc.returncode, log_path, messages)


def _all_messages(sandbox: Any) -> list[Any]:
    messages = sandbox.messages
    return list(messages.values()) if hasattr(messages, "values") else list(messages)


def print_report(result: DagRunResult, sandbox: Any) -> None:
    print(f"\nairflow dags test {result.dag_id}: exit code {result.returncode} (log: {result.log_path})")
    print(f"{'message id':26} {'recipient':15} {'state':13} {'parts':>5} {'cost EUR':>9}")
    total = 0.0
    for view in (sandbox.view(m) for m in result.messages):
        total += float(view["totalPrice"])
        print(
            f"{view['id']:26} {view['recipient']:15} {view['state']:13} "
            f"{view['messageCount']:>5} {float(view['totalPrice']):>9.4f}"
        )
    print(
        f"{len(result.messages)} message(s), total cost {total:.4f} EUR "
        f"(sandbox credit left: {sandbox.credit:.2f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dag_id", nargs="?", default=MAIN_DAG, help=f"example DAG to run (default {MAIN_DAG})"
    )
    parser.add_argument("--keep-log", action="store_true", help="print the whole Airflow log")
    args = parser.parse_args(argv)

    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox() as server, airflow_home(server.conn_json) as env:
        print(f"Sandbox on {server.url}; temporary AIRFLOW_HOME {env['AIRFLOW_HOME']}")
        print(f"Running: airflow dags test {args.dag_id} ...", flush=True)
        # The log outlives the temporary AIRFLOW_HOME, so that the path printed below can be opened.
        log_dir = Path(tempfile.gettempdir()) / "smsww-demo-logs"
        log_dir.mkdir(exist_ok=True)
        result = run_example_dag(args.dag_id, env, server.sandbox, log_dir)
        log_text = result.log_path.read_text()
        if args.keep_log or result.returncode != 0:
            print(log_text if args.keep_log else "\n".join(log_text.splitlines()[-60:]))
        print_report(result, server.sandbox)
        delivered = all(server.sandbox.view(m)["state"] == "DELIVERED" for m in result.messages)
        ok = result.returncode == 0 and bool(result.messages) and delivered
        print("DEMO OK: every message DELIVERED" if ok else "DEMO FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
