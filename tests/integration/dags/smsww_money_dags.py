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


# The budget over every try (issue 23): 30 Italian numbers on WW (real price 0.065 EUR, 0.01 assumed in
# the dry run), a 1.20 EUR budget, sent one at a time through a slowed gateway, each try cut short (by its
# execution_timeout, or by a killed worker in the test) and retried: the whole task instance must stay
# within 1.20 EUR. A short settle_time: the sandbox lists a message as soon as it stores it.
def budget_dag(dag_id: str, execution_timeout: timedelta | None) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        render_template_as_native_obj=True,
        params={"recipients": Param(["+393331234567"], type="array")},
    ) as dag:
        SmsSendOperator(
            task_id="send",
            recipients="{{ params.recipients }}",
            message="Your statement is ready",
            max_total_price=1.20,
            price_per_part_if_unknown=0.01,
            max_concurrency=1,
            settle_time=0.5,
            execution_timeout=execution_timeout,
            retries=4,
            retry_delay=timedelta(seconds=0),
        )
    return dag


dag_budget = budget_dag("smsww_it_budget_timeouts", timedelta(seconds=4.5))
dag_budget_killed = budget_dag("smsww_it_budget_killed", None)
