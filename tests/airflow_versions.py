"""What differs between Airflow 3.0-3.3 for the tests themselves (Airflow internals the tests drive:
the metrics backend, the dag bag, import_string); the package's own differences are in
``airflow_provider_smsww.compat``."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_smsww.compat import AIRFLOW_VERSION

try:  # Airflow >= 3.2
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
except ImportError:  # Airflow 3.0, 3.1
    from airflow.metrics.base_stats_logger import NoStatsLogger  # type: ignore[no-redef]

try:  # Airflow >= 3.2
    from airflow._shared.module_loading import import_string
except ImportError:  # Airflow 3.0, 3.1
    from airflow.utils.module_loading import import_string  # type: ignore[no-redef]

__all__ = [
    "AIRFLOW_COMMAND",
    "DAG_TEST_CALLBACKS_GET_THE_EXCEPTION",
    "HAS_TASK_STATE_STORE",
    "NoStatsLogger",
    "get_dag",
    "import_string",
    "log_level",
    "make_dag_test_runs",
    "needs_deadline_alerts",
    "plain",
    "reuse_the_in_process_execution_api",
    "stats_backend",
    "task_log_lines",
]

#: Deadline alerts (awaiting a notifier in the triggerer) arrived in Airflow 3.1.
needs_deadline_alerts = pytest.mark.skipif(AIRFLOW_VERSION < (3, 1), reason="deadline alerts: Airflow 3.1+")

#: ``dag.test()`` hands task callbacks the task's exception from Airflow 3.3 on (a worker always did).
DAG_TEST_CALLBACKS_GET_THE_EXCEPTION = AIRFLOW_VERSION >= (3, 3)

#: True where Airflow has ``task_state_store`` (3.3): the retry ledger is kept there, else in Variables.
HAS_TASK_STATE_STORE = AIRFLOW_VERSION >= (3, 3)


@contextmanager
def stats_backend(factory: Callable[[], Any]) -> Iterator[None]:
    """Airflow's ``Stats`` sent to ``factory()`` for the duration of the block."""
    try:  # Airflow >= 3.2
        from airflow.sdk._shared.observability.metrics import stats
    except ImportError:  # Airflow 3.0, 3.1
        stats = None
    if stats is None or not hasattr(stats, "_factory"):  # Airflow 3.0-3.2: a metaclass holding one instance
        from airflow_provider_smsww.compat import stats as airflow_stats

        meta = airflow_stats()
        # Airflow 3.1 and 3.2 also keep the pid that made the instance, and make it again in another.
        keeps_pid = hasattr(type(meta), "_instance_pid")
        saved = (meta.instance, meta._instance_pid if keeps_pid else None)
        meta.instance = factory()
        if keeps_pid:
            meta._instance_pid = os.getpid()
        try:
            yield
        finally:
            meta.instance = saved[0]
            if keeps_pid:
                meta._instance_pid = saved[1]
        return
    saved = (stats._factory, stats._backend, stats._export_legacy_names)
    stats.initialize(factory=factory, export_legacy_names=False)
    try:
        yield
    finally:
        stats._factory, stats._backend, stats._export_legacy_names = saved


#: ``airflow`` for the tests' subprocesses: the console script's ``main`` with
#: ``reuse_the_in_process_execution_api`` applied (tests/airflow_cli.py).
AIRFLOW_COMMAND = (sys.executable, str(Path(__file__).with_name("airflow_cli.py")))


def reuse_the_in_process_execution_api() -> None:
    """``dag.test()`` answers each task's calls with an Execution API app run in-process. Airflow 3.3 builds
    that app once per process (``functools.lru_cache`` on ``supervisor.in_process_api_server``); 3.0-3.2
    build it again for every task, 3-6 s of CPU each (Cadwyn generating its versioned routes), which made
    the tests on 3.2 twice as slow as on 3.3. The tests give every release 3.3's behaviour: the same app,
    answering the same calls, made once. Idempotent."""
    from airflow.sdk.execution_time import supervisor

    if not hasattr(supervisor.in_process_api_server, "cache_info"):  # Airflow 3.0-3.2
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


def plain(text: str) -> str:
    """``text`` without terminal colours: Airflow 3.0 prints a task's exception in colour (rich)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def log_level(line: str) -> str:
    """The level of a log line as the task log prints it: ``[info     ]`` (Airflow >= 3.1's structlog)
    or ``{file.py:12} INFO -`` (Airflow 3.0's stdlib format)."""
    match = re.search(r"^\S*\s*\[(\w+)\s*\]|\} (\w+) - ", line)
    assert match, f"not a log line: {line!r}"
    return (match.group(1) or match.group(2)).lower()


def task_log_lines(capsys: Any, caplog: Any) -> list[str]:
    """What a task logged outside a task runner, in order: Airflow >= 3.1 prints it to stdout
    (structlog), Airflow 3.0 hands it to the stdlib loggers, which ``caplog`` keeps."""
    printed = capsys.readouterr().out.splitlines()
    return printed if AIRFLOW_VERSION >= (3, 1) else [f"{r.name} {r.getMessage()}" for r in caplog.records]


def make_dag_test_runs(
    run_type: str,
    setattr: Callable[[Any, str, Any], None],
    *,
    logical_date: bool = True,
    then: Callable[[Any, Any, Any], None] | None = None,
) -> None:
    """Make ``dag.test()``, which makes manual runs only, create its run with ``run_type`` instead, by
    swapping the helper it calls for one (``get_or_create_dagrun``; ``_get_or_create_dagrun`` in the
    dag module on Airflow 3.0).

    :param run_type: a ``DagRunType`` value, e.g. ``"scheduled"`` or ``"asset_triggered"``.
    :param setattr: how to swap it: ``monkeypatch.setattr`` in a test, ``setattr`` in a script.
    :param logical_date: False for a run with no logical date (and so no data interval).
    :param then: called with (run, session, dag) once the run exists, e.g. to attach asset events.
    """
    from airflow.models import dagrun as dagrun_module
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    kind = DagRunType(run_type)

    def create(**kwargs: Any) -> Any:
        date = kwargs["logical_date"] if logical_date else None
        optional = {k: kwargs[k] for k in ("triggering_user_name",) if k in kwargs}  # Airflow >= 3.1
        run = kwargs["dag"].create_dagrun(
            run_id=dagrun_module.DagRun.generate_run_id(
                run_type=kind, logical_date=date, run_after=kwargs["run_after"]
            ),
            logical_date=date,
            data_interval=kwargs["data_interval"] if logical_date else None,
            run_after=kwargs["run_after"],
            conf=kwargs["conf"],
            run_type=kind,
            state=DagRunState.RUNNING,
            triggered_by=kwargs["triggered_by"],
            start_date=kwargs["start_date"],
            session=kwargs["session"],
            **optional,
        )
        if then is not None:
            then(run, kwargs["session"], kwargs["dag"])
        return run

    if hasattr(dagrun_module, "get_or_create_dagrun"):  # Airflow >= 3.1
        setattr(dagrun_module, "get_or_create_dagrun", create)
    else:
        from airflow.models import dag as dag_module

        setattr(dag_module, "_get_or_create_dagrun", create)


def get_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` from the DAG bundles, as ``airflow dags test`` gets it."""
    from airflow.utils import cli

    if hasattr(cli, "get_bagged_dag"):  # Airflow >= 3.1
        return cli.get_bagged_dag(bundle_names=None, dag_id=dag_id)
    return cli.get_dag(bundle_names=None, dag_id=dag_id)
