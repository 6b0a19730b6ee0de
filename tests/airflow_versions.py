"""What differs between Airflow 3.0-3.3 for the tests themselves (Airflow internals the tests drive:
the metrics backend, the dag bag, import_string); the package's own differences are in
``airflow_provider_smsww.compat``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    "DAG_TEST_GIVES_EXCEPTION",
    "HAS_TASK_STATE_STORE",
    "NoStatsLogger",
    "dag_test_makes",
    "get_dag",
    "import_string",
    "log_level",
    "stats_backend",
    "task_log_lines",
]

#: Deadline alerts (awaiting a notifier in the triggerer) arrived in Airflow 3.1.
needs_deadline_alerts = pytest.mark.skipif(AIRFLOW_VERSION < (3, 1), reason="deadline alerts: Airflow 3.1+")

#: True where Airflow has ``task_state_store`` (3.3): the retry ledger is kept there, else in Variables.
HAS_TASK_STATE_STORE = AIRFLOW_VERSION >= (3, 3)

#: True where ``dag.test()`` hands a failed task's ``on_failure_callback`` the exception (3.3): its
#: in-process task runner leaves ``exception`` out of the context before that (a real task runner, as
#: the scheduler starts it, has always set it).
DAG_TEST_GIVES_EXCEPTION = AIRFLOW_VERSION >= (3, 3)


def dag_test_makes(run_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``dag.test()``, which makes manual runs only, make runs of ``run_type`` instead, by swapping
    the helper it creates its run with (``get_or_create_dagrun``; ``_get_or_create_dagrun`` of
    ``airflow.models.dag`` on Airflow 3.0) for one that sets the run type."""
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    if AIRFLOW_VERSION >= (3, 1):
        from airflow.models import dagrun as module

        name, user_name = "get_or_create_dagrun", True
    else:  # Airflow 3.0: no triggering user name yet
        from airflow.models import dag as module  # type: ignore[no-redef]

        name, user_name = "_get_or_create_dagrun", False
    kind = DagRunType(run_type)

    def create(**kwargs: Any) -> Any:
        from airflow.models.dagrun import DagRun

        run_id = DagRun.generate_run_id(
            run_type=kind, logical_date=kwargs["logical_date"], run_after=kwargs["run_after"]
        )
        extra = {"triggering_user_name": kwargs["triggering_user_name"]} if user_name else {}
        return kwargs["dag"].create_dagrun(
            run_id=run_id,
            logical_date=kwargs["logical_date"],
            data_interval=kwargs["data_interval"],
            run_after=kwargs["run_after"],
            conf=kwargs["conf"],
            run_type=kind,
            state=DagRunState.RUNNING,
            triggered_by=kwargs["triggered_by"],
            start_date=kwargs["start_date"],
            session=kwargs["session"],
            **extra,
        )

    monkeypatch.setattr(module, name, create)


@contextmanager
def stats_backend(factory: Callable[[], Any]) -> Iterator[None]:
    """Airflow's ``Stats`` sent to ``factory()`` for the duration of the block."""
    try:  # Airflow >= 3.2
        from airflow.sdk._shared.observability.metrics import stats
    except ImportError:  # Airflow 3.0, 3.1: a metaclass holding one instance
        from airflow.stats import Stats

        saved_instance = Stats.instance
        Stats.instance = factory()
        try:
            yield
        finally:
            Stats.instance = saved_instance
        return
    saved = (stats._factory, stats._backend, stats._export_legacy_names)
    stats.initialize(factory=factory, export_legacy_names=False)
    try:
        yield
    finally:
        stats._factory, stats._backend, stats._export_legacy_names = saved


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


def get_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` from the DAG bundles, as ``airflow dags test`` gets it."""
    from airflow.utils import cli

    if hasattr(cli, "get_bagged_dag"):  # Airflow >= 3.1
        return cli.get_bagged_dag(bundle_names=None, dag_id=dag_id)
    return cli.get_dag(bundle_names=None, dag_id=dag_id)
