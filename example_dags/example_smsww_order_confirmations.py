"""
### Personalised order confirmations: a text per customer in one task

An upstream `@task` builds one entry per order, `{"recipient", "message", "sender"}` (in a real DAG it
would read the orders from your shop's database), and **SmsSendOperator** sends them with
`messages=...`: one task for the whole list, however long, instead of one mapped task per message.

- Every entry is checked locally (the error names the entry, `messages[3] (+39...)`), priced with a
  free dry run and budgeted (`max_total_price` covers the whole list) before anything is sent.
- Each (number, sender, text) is sent once, also across task retries and a worker crash: a customer
  with two orders gets both confirmations, an entry listed twice is sent once.
- `sender` is optional per entry; entries without one use the operator's `sender`.
- The operator returns one record per message in entry order, which **SmsDeliverySensor** watches.

Works for every kind of run (scheduled, manual, REST API): the texts use `run_id`, never `ds`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_smsww.operators.smsww import SmsSendOperator
from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

POLL_SECONDS = float(os.environ.get("SMSWW_EXAMPLE_POLL_SECONDS", "60"))

# Replace with a query of your orders. Valid Italian mobile numbers for the sandbox; the last
# customer placed two orders, and the first order is listed twice by mistake.
ORDERS = [
    {"order": "A-1042", "phone": "+393331234567", "items": 2, "day": "Tuesday"},
    {"order": "A-1043", "phone": "+39 333 123 4568", "items": 1, "day": "Wednesday"},
    {"order": "A-1044", "phone": "+393331234569", "items": 5, "day": "Tuesday"},
    {"order": "A-1045", "phone": "+393331234569", "items": 1, "day": "Friday"},
    {"order": "A-1042", "phone": "+39 333 1234567", "items": 2, "day": "Tuesday"},
]

with DAG(
    dag_id="example_smsww_order_confirmations",
    description="Send a personalised confirmation per order in one task, then wait for delivery",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:

    @task
    def confirmations(run_id: str) -> list[dict[str, Any]]:
        """One entry per order; no sender: the operator's ("Shop") goes with each."""
        return [
            {
                "recipient": o["phone"],
                "message": f"Order {o['order']} confirmed: {o['items']} item(s), delivery on {o['day']}. "
                f"Ref {run_id[-6:]}",
            }
            for o in ORDERS
        ]

    send = SmsSendOperator(
        task_id="send_confirmations",
        messages=confirmations(),
        sender="Shop",
        fail_on_multiple_messages=True,
        max_total_price=2.0,  # for the whole list
        price_per_part_if_unknown=0.10,  # worldwide dry runs come back unpriced
        max_concurrency=10,
        retries=2,
        retry_delay=timedelta(seconds=10),
    )

    SmsDeliverySensor(
        task_id="wait_for_delivery",
        message_ids=send.output,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=1).total_seconds(),
    )
