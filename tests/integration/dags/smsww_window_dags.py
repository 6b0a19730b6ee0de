"""DAGs of the tests that wait: quiet hours, and a deferred settle wait.

Quiet hours: a send window opening in New York ``OPENS_IN`` after the file is parsed and lasting 7 hours, so
already open in Rome (5 or 6 hours ahead) whatever the date. The test reloads this module right before its
run, so the window is relative to the run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import DAG

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

ROME, NEW_YORK = "+393331234567", "+12125551234"
OPENS_IN = timedelta(seconds=20)
PARSED_AT = datetime.now(ZoneInfo("America/New_York"))

with DAG(
    dag_id="smsww_it_send_window", schedule=None, start_date=datetime(2025, 1, 1), catchup=False
) as dag_window:
    send = SmsSendOperator(
        task_id="send",
        recipients=[ROME, NEW_YORK],
        message="Your order shipped",
        send_window=(
            (PARSED_AT + OPENS_IN).time().replace(microsecond=0),
            (PARSED_AT + timedelta(hours=7)).time().replace(microsecond=0),
        ),
    )
    send >> SmsDeliverySensor(task_id="wait", message_ids=send.output, poke_interval=0.5, timeout=120)

# A deferrable send whose unknown outcomes settle in the triggerer (the test injects the fault).
with DAG(
    dag_id="smsww_it_settle_deferred", schedule=None, start_date=datetime(2025, 1, 1), catchup=False
) as dag_settle:
    SmsSendOperator(
        task_id="send",
        recipients=["+393331234567", "+393331234568", "+393331234569"],
        message="Your order shipped",
        gate=False,
        max_concurrency=1,
        deferrable=True,
    )
