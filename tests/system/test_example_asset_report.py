"""System test of the Asset-scheduled example (example_smsww_report_available.py), end to end.

The producer runs as ``airflow dags test`` and updates the report asset with the URL in the event's
extra; the consumer then runs as the scheduler starts it after that update (an asset-triggered run with
no logical date that consumed the event, ``run_asset_triggered.py``), and also with no asset event at
all, as a REST, CLI or UI trigger starts it. The sandbox's records are the judge.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))

from demo import BIN, airflow_home, run_example_dag

from tests.airflow_versions import AIRFLOW_COMMAND

# One worker runs both tests: the module's set-up (`airflow dags reserialize`) is a whole Airflow process.
pytestmark = [pytest.mark.system, pytest.mark.integration, pytest.mark.xdist_group("example_asset_report")]
HERE = Path(__file__).parent
READERS = ["+393331234567", "+447400123456"]


@pytest.fixture(scope="module")
def env_and_sandbox() -> Iterator[tuple[dict[str, str], Any]]:
    from airflow_provider_smsww.sandbox.server import run_sandbox

    with run_sandbox() as server, airflow_home(server.conn_json) as env:
        # As a dag processor would: Airflow 3.0's `dags test` refuses a task whose outlet asset no
        # dag processor has registered (AirflowInactiveAssetInInletOrOutletException).
        subprocess.run(
            [str(BIN / "airflow"), "dags", "reserialize"], env=env, check=True, capture_output=True
        )
        yield env, server


def run_consumer(env: dict[str, str], *flags: str) -> str:
    dag_id = "example_smsww_report_available"
    log_path = Path(env["AIRFLOW_HOME"]) / f"{dag_id}{''.join(flags)}.log"
    with log_path.open("w") as out:
        proc = subprocess.run(
            [str(BIN / "python"), str(HERE / "run_asset_triggered.py"), dag_id, *flags],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    log = log_path.read_text()
    assert proc.returncode == 0, log[-3000:]
    return log


def texts(sandbox: Any) -> dict[str, str]:
    return {m.recipient.e164: m.text for m in sandbox.accepted()}


def test_an_asset_update_texts_the_readers_the_link_from_the_event(env_and_sandbox: Any) -> None:
    env, server = env_and_sandbox
    server.reset()
    published = run_example_dag(
        "example_smsww_report_publish", env, server.sandbox, Path(env["AIRFLOW_HOME"]), AIRFLOW_COMMAND
    )
    assert published.returncode == 0, published.log_path.read_text()[-3000:]

    log = run_consumer(env)
    assert "run_type=asset_triggered logical_date=None state=success" in log.splitlines()[-1]
    sent = texts(server.sandbox)
    assert sorted(sent) == READERS
    (text,) = set(sent.values())
    assert text.startswith("Your daily report is ready: https://reports.example.com/daily/20")
    assert not text.endswith("/latest")


def test_a_run_without_an_asset_event_or_a_logical_date_still_texts(env_and_sandbox: Any) -> None:
    env, server = env_and_sandbox
    server.reset()
    log = run_consumer(env, "--manual")
    assert "run_type=manual logical_date=None state=success" in log.splitlines()[-1]
    assert set(texts(server.sandbox).values()) == {
        "Your daily report is ready: https://reports.example.com/daily/latest"
    }
