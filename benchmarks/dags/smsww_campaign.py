"""The campaign benchmark's DAG (``benchmarks/campaign.py``): an audience in mapped batches, then a
deferrable delivery sensor per batch, as docs/campaigns.md lays a campaign out.

The run's conf sets the audience size and the batch size (``{"recipients": N, "batch_size": B}``), so one
parsed DAG serves every run; the numbers are +39 333 4000000 on, clear of the sandbox's magic numbers.
The sends share the ``smsww_gateway`` pool (the benchmark sizes it); the sensors poll every
``SMSWW_CAMPAIGN_POLL_SECONDS`` (read when the DAG is parsed) in the triggerer.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

DAG_ID = "smsww_campaign"
FIRST_NUMBER = 4_000_000
POLL_SECONDS = float(os.environ.get("SMSWW_CAMPAIGN_POLL_SECONDS", "10"))


def audience(n: int) -> list[str]:
    """The campaign's ``n`` recipients (the benchmark judges the sandbox's records against the same list)."""
    return [f"+39333{FIRST_NUMBER + i:07d}" for i in range(n)]


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["smsww", "benchmark"],
) as dag:

    @task
    def batches(dag_run: Any = None) -> list[list[str]]:
        conf = dag_run.conf if dag_run is not None else {}
        numbers, size = audience(int(conf["recipients"])), int(conf["batch_size"])
        return [numbers[i : i + size] for i in range(0, len(numbers), size)]

    send = SmsSendOperator.partial(
        task_id="send_batch",
        message="Spring sale: 20% off everything until Sunday.",
        fail_on_multiple_messages=True,
        pool="smsww_gateway",
        retries=3,
        retry_delay=timedelta(seconds=5),
    ).expand(recipients=batches())

    SmsDeliverySensor.partial(
        task_id="wait_delivered",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=3 * 3600,
    ).expand(message_ids=send.output)
