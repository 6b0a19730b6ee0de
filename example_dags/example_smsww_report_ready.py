"""
### Report-availability notice

When the daily report is built, text the people who read it, then wait until every SMS is delivered.

- `build_report` stands in for the real work and returns the report's URL.
- `notify_readers` (**SmsSendOperator**) checks the numbers and the text locally, prices every message
  with a free dry run, and sends only if all pass and the whole batch fits in `max_total_price`.
  `fail_on_multiple_messages` keeps each notice to one SMS part. A retry never texts a reader twice.
- `wait_for_delivery` (**SmsDeliverySensor**, deferrable) waits in the triggerer, not in a worker slot,
  and fails with the message id, number and state of any SMS that cannot be delivered.

Set up the `smsww_default` connection (a token in the password field) or run `make demo`, which runs
this DAG against the embedded sandbox. Change the `recipients` param to your readers' numbers (E.164).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

# The demo shortens the wait between delivery checks; in production a minute is plenty.
POLL_SECONDS = float(os.environ.get("SMSWW_EXAMPLE_POLL_SECONDS", "60"))

with DAG(
    dag_id="example_smsww_report_ready",
    description="Text readers when the daily report is ready, then wait for delivery",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "recipients": Param(["+393331234567", "+447400123456"], type="array", items={"type": "string"}),
        "sender": Param("Reports", type="string", minLength=3, maxLength=11),
    },
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:

    @task
    def build_report(dag_run: Any = None) -> str:
        """Stands in for the job that builds the report; returns where readers find it."""
        # Runs triggered from the UI, the REST API or the CLI have no logical date in Airflow 3 (`ds` is
        # undefined there): the report's day is the logical date when there is one, else run_after.
        day = (dag_run.logical_date or dag_run.run_after).date().isoformat()
        return f"https://reports.example.com/daily/{day}"

    report_url = build_report()

    notify_readers = SmsSendOperator(
        task_id="notify_readers",
        recipients="{{ params.recipients }}",
        sender="{{ params.sender }}",
        # Not `{{ ds }}`: it is undefined in runs without a logical date (every REST, CLI or UI trigger).
        message="Your daily report for {{ (dag_run.logical_date or dag_run.run_after) | ds }} is ready: "
        "{{ ti.xcom_pull(task_ids='build_report') }}",
        fail_on_multiple_messages=True,
        max_total_price=5.0,
        price_per_part_if_unknown=0.10,
        retries=3,
        retry_delay=timedelta(seconds=10),
    )

    wait_for_delivery = SmsDeliverySensor(
        task_id="wait_for_delivery",
        message_ids=notify_readers.output,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=2).total_seconds(),
    )

    report_url >> notify_readers >> wait_for_delivery
