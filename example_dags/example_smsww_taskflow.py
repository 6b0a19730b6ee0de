"""
### A transactional notice from a TaskFlow task, with the hook

`SmsWwHook` is the provider's API: inside any `@task` it sends, prices and reads SMS with typed
results. This DAG prices a shipping notice with a free dry run (`dry_run=True`), sends it, and hands the
message to **SmsDeliverySensor**, which waits for delivery in the triggerer.

The hook checks the number, sender and text locally before any request. It does not keep a ledger:
a retried task would send again, so the sending task has `retries=0`. For a batch that must reach each
recipient exactly once across retries, use **SmsSendOperator** (see `example_smsww_report_ready`).

Works for every kind of run (scheduled, manual, REST API): the text uses `run_id`, never `ds`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_smsww.sensors.smsww import SmsDeliverySensor

POLL_SECONDS = float(os.environ.get("SMSWW_EXAMPLE_POLL_SECONDS", "60"))

with DAG(
    dag_id="example_smsww_taskflow",
    description="Send one shipping notice with SmsWwHook in a @task, then wait for delivery",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"recipient": Param("+393331234567", type="string"), "order": Param("A-1042", type="string")},
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:

    @task(retries=0)
    def send_notice(params: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Price the notice (free), then send it; returns the message's id, state, parts and price."""
        from airflow_provider_smsww.hooks.smsww import SmsWwHook

        text = f"Order {params['order']} has shipped. Ref {run_id[-8:]}"
        with SmsWwHook() as hook:
            preview = hook.send_message(params["recipient"], text, sender="Shop", dry_run=True)
            print(f"dry run: {preview.message_count} part(s), {preview.encoding}")
            message = hook.send_message(params["recipient"], text, sender="Shop")
        return message.summary()

    sent = send_notice()

    SmsDeliverySensor(
        task_id="wait_for_delivery",
        message_ids=sent,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=1).total_seconds(),
    )
