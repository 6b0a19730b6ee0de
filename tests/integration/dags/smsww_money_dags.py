"""A DAG for the money integration tests: send a priced batch under a budget, then wait for delivery,
so that one run shows the estimated cost (operator), the actual cost (sensor) and the metrics."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

with DAG(
    dag_id="smsww_it_money",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={"recipients": Param(["+393331234567"], type="array")},
) as dag_money:
    send = SmsSendOperator(
        task_id="send",
        recipients="{{ params.recipients }}",
        message="Invoice ready",
        max_total_price=1.0,
        price_per_part_if_unknown=0.07,
    )
    wait = SmsDeliverySensor(task_id="wait", message_ids=send.output, poke_interval=0.2, timeout=60)
    send >> wait

# Tries that fail part-way (the sandbox refuses sends before and after storing them, the client does not
# retry): Airflow's retries must text each recipient exactly once, with the ledger of this Airflow
# (task_state_store on 3.3, Variables before).
with DAG(
    dag_id="smsww_it_retries",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={"recipients": Param(["+393331234567"], type="array")},
) as dag_retries:
    SmsSendOperator(
        task_id="send",
        recipients="{{ params.recipients }}",
        message="Your order shipped",
        gate=False,
        max_concurrency=5,
        settle_time=0.05,
        retries=8,
        retry_delay=timedelta(seconds=0),
    )
