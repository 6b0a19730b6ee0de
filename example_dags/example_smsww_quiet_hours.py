"""
### Appointment reminders within quiet hours

Text tomorrow's appointment reminders to customers in several countries, each only between 08:00
and 20:00 of the customer's own local time.

- `remind` (**SmsSendOperator** with `send_window`) prices and checks the whole batch first, texts at
  once the customers whose local time is inside the window, then **defers** (no worker slot held)
  until the next customer's window opens, and sends those then. Nobody is texted twice, across the
  rounds and Airflow's retries.
- `wait_for_delivery` (**SmsDeliverySensor**, deferrable) waits until every reminder is delivered.

A number listed in several time zones is texted only during the hours all of them share; a number
with no time zone is refused before anything is sent (`send_window_default_tz` gives one).
`SMSWW_EXAMPLE_SEND_WINDOW` (`HH:MM:SS-HH:MM:SS`) overrides the window, as the tests do.
"""

from __future__ import annotations

import os
from datetime import datetime, time, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

POLL_SECONDS = float(os.environ.get("SMSWW_EXAMPLE_POLL_SECONDS", "60"))
OPENS, CLOSES = (
    time.fromisoformat(t) for t in os.environ.get("SMSWW_EXAMPLE_SEND_WINDOW", "08:00-20:00").split("-")
)

with DAG(
    dag_id="example_smsww_quiet_hours",
    description="Appointment reminders, each texted within 08:00-20:00 of the customer's local time",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "customers": Param(["+393331234567", "+12125551234"], type="array", items={"type": "string"}),
    },
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:
    remind = SmsSendOperator(
        task_id="remind",
        recipients="{{ params.customers }}",
        sender="Clinic",
        message="Reminder: your appointment is tomorrow. Reply STOP to opt out.",
        send_window=(OPENS, CLOSES),
        fail_on_multiple_messages=True,
        max_total_price=2.0,
        price_per_part_if_unknown=0.10,
        retries=3,
        retry_delay=timedelta(seconds=10),
    )

    SmsDeliverySensor(
        task_id="wait_for_delivery",
        message_ids=remind.output,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=26).total_seconds(),
    )
