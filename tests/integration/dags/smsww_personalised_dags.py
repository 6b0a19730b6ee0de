"""A DAG for the personalised-batch integration test (issue 21): an upstream ``@task`` builds 30 order
confirmations (two texts for one number, one exact duplicate), ``SmsSendOperator(messages=...)`` sends
them through a sandbox that fails sends part-way, retried by Airflow, and the sensor waits for them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

NUMBERS = [f"+3933345{n:05d}" for n in range(28)]


def entries() -> list[dict[str, Any]]:
    """28 confirmations, a reminder for the first number (another text: sent too), and the second
    confirmation again with its number written with spaces (an exact duplicate: sent once)."""
    orders = [
        {"recipient": number, "message": f"Order A{n:03d} confirmed: {n + 1} item(s)"}
        for n, number in enumerate(NUMBERS)
    ]
    orders[1]["sender"] = "Shop"
    reminder = {"recipient": NUMBERS[0], "message": "Reminder: order A000 ships tomorrow"}
    duplicate = {**orders[1], "recipient": NUMBERS[1][:3] + " " + NUMBERS[1][3:6] + " " + NUMBERS[1][6:]}
    return [*orders[:15], reminder, duplicate, *orders[15:]]


with DAG(
    dag_id="smsww_it_personalised",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
) as dag_personalised:

    @task
    def build() -> list[dict[str, Any]]:
        return entries()

    send = SmsSendOperator(
        task_id="send",
        messages=build(),
        # The sandbox fails 30% of the sends, dry runs included: a gate of 29 dry runs would rarely
        # pass in one try, so this run tests the sends, the ledger and the reconciliation only.
        gate=False,
        max_concurrency=5,
        settle_time=0.05,
        retries=8,
        retry_delay=timedelta(seconds=0),
    )
    wait = SmsDeliverySensor(task_id="wait", message_ids=send.output, poke_interval=0.2, timeout=60)
    send >> wait


def shop_batches() -> list[list[dict[str, Any]]]:
    """Three shops' confirmations, four each: one mapped send per shop."""
    return [
        [
            {"recipient": f"+3933346{shop}{n:04d}", "message": f"Shop {shop}: order {n} confirmed"}
            for n in range(4)
        ]
        for shop in range(3)
    ]


with DAG(
    dag_id="smsww_it_personalised_mapped",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
) as dag_personalised_mapped:

    @task
    def batches() -> list[list[dict[str, Any]]]:
        return shop_batches()

    mapped_send = SmsSendOperator.partial(
        task_id="send",
        gate=False,  # as above: the faults would fail the dry runs too
        max_concurrency=2,
        settle_time=0.05,
        retries=8,
        retry_delay=timedelta(seconds=0),
    ).expand(messages=batches())
    SmsDeliverySensor.partial(task_id="wait", poke_interval=0.2, timeout=60).expand(
        message_ids=mapped_send.output
    )
